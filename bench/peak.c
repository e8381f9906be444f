/* The core's multiply-add peak: the most GFLOP/s any float kernel can reach on one
 * core, beside OpenBLAS's sgemm (bench/sgemm.c), so that a target out of reach can be
 * shown to be so.
 *
 *     cc -O2 -march=native -mprefer-vector-width=512 bench/peak.c -o peak
 *     peak [SECONDS] [LANES]     default 1 s, 16 lanes (8 for 256-bit vectors)
 *
 * CHAINS independent accumulators of LANES floats each (more than the multiply-add
 * latency times the units that run them in parallel), each updated by a fused
 * multiply-add per iteration; gcc's vector extension, so the loop is the same whatever
 * the flags. Timed in rounds of ITER iterations after a warm-up; prints
 * "LANES  GFLOP/s(median)  GFLOP/s(best)". Debug output goes to stderr only when the
 * result's checksum is not finite, which would mean the loop was optimised away.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHAINS 16
#define ITER 200000

typedef float v16 __attribute__((vector_size(64)));
typedef float v8 __attribute__((vector_size(32)));

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* one round: CHAINS x ITER multiply-adds of N floats, in named variables (an array
 * indexed in a loop would live in memory); returns a checksum */
#define ROUND(T, N)                                                                                                    \
    static float round_##N(float m, float s)                                                                          \
    {                                                                                                                  \
        T mv, sv, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15;                              \
        for (int l = 0; l < N; l++)                                                                                    \
            mv[l] = m, sv[l] = s;                                                                                      \
        /* distinct starting values, or the compiler merges equal chains */                                       \
        a0 = sv * 1.0f, a1 = sv * 2.0f, a2 = sv * 3.0f, a3 = sv * 4.0f, a4 = sv * 5.0f, a5 = sv * 6.0f;                \
        a6 = sv * 7.0f, a7 = sv * 8.0f, a8 = sv * 9.0f, a9 = sv * 10.0f, a10 = sv * 11.0f, a11 = sv * 12.0f;           \
        a12 = sv * 13.0f, a13 = sv * 14.0f, a14 = sv * 15.0f, a15 = sv * 16.0f;                                        \
        for (long i = 0; i < ITER; i++) {                                                                              \
            a0 = a0 * mv + sv, a1 = a1 * mv + sv, a2 = a2 * mv + sv, a3 = a3 * mv + sv;                                \
            a4 = a4 * mv + sv, a5 = a5 * mv + sv, a6 = a6 * mv + sv, a7 = a7 * mv + sv;                                \
            a8 = a8 * mv + sv, a9 = a9 * mv + sv, a10 = a10 * mv + sv, a11 = a11 * mv + sv;                            \
            a12 = a12 * mv + sv, a13 = a13 * mv + sv, a14 = a14 * mv + sv, a15 = a15 * mv + sv;                        \
        }                                                                                                              \
        T t = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11 + a12 + a13 + a14 + a15;                    \
        float sum = 0;                                                                                                 \
        for (int l = 0; l < N; l++)                                                                                    \
            sum += t[l];                                                                                               \
        return sum;                                                                                                    \
    }
ROUND(v16, 16)
ROUND(v8, 8)

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    int lanes = argc > 2 ? atoi(argv[2]) : 16;
    if (lanes != 8 && lanes != 16) {
        fprintf(stderr, "peak: LANES must be 8 or 16\n");
        return 2;
    }
    /* a multiplier just under 1 and a small addend keep the values finite and normal */
    volatile float m = 0.999999f, s = 1e-6f;
    double flops = 2.0 * CHAINS * ITER * lanes, check = 0;
    int cap = 100000, n = 0;
    double *g = malloc(sizeof(double) * (size_t)cap);
    if (!g)
        return 1;
    for (int w = 0; w < 3; w++)
        check += lanes == 16 ? round_16(m, s) : round_8(m, s);
    double t_end = now() + seconds;
    while (n < cap && (n < 5 || now() < t_end)) {
        double t0 = now();
        check += lanes == 16 ? round_16(m, s) : round_8(m, s);
        g[n++] = flops / (now() - t0) * 1e-9;
    }
    if (!isfinite(check)) {
        fprintf(stderr, "peak: checksum %g is not finite\n", check);
        return 1;
    }
    qsort(g, (size_t)n, sizeof *g, cmp_double);
    printf("%d\t%.1f\t%.1f\n", lanes, g[n / 2], g[n - 1]);
    free(g);
    return 0;
}
