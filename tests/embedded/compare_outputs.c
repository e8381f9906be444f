/* compare_outputs REF RUN [RTOL [ATOL]]: compare the outputs that run_model.c
 * printed in two runs (examples/baremetal/run_model.c: lines "K I XXXXXXXX", the
 * float's bits in hex; "out K COUNT"; "end RC").
 *
 * A value passes when |run - ref| <= ATOL * max|ref of its output| + RTOL * |ref|
 * (defaults 1e-5 and 1e-6: the bits differ where the compilers' instruction
 * choices or the C libraries' expf/tanhf/... round differently, by a few ulp).
 * Both runs must print the same outputs and indices and end with "end 0".
 * Prints one line: values, how many are bitwise equal, the largest error in ulp
 * and relative to the output's largest magnitude; exits 0 when all pass, 1 when
 * not, 2 on unreadable input.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VALUES (1L << 22)

typedef struct {
    long n;
    int *out;
    long *idx;
    float *val;
    int ended, rc, outputs;
} Run;

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static int load(const char *path, Run *r)
{
    FILE *f = fopen(path, "r");
    char line[256];
    memset(r, 0, sizeof *r);
    if (!f) {
        fprintf(stderr, "compare_outputs: cannot open %s\n", path);
        return -1;
    }
    r->out = malloc(MAX_VALUES * sizeof *r->out);
    r->idx = malloc(MAX_VALUES * sizeof *r->idx);
    r->val = malloc(MAX_VALUES * sizeof *r->val);
    if (!r->out || !r->idx || !r->val) {
        fclose(f);
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        int k, rc;
        long i, count;
        unsigned long bits;
        if (sscanf(line, "out %d %ld", &k, &count) == 2)
            r->outputs++;
        else if (sscanf(line, "end %d", &rc) == 1)
            r->ended = 1, r->rc = rc;
        else if (sscanf(line, "%d %ld %lx", &k, &i, &bits) == 3 && r->n < MAX_VALUES) {
            r->out[r->n] = k;
            r->idx[r->n] = i;
            r->val[r->n] = from_bits((uint32_t)bits);
            r->n++;
        }
    }
    fclose(f);
    return 0;
}

/* distance in units in the last place between two finite floats */
static double ulps(float a, float b)
{
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    if (ia < 0)
        ia = (int32_t)(0x80000000u - (uint32_t)ia);
    if (ib < 0)
        ib = (int32_t)(0x80000000u - (uint32_t)ib);
    return fabs((double)ia - (double)ib);
}

int main(int argc, char **argv)
{
    Run ref, run;
    double rtol = argc > 3 ? atof(argv[3]) : 1e-5, atol = argc > 4 ? atof(argv[4]) : 1e-6;
    double max_ulp = 0, max_scaled = 0, scale[16] = {0};
    long i, equal = 0, bad = 0;
    if (argc < 3) {
        fprintf(stderr, "usage: compare_outputs REF RUN [RTOL [ATOL]]\n");
        return 2;
    }
    if (load(argv[1], &ref) || load(argv[2], &run))
        return 2;
    if (!ref.ended || !run.ended || ref.rc || run.rc) {
        printf("incomplete or failed run: ref %s (rc %d), run %s (rc %d)\n", ref.ended ? "ended" : "did not end",
               ref.rc, run.ended ? "ended" : "did not end", run.rc);
        return 1;
    }
    if (ref.n != run.n || ref.outputs != run.outputs || ref.n == 0) {
        printf("different outputs: ref %ld values in %d outputs, run %ld in %d\n", ref.n, ref.outputs, run.n,
               run.outputs);
        return 1;
    }
    for (i = 0; i < ref.n; i++) { /* largest magnitude of each output */
        if (ref.out[i] < 0 || ref.out[i] >= 16 || ref.out[i] != run.out[i] || ref.idx[i] != run.idx[i]) {
            printf("different value order at line %ld\n", i);
            return 1;
        }
        if (isfinite(ref.val[i]) && fabs(ref.val[i]) > scale[ref.out[i]])
            scale[ref.out[i]] = fabs(ref.val[i]);
    }
    for (i = 0; i < ref.n; i++) {
        double d, s = scale[ref.out[i]];
        float a = ref.val[i], b = run.val[i];
        if (memcmp(&a, &b, 4) == 0) {
            equal++;
            continue;
        }
        if (isnan(a) || isnan(b) || isinf(a) || isinf(b)) {
            if (bad++ < 5)
                printf("output %d[%ld]: %.9g vs %.9g\n", ref.out[i], ref.idx[i], a, b);
            continue;
        }
        d = fabs((double)a - (double)b);
        if (ulps(a, b) > max_ulp)
            max_ulp = ulps(a, b);
        if (s > 0 && d / s > max_scaled)
            max_scaled = d / s;
        if (d > atol * s + rtol * fabs((double)a)) {
            if (bad++ < 5)
                printf("output %d[%ld]: %.9g vs %.9g\n", ref.out[i], ref.idx[i], a, b);
        }
    }
    printf("%ld values, %ld bitwise equal, max %.0f ulp, max error %.2g of the largest magnitude, %ld out of tolerance\n",
           ref.n, equal, max_ulp, max_scaled, bad);
    return bad ? 1 : 0;
}
