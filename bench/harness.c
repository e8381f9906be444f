/* Timing harness for one kdcc-compiled model.
 *
 *     cc -O3 -march=native -DKD_GLUE='"glue.h"' bench/harness.c model.c -o harness -lm
 *     harness [-s SECONDS] [-w SECONDS] [-n MIN_SAMPLES] [-d DIR]
 *
 * glue.h (made by bench/glue.py from the model's header) says how many inputs
 * and outputs NAME_run takes, their element types and counts, and defines
 * kd_call(in, out). The inputs are random with a fixed seed (floats uniform in
 * [0, 1), integers in [0, 10)), the same in every run.
 *
 * Warm-up (at least -w seconds and 3 calls), then timed samples until -s seconds
 * have passed and at least -n samples were taken. A sample is a block of k calls
 * timed with clock_gettime(CLOCK_MONOTONIC), k chosen so that a block lasts at
 * least 20 microseconds (k = 1 for all but the smallest models), so the clock's
 * own cost does not count. Each sample is timed twice: wall clock
 * (CLOCK_MONOTONIC) and the process's CPU time (CLOCK_PROCESS_CPUTIME_ID), which
 * leaves out the time other processes had the core on a shared machine. Prints
 * one line (microseconds per call):
 *
 *     wall_median  wall_min  calls  samples  cpu_median  cpu_min
 * With -d DIR, writes DIR/in_K.bin and DIR/out_K.bin,
 * the raw inputs and outputs, for bench/ort.js to compare against.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { KD_F32, KD_F64, KD_I8, KD_U8, KD_I16, KD_U16, KD_I32, KD_U32, KD_I64, KD_U64, KD_BOOL };

#include KD_GLUE

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void fill(void *p, int kind, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double u = (double)(next() >> 11) / 9007199254740992.0; /* [0, 1) */
        int k = (int)(u * 10);
        switch (kind) {
        case KD_F32: ((float *)p)[i] = (float)u; break;
        case KD_F64: ((double *)p)[i] = u; break;
        case KD_I8: ((int8_t *)p)[i] = (int8_t)k; break;
        case KD_U8: ((uint8_t *)p)[i] = (uint8_t)k; break;
        case KD_I16: ((int16_t *)p)[i] = (int16_t)k; break;
        case KD_U16: ((uint16_t *)p)[i] = (uint16_t)k; break;
        case KD_I32: ((int32_t *)p)[i] = k; break;
        case KD_U32: ((uint32_t *)p)[i] = (uint32_t)k; break;
        case KD_I64: ((int64_t *)p)[i] = k; break;
        case KD_U64: ((uint64_t *)p)[i] = (uint64_t)k; break;
        case KD_BOOL: ((bool *)p)[i] = k & 1; break;
        }
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double now(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

static double cpu_now(void)
{
    return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

static double median_of(double *s, size_t n)
{
    qsort(s, n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

static void *xalloc(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, n + 64) != 0 || !p) {
        fprintf(stderr, "harness: out of memory\n");
        exit(1);
    }
    return p;
}

static int save(const char *dir, const char *what, int k, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s_%d.bin", dir, what, k);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "harness: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    double seconds = 1.0, warm = 0.2;
    long min_samples = 10;
    const char *dir = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-s"))
            seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "-w"))
            warm = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "-n"))
            min_samples = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "-d"))
            dir = argv[i + 1];
        else {
            fprintf(stderr, "usage: harness [-s SECONDS] [-w SECONDS] [-n MIN_SAMPLES] [-d DIR]\n");
            return 2;
        }
    }
    void *in[KD_NIN + 1], *out[KD_NOUT + 1];
    for (int i = 0; i < KD_NIN; i++) {
        in[i] = xalloc(kd_in_count[i] * kd_in_size[i]);
        fill(in[i], kd_in_kind[i], kd_in_count[i]);
    }
    for (int i = 0; i < KD_NOUT; i++) {
        out[i] = xalloc(kd_out_count[i] * kd_out_size[i]);
        memset(out[i], 0, kd_out_count[i] * kd_out_size[i]);
    }

    /* warm-up */
    double t0 = now();
    for (long n = 0; n < 3 || now() - t0 < warm; n++)
        if (kd_call(in, out) != 0) {
            fprintf(stderr, "harness: run returned nonzero\n");
            return 1;
        }

    /* calls per sample: at least 20 microseconds per block */
    long k = 1;
    for (;;) {
        double a = now();
        for (long j = 0; j < k; j++)
            kd_call(in, out);
        if (now() - a >= 20e-6 || k >= (1L << 20))
            break;
        k *= 2;
    }

    size_t cap = 1024, ns = 0;
    double *s = malloc(cap * sizeof *s), *c = malloc(cap * sizeof *c);
    t0 = now();
    while (s && c && (ns < (size_t)min_samples || now() - t0 < seconds) && ns < 1000000) {
        double ca = cpu_now(), a = now();
        for (long j = 0; j < k; j++)
            kd_call(in, out);
        double b = now(), cb = cpu_now();
        if (ns == cap) {
            cap *= 2;
            double *s2 = realloc(s, cap * sizeof *s), *c2 = realloc(c, cap * sizeof *c);
            if (!s2 || !c2) {
                free(s2 ? s2 : s);
                free(c2 ? c2 : c);
                s = c = NULL;
                break;
            }
            s = s2;
            c = c2;
        }
        s[ns] = (b - a) / (double)k * 1e6;
        c[ns++] = (cb - ca) / (double)k * 1e6;
    }
    if (!s || !c) {
        fprintf(stderr, "harness: out of memory\n");
        return 1;
    }
    double median = median_of(s, ns), cmedian = median_of(c, ns);
    printf("%.4f\t%.4f\t%ld\t%zu\t%.4f\t%.4f\n", median, s[0], (long)ns * k, ns, cmedian, c[0]);

    if (dir) {
        for (int i = 0; i < KD_NIN; i++)
            if (save(dir, "in", i, in[i], kd_in_count[i] * kd_in_size[i]))
                return 1;
        for (int i = 0; i < KD_NOUT; i++)
            if (save(dir, "out", i, out[i], kd_out_count[i] * kd_out_size[i]))
                return 1;
    }
    free(s);
    free(c);
    for (int i = 0; i < KD_NIN; i++)
        free(in[i]);
    for (int i = 0; i < KD_NOUT; i++)
        free(out[i]);
    return 0;
}
