/* The text writer: the only way kdcc produces text (C, headers, textual syntax). */
#include "compiler/ir/ir.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void w_init(Writer *w)
{
    memset(w, 0, sizeof *w);
    w->at_bol = 1;
}

void w_free(Writer *w)
{
    free(w->buf);
    w_init(w);
}

static int reserve(Writer *w, size_t extra)
{
    if (w->oom)
        return -1;
    if (w->len + extra + 1 <= w->cap)
        return 0;
    size_t cap = w->cap ? w->cap : 4096;
    while (cap < w->len + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            w->oom = 1;
            return -1;
        }
        cap *= 2;
    }
    char *p = realloc(w->buf, cap);
    if (!p) {
        w->oom = 1;
        return -1;
    }
    w->buf = p;
    w->cap = cap;
    return 0;
}

static void raw(Writer *w, const char *s, size_t n)
{
    if (reserve(w, n))
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = 0;
}

void w_puts(Writer *w, const char *s)
{
    while (*s) {
        if (w->at_bol && *s != '\n') {
            for (int i = 0; i < w->indent; i++)
                raw(w, "    ", 4);
            w->at_bol = 0;
        }
        const char *nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) + 1 : strlen(s);
        raw(w, s, n);
        if (nl)
            w->at_bol = 1;
        s += n;
    }
}

void w_vprintf(Writer *w, const char *fmt, va_list ap)
{
    char small[512];
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n < 0) {
        va_end(ap2);
        return;
    }
    if ((size_t)n < sizeof small) {
        w_puts(w, small);
    } else {
        char *big = malloc((size_t)n + 1);
        if (!big) {
            w->oom = 1;
        } else {
            vsnprintf(big, (size_t)n + 1, fmt, ap2);
            w_puts(w, big);
            free(big);
        }
    }
    va_end(ap2);
}

void w_printf(Writer *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    w_vprintf(w, fmt, ap);
    va_end(ap);
}

void w_line(Writer *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    w_vprintf(w, fmt, ap);
    va_end(ap);
    w_puts(w, "\n");
}

void w_open(Writer *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    w_vprintf(w, fmt, ap);
    va_end(ap);
    w_puts(w, " {\n");
    w->indent++;
}

void w_close(Writer *w)
{
    if (w->indent > 0)
        w->indent--;
    w_puts(w, "}\n");
}

void w_float(Writer *w, float v)
{
    if (isnan(v))
        w_puts(w, "NAN");
    else if (isinf(v))
        w_puts(w, v > 0 ? "INFINITY" : "(-INFINITY)");
    else {
        char buf[64];
        snprintf(buf, sizeof buf, "%.9g", (double)v);
        if (!strpbrk(buf, ".eE"))
            strcat(buf, ".0");
        strcat(buf, "f");
        w_puts(w, buf);
    }
}

void w_double(Writer *w, double v)
{
    if (isnan(v))
        w_puts(w, "((double)NAN)");
    else if (isinf(v))
        w_puts(w, v > 0 ? "((double)INFINITY)" : "(-(double)INFINITY)");
    else {
        char buf[64];
        snprintf(buf, sizeof buf, "%.17g", v);
        if (!strpbrk(buf, ".eE"))
            strcat(buf, ".0");
        w_puts(w, buf);
    }
}

void w_int64(Writer *w, int64_t v)
{
    if (v == INT64_MIN)
        w_puts(w, "(-INT64_C(9223372036854775807) - 1)");
    else if (v > INT32_MAX || v < -INT32_MAX)
        w_printf(w, "INT64_C(%" PRId64 ")", v);
    else
        w_printf(w, "%" PRId64, v);
}

int w_save_atomic(const Writer *w, const char *path, Diag *d)
{
    if (w->oom)
        return diag_error(d, NULL, "out of memory while writing '%s'", path);
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp)
        return diag_error(d, NULL, "out of memory");
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        int e = errno;
        free(tmp);
        return diag_error(d, NULL, "cannot write '%s': %s", path, strerror(e));
    }
    size_t n = w->len ? fwrite(w->buf, 1, w->len, f) : 0;
    int bad = n != w->len;
    bad |= fflush(f) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        free(tmp);
        return diag_error(d, NULL, "cannot write '%s': %s", path, strerror(e));
    }
    free(tmp);
    return 0;
}
