/* Single-thread OpenBLAS sgemm: the reference peak for kdcc's GFLOP/s; and the
 * core's multiply-add peak, which no float kernel on it can pass.
 *
 *     cc -std=c11 -O2 -march=native -mprefer-vector-width=512 -ffp-contract=fast bench/sgemm.c -o sgemm \
 *         -l:libopenblas.so.0
 *     (Debian libopenblas0-pthread)
 *     sgemm [SECONDS_PER_SIZE] [N ...]       default sizes 64 256 512
 *     sgemm --peak LANES [SECONDS]           LANES 8 or 16
 *
 * For each N: C = A*B with N x N row-major float matrices, one thread
 * (openblas_set_num_threads(1)), a warm-up, then timed calls until the time
 * is up; prints "N  median_us  GFLOP/s(median)  GFLOP/s(best)" per size.
 * The prototypes are declared here so that only the runtime library is
 * needed (libopenblas0-pthread ships no header).
 *
 * --peak: 16 independent chains of fused multiply-adds on vectors of LANES floats
 * (more chains than the multiply-add latency times the units that run them),
 * gcc's vector extension (-ffp-contract=fast fuses each multiply and add: strict
 * ISO mode would keep them apart, and count half the peak); rounds of
 * PEAK_ITER iterations after a warm-up; prints "LANES  GFLOP/s(median)
 * GFLOP/s(best)".
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { CblasRowMajor = 101, CblasNoTrans = 111 };
void cblas_sgemm(int order, int transa, int transb, int m, int n, int k, float alpha, const float *a, int lda,
                 const float *b, int ldb, float beta, float *c, int ldc);
void openblas_set_num_threads(int n);
char *openblas_get_config(void);
char *openblas_get_corename(void);

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

#define PEAK_ITER 200000

typedef float v16 __attribute__((vector_size(64)));
typedef float v8 __attribute__((vector_size(32)));

/* one round of --peak: 16 x PEAK_ITER multiply-adds of N floats, in named variables
 * (an array indexed in a loop would live in memory); returns a checksum */
#define PEAK_ROUND(T, N)                                                                                               \
    static float peak_round_##N(float m, float s)                                                                     \
    {                                                                                                                  \
        T mv, sv, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15;                              \
        for (int l = 0; l < N; l++)                                                                                    \
            mv[l] = m, sv[l] = s;                                                                                      \
        /* distinct starting values, or the compiler merges equal chains */                                       \
        a0 = sv * 1.0f, a1 = sv * 2.0f, a2 = sv * 3.0f, a3 = sv * 4.0f, a4 = sv * 5.0f, a5 = sv * 6.0f;                \
        a6 = sv * 7.0f, a7 = sv * 8.0f, a8 = sv * 9.0f, a9 = sv * 10.0f, a10 = sv * 11.0f, a11 = sv * 12.0f;           \
        a12 = sv * 13.0f, a13 = sv * 14.0f, a14 = sv * 15.0f, a15 = sv * 16.0f;                                        \
        for (long i = 0; i < PEAK_ITER; i++) {                                                                         \
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
PEAK_ROUND(v16, 16)
PEAK_ROUND(v8, 8)

static int peak(int lanes, double seconds)
{
    if (lanes != 8 && lanes != 16) {
        fprintf(stderr, "sgemm: --peak LANES must be 8 or 16\n");
        return 2;
    }
    /* a multiplier just under 1 and a small addend keep the values finite and normal */
    volatile float m = 0.999999f, s = 1e-6f;
    double flops = 2.0 * 16 * PEAK_ITER * lanes, check = 0;
    size_t n = 0, cap = 100000;
    double *g = malloc(cap * sizeof *g);
    if (!g)
        return 1;
    for (int w = 0; w < 3; w++)
        check += lanes == 16 ? peak_round_16(m, s) : peak_round_8(m, s);
    double t_end = now() + seconds;
    while (n < cap && (n < 5 || now() < t_end)) {
        double t0 = now();
        check += lanes == 16 ? peak_round_16(m, s) : peak_round_8(m, s);
        g[n++] = flops / (now() - t0) * 1e-9;
    }
    if (!(check == check) || check > 1e30) { /* the loop ran (its result is used) and stayed finite */
        fprintf(stderr, "sgemm: --peak checksum %g is not finite\n", check);
        free(g);
        return 1;
    }
    qsort(g, n, sizeof *g, cmp_double);
    printf("%d\t%.1f\t%.1f\n", lanes, g[n / 2], g[n - 1]);
    free(g);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "--peak") == 0)
        return peak(atoi(argv[2]), argc > 3 ? atof(argv[3]) : 1.0);
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    int def[] = {64, 256, 512};
    int nsizes = argc > 2 ? argc - 2 : 3;
    openblas_set_num_threads(1);
    printf("# %s (core %s)\n", openblas_get_config(), openblas_get_corename());
    for (int s = 0; s < nsizes; s++) {
        int n = argc > 2 ? atoi(argv[2 + s]) : def[s];
        size_t nn = (size_t)n * (size_t)n;
        float *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b), *c = malloc(nn * sizeof *c);
        double *t = malloc(100000 * sizeof *t);
        if (!a || !b || !c || !t) {
            fprintf(stderr, "sgemm: out of memory\n");
            return 1;
        }
        for (size_t i = 0; i < nn; i++) {
            a[i] = (float)(i % 17) / 17.0f;
            b[i] = (float)(i % 13) / 13.0f;
        }
        double t0 = now();
        for (int i = 0; i < 3 || now() - t0 < 0.1; i++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        size_t ns = 0;
        t0 = now();
        while ((ns < 10 || now() - t0 < seconds) && ns < 100000) {
            double x = now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
            t[ns++] = now() - x;
        }
        qsort(t, ns, sizeof *t, cmp_double);
        double med = t[ns / 2], flop = 2.0 * (double)n * n * n;
        printf("%d\t%.2f\t%.2f\t%.2f\n", n, med * 1e6, flop / med * 1e-9, flop / t[0] * 1e-9);
        free(a);
        free(b);
        free(c);
        free(t);
    }
    return 0;
}
