/* Replay driver without libFuzzer: feeds files (or every file in folders) once
 * through a fuzz entry point. Builds with any C compiler, so the committed corpora
 * and regression inputs run in every ctest (label fuzz-replay).
 *
 *   kdcc-fuzz-replay TARGET PATH...      TARGET: onnx, text, tensor, data
 *
 * Exit 0 when every input was accepted or cleanly refused; a bug abort()s (the
 * entry point prints which input class of check failed, this driver names the file). */
#include "fuzz/fuzz_entry.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int accepted, refused, files;
static int verbose;

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_file(KdccFuzzFn fn, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "kdcc-fuzz-replay: cannot open '%s'\n", path);
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "kdcc-fuzz-replay: out of memory reading '%s'\n", path);
        return -1;
    }
    /* an exact-size copy, so reads past the end show up under ASan as they would in libFuzzer */
    uint8_t *exact = malloc(n ? n : 1);
    memcpy(exact, buf, n);
    free(buf);
    fprintf(stderr, "%s\n", path); /* the last name printed is the culprit if this one crashes */
    int rc = fn(exact, n);
    free(exact);
    files++;
    if (rc == 0)
        accepted++;
    else
        refused++;
    if (verbose)
        fprintf(stderr, "  %s%s\n", rc == 0 ? "accepted" : "refused: ", rc == 0 ? "" : kdcc_fuzz_last_message);
    return 0;
}

static int run_path(KdccFuzzFn fn, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "kdcc-fuzz-replay: no such file or folder '%s'\n", path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return run_file(fn, path);
    DIR *dir = opendir(path);
    if (!dir) {
        fprintf(stderr, "kdcc-fuzz-replay: cannot open folder '%s'\n", path);
        return -1;
    }
    char **names = NULL;
    size_t nn = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue; /* ., .., and hidden files such as .gitkeep */
        if (nn == cap) {
            cap = cap ? cap * 2 : 64;
            names = realloc(names, cap * sizeof *names);
        }
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        names[nn] = malloc(len);
        snprintf(names[nn], len, "%s/%s", path, e->d_name);
        nn++;
    }
    closedir(dir);
    if (nn)
        qsort(names, nn, sizeof *names, cmp);
    int rc = 0;
    for (size_t i = 0; i < nn; i++) {
        if (run_path(fn, names[i]))
            rc = -1;
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    int i = 1;
    if (i < argc && strcmp(argv[i], "-v") == 0)
        verbose = 1, i++;
    if (argc - i < 2) {
        fprintf(stderr, "usage: kdcc-fuzz-replay [-v] TARGET PATH...   (TARGET: onnx, text, tensor, data)\n");
        return 2;
    }
    KdccFuzzFn fn = kdcc_fuzz_lookup(argv[i]);
    if (!fn) {
        fprintf(stderr, "kdcc-fuzz-replay: unknown target '%s' (onnx, text, tensor, data)\n", argv[i]);
        return 2;
    }
    int rc = 0;
    for (int k = i + 1; k < argc; k++)
        if (run_path(fn, argv[k]))
            rc = 1;
    printf("kdcc-fuzz-replay %s: %d files, %d accepted, %d refused cleanly\n", argv[i], files, accepted, refused);
    return rc;
}
