/* Single-thread OpenBLAS sgemm: the reference peak for kdcc's GFLOP/s.
 *
 *     cc -O2 bench/sgemm.c -o sgemm -l:libopenblas.so.0   (Debian libopenblas0-pthread)
 *     sgemm [SECONDS_PER_SIZE] [N ...]       default sizes 64 256 512
 *
 * For each N: C = A*B with N x N row-major float matrices, one thread
 * (openblas_set_num_threads(1)), a warm-up, then timed calls until the time
 * is up; prints "N  median_us  GFLOP/s(median)  GFLOP/s(best)" per size.
 * The prototypes are declared here so that only the runtime library is
 * needed (libopenblas0-pthread ships no header).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
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

int main(int argc, char **argv)
{
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
