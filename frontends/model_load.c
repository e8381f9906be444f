/* Read a model by its file name or content: ONNX binary (.onnx) or the ONNX
 * textual syntax (.txt, .onnxtxt, .onnx.txt, or text that starts like it). */
#include "frontends/onnx.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    if (k > n)
        return 0;
    for (size_t i = 0; i < k; i++) {
        char a = s[n - k + i], b = suffix[i];
        if (a >= 'A' && a <= 'Z')
            a = (char)(a - 'A' + 'a');
        if (a != b)
            return 0;
    }
    return 1;
}

static int is_ident_start(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_ident_char(int c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9') || c == '.';
}

/* Does the text start (after whitespace and comments) with '<' or "ident ("? */
static int looks_like_text_syntax(const unsigned char *p, size_t n)
{
    size_t i = 0;
    for (;;) {
        while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
            i++;
        if (i < n && p[i] == '#') {
            while (i < n && p[i] != '\n')
                i++;
            continue;
        }
        if (i + 1 < n && p[i] == '/' && p[i + 1] == '/') {
            while (i < n && p[i] != '\n')
                i++;
            continue;
        }
        break;
    }
    if (i >= n)
        return 0;
    if (p[i] == '<')
        return 1;
    if (!is_ident_start(p[i]))
        return 0;
    while (i < n && is_ident_char(p[i]))
        i++;
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    return i < n && p[i] == '(';
}

Graph *model_load(Arena *a, const char *path, const ImportOptions *o, Diag *d)
{
    if (!d->file)
        d->file = path;
    FILE *f = fopen(path, "rb");
    if (!f) {
        diag_error(d, NULL, "cannot open model file '%s': %s", path, strerror(errno));
        return NULL;
    }
    unsigned char head[4096];
    size_t n = fread(head, 1, sizeof head, f);
    int err = ferror(f);
    fclose(f);
    if (err) {
        diag_error(d, NULL, "cannot read model file '%s'", path);
        return NULL;
    }
    if (ends_with(path, ".onnx"))
        return onnx_import_file(a, path, o, d);
    if (ends_with(path, ".txt") || ends_with(path, ".onnxtxt") || looks_like_text_syntax(head, n))
        return onnx_text_parse_file(a, path, d);
    return onnx_import_file(a, path, o, d);
}
