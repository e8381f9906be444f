/* Linear algebra operators: MatMul (numpy semantics), Gemm, Einsum.
 *
 * Emission keeps the innermost loop contiguous so the C compiler vectorises it:
 * matrix products run in i-k-j order (a scalar of A times a row of B added into a
 * row of Y). float16/bfloat16 are computed through a float accumulator. */
#include "compiler/ir/target.h"
#include "compiler/ops/fused.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

/* ---------------------------------------------------------------- shared */

/* Element types the matrix operators compute with. */
static int la_dtype_ok(DType t)
{
    switch (t) {
    case DT_FLOAT: case DT_DOUBLE: case DT_FLOAT16: case DT_BFLOAT16:
    case DT_INT32: case DT_INT64: case DT_UINT32: case DT_UINT64:
        return 1;
    default:
        return 0;
    }
}

/* Mark every parameter used, for degenerate shapes whose body reads nothing. */
static void void_params(Emitter *e, const Node *n)
{
    for (int i = 0; i < n->ninputs; i++)
        if (node_in(e->g, n, i))
            w_line(e->w, "(void)x%d;", i);
    for (int i = 0; i < n->noutputs; i++)
        if (node_out(e->g, n, i))
            w_line(e->w, "(void)y%d;", i);
}

static int is_half(DType t) { return t == DT_FLOAT16 || t == DT_BFLOAT16; }

/* accumulator C type */
static const char *acc_ctype(DType t)
{
    return is_half(t) ? "float" : dtype_ctype(t);
}

/* A pseudo-value holding only a shape, for em_broadcast_loops over batch dims. */
static void shape_value(Value *v, int rank, const int64_t *dims)
{
    memset(v, 0, sizeof *v);
    v->rank = rank;
    for (int i = 0; i < rank; i++)
        v->dims[i] = dims[i];
}

/* Declare `acc` = sum over k < K of a[k*as] * b[k*bs], where a and b are the C
 * pointer expressions aexpr and bexpr. Contiguous
 * operands use 8 (32 from DOT_LONG terms) independent partial sums, which the C
 * compiler vectorises without reassociating a single sum. */
#define DOT_BM 2   /* rows of A per dot-product block */
#define DOT_BN 4   /* rows of B^T per dot-product block */
#define DOT_LONG 64 /* a single dot product this long or longer keeps 32 partial sums */

static void emit_dot(Emitter *e, const char *ct, int64_t K, const char *aexpr, int64_t as,
                     const char *bexpr, int64_t bs)
{
    Writer *w = e->w;
    const Target *tg = e->g->target ? e->g->target : target_default();
    w_line(w, "const %s *ar = %s;", ct, aexpr);
    w_line(w, "const %s *br = %s;", ct, bexpr);
    w_line(w, "%s acc = 0;", ct);
    int64_t K8 = K / 8 * 8;
    if (as == 1 && bs == 1 && K >= 16) {
        /* a long sum: 4 vectors of partial sums (lane t sums k = t mod 32), so
         * consecutive multiply-adds do not wait for each other; one chain of 8 was
         * latency-bound (the 784-64-10 MLP's first layer at batch 1 ran 2.5x faster
         * with 32 partial sums, gcc 12 on znver3: 5.5 -> 2.7 us best call) */
        int64_t K32 = K >= DOT_LONG && tg->vector_bytes >= 16 ? K / 32 * 32 : 0; /* not on a scalar FPU */
        w_line(w, "%s part[%d] = {0};", ct, K32 ? 32 : 8);
        if (K32) {
            w_open(w, "for (int64_t k = 0; k < %" PRId64 "; k += 32)", K32);
            em_for(w, "t", 32);
            w_line(w, "part[t] += ar[k + t] * br[k + t];");
            w_close(w);
            w_close(w);
        }
        if (K32 < K8) {
            w_open(w, "for (int64_t k = %" PRId64 "; k < %" PRId64 "; k += 8)", K32, K8);
            em_for(w, "t", 8);
            w_line(w, "part[t] += ar[k + t] * br[k + t];");
            w_close(w);
            w_close(w);
        }
        if (K32) {
            em_for(w, "t", 8);
            w_line(w, "part[t] = (part[t] + part[t + 8]) + (part[t + 16] + part[t + 24]);");
            w_close(w);
        }
        if (K8 < K) {
            w_open(w, "for (int64_t k = %" PRId64 "; k < %" PRId64 "; ++k)", K8, K);
            w_line(w, "acc += ar[k] * br[k];");
            w_close(w);
        }
        w_line(w, "acc += ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));");
        return;
    }
    em_for(w, "k", K);
    w_line(w, "acc += ar[k * %" PRId64 "] * br[k * %" PRId64 "];", as, bs);
    w_close(w);
}

/* Register-blocked float kernel for B with contiguous rows: each block of up to
 * MM_BM rows and MM_BN columns of Y is accumulated in local arrays over k,
 * innermost over the columns (B row contiguous), A broadcast; gcc keeps the block
 * in vector registers (emit_mm_block_vec). Same summation order as the simple
 * kernel. */
/* Stores through a node's epilogue (fused.h): Y element yb[idx] is the output's
 * element ybase + idx (ybase: "" or the batch offset "i * 12 + "). */
typedef struct MmEpi {
    const Epilogue *ep;
    DType dt;
    const char *ybase;
} MmEpi;

static int mm_has_epi(const MmEpi *x) { return x && x->ep && x->ep->n; }

static void mm_store(Writer *w, const MmEpi *x, const char *val, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void mm_store(Writer *w, const MmEpi *x, const char *val, const char *fmt, ...)
{
    char idx[160], dst[176], full[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(idx, sizeof idx, fmt, ap);
    va_end(ap);
    snprintf(dst, sizeof dst, "yb[%s]", idx);
    snprintf(full, sizeof full, "%s%s", x ? x->ybase : "", idx);
    epilogue_store(w, x ? x->ep : NULL, x ? x->dt : DT_FLOAT, dst, val, full);
}

/* the store "yb[idx] (=|+=) alpha * acc" through the epilogue */
static void mm_store_acc(Writer *w, const MmEpi *x, DType t, int init_zero, const double *alpha, const char *idx)
{
    Writer tw;
    w_init(&tw);
    if (!init_zero)
        w_printf(&tw, "yb[%s] + ", idx);
    if (alpha) {
        em_literal(&tw, t, *alpha);
        w_puts(&tw, " * ");
    }
    w_puts(&tw, "acc");
    mm_store(w, x, tw.buf && !tw.oom ? tw.buf : "acc", "%s", idx);
    w_free(&tw);
}

#define MM_BM 2
#define MM_BN 32
#define MM_BN1 96   /* columns of a block when A has one row */

/* The row values of A at k for a block's mb rows: a0, a1, ...; k is the loop's
 * variable when k < 0, else a constant (folded here: an int product widened to a
 * pointer offset is a finding of the static-analysis test) */
static void mm_block_a(Writer *w, int64_t mb, int64_t am, int64_t ak, const double *alpha, int64_t k)
{
    for (int64_t i = 0; i < mb; i++) {
        w_printf(w, "const float a%" PRId64 " = ", i);
        if (alpha) {
            em_literal(w, DT_FLOAT, *alpha);
            w_puts(w, " * ");
        }
        if (k < 0)
            w_printf(w, "ab[(m0 + %" PRId64 ") * %" PRId64 " + k * %" PRId64 "];\n", i, am, ak);
        else
            w_printf(w, "ab[(m0 + %" PRId64 ") * %" PRId64 " + %" PRId64 "];\n", i, am, k * ak);
    }
}

/* A block of whole vectors (nw a multiple of 8): one named array of 8 floats per
 * row and vector, updated in one loop over the lanes, which gcc 12 keeps in
 * registers; as acc[mb][nw] with loops over both, it spilled (the distillation
 * student's 64x64 by 64x784 weight gradient: 148 us at 4x32 in that form against
 * 90 us at 2x32 in this one, 98 us at 4x24).
 * With K >= 2 the first product is added where the block is loaded from Y and the
 * last where it is stored, in the same order as in the loop. A loop that only copies
 * Y into the arrays (or back) becomes a memcpy in gcc 12 (loop distribution), and
 * an array that a memcpy reads or writes stays in memory: every accumulator was
 * loaded and stored on each k (a one-row block of 8 vectors over 784 k, the
 * 784-64-10 MLP's first layer, ran at a third of the speed). */
static void emit_mm_block_vec(Writer *w, int64_t mb, int64_t nw, int64_t N, int64_t K, int64_t am, int64_t ak,
                              int64_t bk, int init_zero, const double *alpha)
{
    int64_t nv = nw / 8;
    int peel = K >= 2;
    for (int64_t i = 0; i < mb; i++)
        for (int64_t v = 0; v < nv; v++)
            w_line(w, "float c%" PRId64 "_%" PRId64 "[8];", i, v);
    w_open(w, "%s", "");
    if (peel) {
        w_line(w, "const float *restrict br = bb + n0;");
        mm_block_a(w, mb, am, ak, alpha, 0);
    }
    em_for_lanes(w, "l", 8);
    for (int64_t i = 0; i < mb; i++)
        for (int64_t v = 0; v < nv; v++) {
            w_printf(w, "c%" PRId64 "_%" PRId64 "[l] = ", i, v);
            if (!init_zero)
                w_printf(w, "yb[(m0 + %" PRId64 ") * %" PRId64 " + n0 + %" PRId64 " + l]%s", i, N, v * 8, peel ? " + " : "");
            if (peel)
                w_printf(w, "a%" PRId64 " * br[%" PRId64 " + l]", i, v * 8);
            else if (init_zero)
                w_puts(w, "0");
            w_puts(w, ";\n");
        }
    em_close(w, 2);
    w_open(w, "for (int64_t k = %d; k < %" PRId64 "; ++k)", peel, K - peel);
    w_line(w, "const float *restrict br = bb + k * %" PRId64 " + n0;", bk);
    mm_block_a(w, mb, am, ak, alpha, -1);
    em_for_lanes(w, "l", 8);
    for (int64_t i = 0; i < mb; i++)
        for (int64_t v = 0; v < nv; v++)
            w_line(w, "c%" PRId64 "_%" PRId64 "[l] += a%" PRId64 " * br[%" PRId64 " + l];", i, v, i, v * 8);
    em_close(w, 2);
    w_open(w, "%s", "");
    if (peel) {
        w_line(w, "const float *restrict br = bb + %" PRId64 " + n0;", (K - 1) * bk);
        mm_block_a(w, mb, am, ak, alpha, K - 1);
    }
    for (int64_t i = 0; i < mb; i++)
        for (int64_t v = 0; v < nv; v++) {
            em_for_lanes(w, "l", 8);
            w_printf(w, "yb[(m0 + %" PRId64 ") * %" PRId64 " + n0 + %" PRId64 " + l] = c%" PRId64 "_%" PRId64 "[l]", i, N,
                     v * 8, i, v);
            if (peel)
                w_printf(w, " + a%" PRId64 " * br[%" PRId64 " + l]", i, v * 8);
            w_puts(w, ";\n");
            w_close(w);
        }
    w_close(w);
}

static void emit_mm_block_acc(Writer *w, int64_t mb, int64_t nw, int64_t N, int64_t K, int64_t am, int64_t ak,
                              int64_t bk, int init_zero, const double *alpha)
{
    w_line(w, "float acc[%" PRId64 "][%" PRId64 "];", mb, nw);
    em_for(w, "mm", mb);
    em_for(w, "v", nw);
    if (init_zero)
        w_line(w, "acc[mm][v] = 0;");
    else
        w_line(w, "acc[mm][v] = yb[(m0 + mm) * %" PRId64 " + n0 + v];", N);
    em_close(w, 2);
    em_for(w, "k", K);
    w_line(w, "const float *restrict br = bb + k * %" PRId64 " + n0;", bk);
    em_for(w, "mm", mb);
    w_printf(w, "const float a = ");
    if (alpha) {
        em_literal(w, DT_FLOAT, *alpha);
        w_puts(w, " * ");
    }
    w_printf(w, "ab[(m0 + mm) * %" PRId64 " + k * %" PRId64 "];\n", am, ak);
    em_for(w, "v", nw);
    w_line(w, "acc[mm][v] += a * br[v];");
    em_close(w, 3);
    em_for(w, "mm", mb);
    em_for(w, "v", nw);
    w_line(w, "yb[(m0 + mm) * %" PRId64 " + n0 + v] = acc[mm][v];", N);
    em_close(w, 2);
}

static void emit_mm_block(Writer *w, int64_t mb, int64_t nw, int64_t N, int64_t K, int64_t am, int64_t ak,
                          int64_t bk, int init_zero, const double *alpha, const MmEpi *x)
{
    if (nw % 8 == 0)
        emit_mm_block_vec(w, mb, nw, N, K, am, ak, bk, init_zero, alpha);
    else
        emit_mm_block_acc(w, mb, nw, N, K, am, ak, bk, init_zero, alpha);
    if (mm_has_epi(x)) {
        /* after the store, over the block in cache: in the store it keeps gcc 12 from
         * holding acc in registers (see conv.c) */
        char yv[96];
        snprintf(yv, sizeof yv, "yb[(m0 + mm) * %" PRId64 " + n0 + v]", N);
        em_for(w, "mm", mb);
        em_for(w, "v", nw);
        mm_store(w, x, yv, "(m0 + mm) * %" PRId64 " + n0 + v", N);
        em_close(w, 2);
    }
}

static void emit_mm_blocked(Writer *w, int64_t M, int64_t N, int64_t K, int64_t am, int64_t ak, int64_t bk,
                            int init_zero, const double *alpha, const MmEpi *x)
{
    int64_t bn = N < MM_BN + MM_BN / 4 ? N : MM_BN, bm = M < MM_BM ? M : MM_BM;
    if (M == 1 && N >= 8) {
        /* one row: every multiply-add of a block waits for the one before it on the
         * same vector (its whole k loop is one chain per vector), so the block is as
         * wide as the registers allow, up to MM_BN1 columns, in even whole vectors */
        int64_t nblk = (N + MM_BN1 - 1) / MM_BN1;
        bn = ((N + nblk - 1) / nblk + 7) / 8 * 8;
        if (bn > N / 8 * 8)
            bn = N / 8 * 8;
    }
    int64_t nf = N / bn * bn, mf = M / bm * bm;
    for (int np = 0; np < 2; np++) {
        int64_t nw = np ? N - nf : bn;
        if (nw == 0)
            continue;
        if (np)
            w_open(w, "for (int64_t n0 = %" PRId64 "; n0 < %" PRId64 "; n0 += %" PRId64 ")", nf, N, nw);
        else
            w_open(w, "for (int64_t n0 = 0; n0 < %" PRId64 "; n0 += %" PRId64 ")", nf, bn);
        for (int mp = 0; mp < 2; mp++) {
            int64_t mb = mp ? M - mf : bm;
            if (mb == 0)
                continue;
            if (mp)
                w_open(w, "for (int64_t m0 = %" PRId64 "; m0 < %" PRId64 "; m0 += %" PRId64 ")", mf, M, mb);
            else
                w_open(w, "for (int64_t m0 = 0; m0 < %" PRId64 "; m0 += %" PRId64 ")", mf, bm);
            emit_mm_block(w, mb, nw, N, K, am, ak, bk, init_zero, alpha, x);
            w_close(w);
        }
        w_close(w);
    }
}

/* Store a dot product's `acc` at Y(m, n) (row length N; N = 0: Y(m) of a matrix-vector
 * product): through the node's epilogue if it has one, else (=|+=) [alpha *] acc. */
static void dot_store(Writer *w, const MmEpi *x, DType t, int init_zero, const double *alpha, int64_t N)
{
    char idx[64];
    if (N)
        snprintf(idx, sizeof idx, "m * %" PRId64 " + n", N);
    else
        snprintf(idx, sizeof idx, "m");
    if (mm_has_epi(x)) {
        mm_store_acc(w, x, t, init_zero, alpha, idx);
        return;
    }
    w_printf(w, "yb[%s] %s ", idx, init_zero ? "=" : "+=");
    if (alpha) {
        em_literal(w, t, *alpha);
        w_puts(w, " * ");
    }
    w_puts(w, "acc;\n");
}

int gemm_row_blocked(const Graph *g, int64_t K, int64_t N)
{
    const Target *tg = g->target ? g->target : target_default();
    return K * N * (int64_t)sizeof(float) <= tg->l2;
}

/* Emit Y[M,N] (=|+=) A[M,K] * B[K,N] with given element strides, into the row
 * pointers yb/ab/bb already declared by the caller. A(m,k) = ab[m*am + k*ak],
 * B(k,n) = bb[k*bk + n*bn], Y(m,n) = yb[m*N + n]. `alpha` (may be NULL) scales A.
 * If `init_zero`, Y is set to zero first (else it already holds the bias).
 * Float/int types only (not half). */
static void emit_mm_kernel(Emitter *e, DType t, int64_t M, int64_t N, int64_t K,
                           int64_t am, int64_t ak, int64_t bk, int64_t bn,
                           int init_zero, const double *alpha, const MmEpi *x)
{
    Writer *w = e->w;
    const char *ct = dtype_ctype(t);
    /* OpenMP (em_omp_for): every path's outer loop writes rows or column blocks of
     * Y of its own, each element summed by one thread in the usual order */
    if (bn != 1 && N > 1 && bk == 1) {
        /* B is transposed (rows of B^T contiguous in k): dot products over k */
        int64_t m_lo = 0;
        if (t == DT_FLOAT && ak == 1 && K >= 16 && M >= DOT_BM && N >= DOT_BN && N % DOT_BN == 0) {
            /* DOT_BM rows of A by DOT_BN rows of B^T at once: 8 independent vector
             * accumulators instead of one dependent chain per output (a 64x784 by
             * 784x64 product ran 1.5x faster with gcc 12 on znver3: 257 us against
             * 388 us). Each output's sum has emit_dot's order for sums shorter
             * than DOT_LONG (longer single dot products keep 32 partial sums). */
            int64_t Mf = M / DOT_BM * DOT_BM, K8 = K / 8 * 8;
            em_omp_for(e, Mf * N * K, 1);
            w_open(w, "for (int64_t m0 = 0; m0 < %" PRId64 "; m0 += %d)", Mf, DOT_BM);
            w_open(w, "for (int64_t n0 = 0; n0 < %" PRId64 "; n0 += %d)", N, DOT_BN);
            /* one named array of 8 partial sums per output and one pointer per row:
             * written as part[i][j][8] with loops over i and j, gcc 12 kept two of the
             * eight accumulators on the stack and reloaded operands (64x784 by 784x64:
             * 236 us against 99 us in this form, same sums in the same order) */
            for (int i = 0; i < DOT_BM; i++)
                w_line(w, "const float *restrict a%d = ab + (m0 + %d) * %" PRId64 ";", i, i, am);
            for (int j = 0; j < DOT_BN; j++)
                w_line(w, "const float *restrict b%d = bb + (n0 + %d) * %" PRId64 ";", j, j, bn);
            for (int i = 0; i < DOT_BM; i++)
                for (int j = 0; j < DOT_BN; j++)
                    w_line(w, "float p%d_%d[8];", i, j);
            em_for(w, "t", 8);
            for (int i = 0; i < DOT_BM; i++)
                for (int j = 0; j < DOT_BN; j++)
                    w_line(w, "p%d_%d[t] = 0;", i, j);
            w_close(w);
            w_open(w, "for (int64_t k = 0; k < %" PRId64 "; k += 8)", K8);
            em_for(w, "t", 8);
            for (int i = 0; i < DOT_BM; i++)
                for (int j = 0; j < DOT_BN; j++)
                    w_line(w, "p%d_%d[t] += a%d[k + t] * b%d[k + t];", i, j, i, j);
            em_close(w, 2);
            for (int i = 0; i < DOT_BM; i++)
                for (int j = 0; j < DOT_BN; j++) {
                    w_open(w, "%s", "");
                    w_line(w, "const int64_t m = m0 + %d, n = n0 + %d;", i, j);
                    w_line(w, "const float *p = p%d_%d;", i, j);
                    w_line(w, "float acc = 0;");
                    if (K8 < K) {
                        w_open(w, "for (int64_t k = %" PRId64 "; k < %" PRId64 "; ++k)", K8, K);
                        w_line(w, "acc += a%d[k] * b%d[k];", i, j);
                        w_close(w);
                    }
                    w_line(w, "acc += ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));");
                    dot_store(w, x, t, init_zero, alpha, N);
                    w_close(w);
                }
            em_close(w, 2);
            m_lo = Mf;
            if (m_lo == M)
                return;
        }
        em_omp_for(e, (M - m_lo) * N * K, 1);
        if (m_lo)
            w_open(w, "for (int64_t m = %" PRId64 "; m < %" PRId64 "; ++m)", m_lo, M);
        else
            em_for(w, "m", M);
        em_for(w, "n", N);
        char ax[64], bx[64];
        snprintf(ax, sizeof ax, "ab + m * %" PRId64, am);
        snprintf(bx, sizeof bx, "bb + n * %" PRId64, bn);
        emit_dot(e, ct, K, ax, ak, bx, 1);
        dot_store(w, x, t, init_zero, alpha, N);
        w_close(w);
        w_close(w);
        return;
    }
    if (N == 1) {
        /* matrix-vector: dot products */
        em_omp_for(e, M * K, 1);
        em_for(w, "m", M);
        char ax[64];
        snprintf(ax, sizeof ax, "ab + m * %" PRId64, am);
        emit_dot(e, ct, K, ax, ak, "bb", bk);
        dot_store(w, x, t, init_zero, alpha, 0);
        w_close(w);
        return;
    }
    if (t == DT_FLOAT && bn == 1 && N >= MM_BN / 2 && (M >= 2 || gemm_row_blocked(e->g, K, N))) {
        em_omp_for(e, M * N * K, 1);   /* the first column-block loop it opens */
        emit_mm_blocked(w, M, N, K, am, ak, bk, init_zero, alpha, x);
        return;
    }
    em_omp_for(e, M * N * K, 1);
    em_for(w, "m", M);
    w_line(w, "%s *restrict yr = yb + m * %" PRId64 ";", ct, N);
    if (init_zero) {
        em_for(w, "n", N);
        w_line(w, "yr[n] = 0;");
        w_close(w);
    }
    em_for(w, "k", K);
    w_printf(w, "const %s a = ", ct);
    if (alpha) {
        em_literal(w, t, *alpha);
        w_puts(w, " * ");
    }
    w_printf(w, "ab[m * %" PRId64 " + k * %" PRId64 "];\n", am, ak);
    w_line(w, "const %s *restrict br = bb + k * %" PRId64 ";", ct, bk);
    em_for(w, "n", N);
    if (bn == 1)
        w_line(w, "yr[n] += a * br[n];");
    else
        w_line(w, "yr[n] += a * br[n * %" PRId64 "];", bn);
    w_close(w);
    w_close(w);
    if (mm_has_epi(x)) {
        /* the row is complete: its epilogue while it is in cache */
        em_for(w, "n", N);
        mm_store(w, x, "yr[n]", "m * %" PRId64 " + n", N);
        w_close(w);
    }
    w_close(w);
}

/* ---------------------------------------------------------------- MatMul */

static int infer_matmul(Graph *g, Node *n, Diag *d)
{
    Value *a = need_input(g, n, 0, d), *b = a ? need_input(g, n, 1, d) : NULL;
    if (!b)
        return -1;
    if (a->dtype != b->dtype)
        return diag_error(d, n, "inputs have different element types (%s and %s)", dtype_name(a->dtype), dtype_name(b->dtype));
    if (a->rank < 1 || b->rank < 1)
        return diag_error(d, n, "MatMul inputs must have rank >= 1 (got %d and %d)", a->rank, b->rank);
    int64_t ka = a->dims[a->rank - 1];
    int64_t kb = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2];
    char sa[128], sb[128];
    if (ka != kb)
        return diag_error(d, n, "shapes %s and %s do not fit for MatMul (inner dims %lld and %lld)",
                          value_type_str(a, sa, sizeof sa), value_type_str(b, sb, sizeof sb), (long long)ka, (long long)kb);
    int ra = a->rank > 2 ? a->rank - 2 : 0, rb = b->rank > 2 ? b->rank - 2 : 0;
    int r;
    int64_t dims[KD_MAX_RANK];
    if (broadcast_shapes(ra, a->dims, rb, b->dims, &r, dims))
        return diag_error(d, n, "batch dims of %s and %s do not broadcast",
                          value_type_str(a, sa, sizeof sa), value_type_str(b, sb, sizeof sb));
    if (a->rank > 1)
        dims[r++] = a->dims[a->rank - 2];
    if (b->rank > 1)
        dims[r++] = b->dims[b->rank - 1];
    value_set_shape(node_out(g, n, 0), a->dtype, r, dims);
    return 0;
}

static int emit_matmul(Emitter *e, const Node *n, Diag *d)
{
    Writer *w = e->w;
    const Value *a = node_in(e->g, n, 0), *b = node_in(e->g, n, 1), *y = node_out(e->g, n, 0);
    const Value *bias = node_in(e->g, n, 2);
    DType t = a->dtype;
    Epilogue ep;
    if (!la_dtype_ok(t))
        return err_dtype(d, n, "MatMul", t);
    if (epilogue_read(e->g, n, 3, &ep, d))
        return -1;
    if ((ep.n || bias) && t != DT_FLOAT && t != DT_DOUBLE)
        return err_dtype(d, n, "FusedMatMul", t);
    int64_t M = a->rank > 1 ? a->dims[a->rank - 2] : 1;
    int64_t K = a->dims[a->rank - 1];
    int64_t N = b->rank > 1 ? b->dims[b->rank - 1] : 1;
    int ra = a->rank > 2 ? a->rank - 2 : 0, rb = b->rank > 2 ? b->rank - 2 : 0;
    int ry = y->rank - (a->rank > 1) - (b->rank > 1);
    Value va, vb, vy;
    shape_value(&va, ra, a->dims);
    shape_value(&vb, rb, b->dims);
    shape_value(&vy, ry, y->dims);
    if (value_numel(y) == 0 || K == 0) {
        void_params(e, n);
        if (value_numel(y) == 0)
            return 0;
        em_for(w, "i", value_numel(y));
        if (bias || ep.n) {
            char val[64] = "0";
            if (bias)
                snprintf(val, sizeof val, "x2[i %% %" PRId64 "]", N);
            epilogue_store(w, &ep, t, "y0[i]", val, "i");
        } else {
            w_line(w, "y0[i] = 0;");
        }
        w_close(w);
        return 0;
    }
    const Value *ins[2] = {&va, &vb};
    int k = em_broadcast_loops(w, &vy, ins, 2);
    const char *ct = dtype_ctype(t);
    w_line(w, "%s *restrict yb = y0 + i * %" PRId64 ";", ct, M * N);
    w_line(w, "const %s *restrict ab = x0 + j0 * %" PRId64 ";", ct, M * K);
    w_line(w, "const %s *restrict bb = x1 + j1 * %" PRId64 ";", ct, K * N);
    if (is_half(t)) {
        const char *ld = em_half_load(e, t), *st = em_half_store(e, t);
        em_for(w, "m", M);
        em_for(w, "n", N);
        w_line(w, "float acc = 0.0f;");
        em_for(w, "k", K);
        w_line(w, "acc += %s(ab[m * %" PRId64 " + k]) * %s(bb[k * %" PRId64 " + n]);", ld, K, ld, N);
        w_close(w);
        w_line(w, "yb[m * %" PRId64 " + n] = %s(acc);", N, st);
        w_close(w);
        w_close(w);
    } else {
        char base[64];
        snprintf(base, sizeof base, "i * %" PRId64 " + ", M * N);
        MmEpi x = {&ep, t, base};
        if (bias) {
            em_for(w, "m", M);
            em_for(w, "n", N);
            w_line(w, "yb[m * %" PRId64 " + n] = x2[n];", N);
            em_close(w, 2);
        }
        emit_mm_kernel(e, t, M, N, K, K, 1, N, 1, !bias, NULL, &x);
    }
    em_close(w, k);
    return 0;
}

/* d/dA = dY . B^T, d/dB = A^T . dY over the last two dims, summed over broadcast batch dims. */
/* The transpose of the last two axes of value v (rank >= 2). */
static int transpose_last2(GradCtx *c, int v)
{
    int r = c->g->values[v].rank;
    int64_t perm[KD_MAX_RANK];
    for (int i = 0; i < r; i++)
        perm[i] = i;
    perm[r - 2] = r - 1;
    perm[r - 1] = r - 2;
    Node *t = g_new(c, "Transpose", &v, 1, 1);
    if (!t)
        return -1;
    g_attr_ints(c, t, "perm", perm, r);
    return g_done(c, t);
}

static int reshape_to(GradCtx *c, int v, const int64_t *dims, int rank)
{
    int s = g_const_ints(c, dims, rank);
    return s < 0 ? -1 : g_op2(c, "Reshape", v, s);
}

/* Y = A B with numpy semantics. A 1-D A [K] is promoted to [1,K] and a 1-D B [K] to
 * [K,1], and dY gets the dims the forward pass removed back; then dA = dY B^T and
 * dB = A^T dY in the promoted shapes, summed over the batch dims broadcasting
 * expanded, and reshaped to the operands' own shapes. */
static int grad_matmul(GradCtx *c)
{
    int a = c->n->inputs[0], b = c->n->inputs[1], dy = c->dy[0];
    if (dy < 0)
        return 0;
    const Value *va = &c->g->values[a], *vb = &c->g->values[b], *vy = &c->g->values[dy];
    int ra = va->rank, rb = vb->rank, ry = vy->rank;
    int64_t K = va->dims[ra - 1];
    int64_t dims[KD_MAX_RANK + 2];
    int nb = ry - (ra > 1) - (rb > 1); /* batch dims of Y */
    if (nb + 2 > KD_MAX_RANK)
        return diag_unsupported(c->d, c->n, "gradient of a MatMul whose promoted output exceeds rank %d", KD_MAX_RANK);
    for (int i = 0; i < nb; i++)
        dims[i] = vy->dims[i];
    dims[nb] = ra > 1 ? va->dims[ra - 2] : 1;
    dims[nb + 1] = rb > 1 ? vb->dims[rb - 1] : 1;
    int a2 = a, b2 = b, dy2 = dy;
    if (ra == 1) {
        int64_t s[2] = {1, K};
        if ((a2 = reshape_to(c, a, s, 2)) < 0)
            return -1;
    }
    if (rb == 1) {
        int64_t s[2] = {K, 1};
        if ((b2 = reshape_to(c, b, s, 2)) < 0)
            return -1;
    }
    if ((ra == 1 || rb == 1) && (dy2 = reshape_to(c, dy, dims, nb + 2)) < 0)
        return -1;
    if (c->need[0]) {
        int bt = transpose_last2(c, b2);
        int m = bt < 0 ? -1 : g_op2(c, "MatMul", dy2, bt);
        int g = m < 0 ? -1 : g_unbroadcast(c, m, a2);
        if (g < 0 || (c->dx[0] = g_reshape_like(c, g, a)) < 0)
            return -1;
    }
    if (c->need[1]) {
        int at = transpose_last2(c, a2);
        int m = at < 0 ? -1 : g_op2(c, "MatMul", at, dy2);
        int g = m < 0 ? -1 : g_unbroadcast(c, m, b2);
        if (g < 0 || (c->dx[1] = g_reshape_like(c, g, b)) < 0)
            return -1;
    }
    return 0;
}

static const OpDef op_matmul = {
    .name = "MatMul", .domain = "", .since = 1,
    .min_inputs = 2, .max_inputs = 2, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_matmul, .emit = emit_matmul, .grad = grad_matmul,
    .summary = "matrix product with numpy semantics (1-D promotion, batch broadcasting)",
};

/* ---------------------------------------------------------------- Gemm */

static int infer_gemm(Graph *g, Node *n, Diag *d)
{
    Value *a = need_input(g, n, 0, d), *b = a ? need_input(g, n, 1, d) : NULL;
    if (!b)
        return -1;
    Value *c = node_in(g, n, 2);
    if (c && !value_shape_known(c))
        return diag_error(d, n, "the shape of input '%s' is not known", c->name);
    if (a->dtype != b->dtype || (c && c->dtype != a->dtype))
        return diag_error(d, n, "inputs have different element types");
    if (a->rank != 2 || b->rank != 2)
        return diag_error(d, n, "Gemm inputs A and B must be 2-D (got rank %d and %d)", a->rank, b->rank);
    int ta = attr_int(n, "transA", 0) != 0, tb = attr_int(n, "transB", 0) != 0;
    int64_t M = ta ? a->dims[1] : a->dims[0], K = ta ? a->dims[0] : a->dims[1];
    int64_t Kb = tb ? b->dims[1] : b->dims[0], N = tb ? b->dims[0] : b->dims[1];
    if (K != Kb)
        return diag_error(d, n, "inner dims of A and B do not match (%lld and %lld)", (long long)K, (long long)Kb);
    if (c) {
        if (c->rank > 2)
            return diag_error(d, n, "C must have rank <= 2 (got %d)", c->rank);
        int64_t c0 = c->rank == 2 ? c->dims[0] : 1, c1 = c->rank >= 1 ? c->dims[c->rank - 1] : 1;
        if ((c0 != 1 && c0 != M) || (c1 != 1 && c1 != N))
            return diag_error(d, n, "C of shape [%lld,%lld] does not broadcast to [%lld,%lld]",
                              (long long)c0, (long long)c1, (long long)M, (long long)N);
    }
    int64_t dims[2] = {M, N};
    value_set_shape(node_out(g, n, 0), a->dtype, 2, dims);
    return 0;
}

static int emit_gemm(Emitter *e, const Node *n, Diag *d)
{
    Writer *w = e->w;
    const Value *a = node_in(e->g, n, 0), *c = node_in(e->g, n, 2);
    DType t = a->dtype;
    Epilogue ep;
    if (!la_dtype_ok(t))
        return err_dtype(d, n, "Gemm", t);
    if (epilogue_read(e->g, n, 3, &ep, d))
        return -1;
    if (ep.n && t != DT_FLOAT && t != DT_DOUBLE)
        return err_dtype(d, n, "FusedGemm", t);
    int ta = attr_int(n, "transA", 0) != 0, tb = attr_int(n, "transB", 0) != 0;
    double alpha = attr_float(n, "alpha", 1.0), beta = attr_float(n, "beta", 1.0);
    const Value *y = node_out(e->g, n, 0);
    int64_t M = y->dims[0], N = y->dims[1], K = ta ? a->dims[0] : a->dims[1];
    int64_t am = ta ? 1 : K, ak = ta ? M : 1, bk = tb ? 1 : N, bn = tb ? K : 1;
    if (M * N == 0 || K == 0) {
        void_params(e, n);
        if (M * N == 0)
            return 0;
    }
    int64_t cm = 0, cn = 0;
    if (c) {
        int64_t c0 = c->rank == 2 ? c->dims[0] : 1, c1 = c->rank >= 1 ? c->dims[c->rank - 1] : 1;
        cn = (c1 == 1) ? 0 : 1;
        cm = (c0 == 1) ? 0 : c1;
    }
    int use_c = c && beta != 0.0;
    if (c && !use_c && K != 0)
        w_line(w, "(void)x2;");
    const char *ct = dtype_ctype(t);
    if (is_half(t)) {
        const char *ld = em_half_load(e, t), *st = em_half_store(e, t);
        em_for(w, "m", M);
        em_for(w, "n", N);
        w_line(w, "float acc = 0.0f;");
        em_for(w, "k", K);
        w_line(w, "acc += %s(x0[m * %" PRId64 " + k * %" PRId64 "]) * %s(x1[k * %" PRId64 " + n * %" PRId64 "]);",
               ld, am, ak, ld, bk, bn);
        w_close(w);
        w_printf(w, "y0[m * %" PRId64 " + n] = %s(", N, st);
        w_float(w, (float)alpha);
        w_puts(w, " * acc");
        if (use_c) {
            w_puts(w, " + ");
            w_float(w, (float)beta);
            w_printf(w, " * %s(x2[m * %" PRId64 " + n * %" PRId64 "])", ld, cm, cn);
        }
        w_puts(w, ");\n");
        w_close(w);
        w_close(w);
        return 0;
    }
    /* Y = beta*C first, then Y += (alpha*A) B */
    if (use_c) {
        em_for(w, "m", M);
        em_for(w, "n", N);
        w_printf(w, "y0[m * %" PRId64 " + n] = ", N);
        if (beta != 1.0) {
            em_literal(w, t, beta);
            w_puts(w, " * ");
        }
        w_printf(w, "x2[m * %" PRId64 " + n * %" PRId64 "];\n", cm, cn);
        w_close(w);
        w_close(w);
    }
    if (K == 0) {
        if (!use_c) {
            em_for(w, "i", M * N);
            w_line(w, "y0[i] = 0;");
            w_close(w);
        }
        if (ep.n) {
            em_for(w, "i", M * N);
            epilogue_store(w, &ep, t, "y0[i]", "y0[i]", "i");
            w_close(w);
        }
        return 0;
    }
    MmEpi x = {&ep, t, ""};
    w_line(w, "%s *yb = y0;", ct);
    w_line(w, "const %s *restrict ab = x0;", ct);
    w_line(w, "const %s *restrict bb = x1;", ct);
    emit_mm_kernel(e, t, M, N, K, am, ak, bk, bn, !use_c, alpha != 1.0 ? &alpha : NULL, &x);
    return 0;
}

/* Y = alpha op(A) op(B) + beta C: each gradient is one more Gemm with the right transposes. */
static int gemm_node(GradCtx *c, int x, int y, int ta, int tb, double alpha)
{
    int ins[2] = {x, y};
    Node *n = g_new(c, "Gemm", ins, 2, 1);
    if (!n)
        return -1;
    if (ta)
        g_attr_i(c, n, "transA", 1);
    if (tb)
        g_attr_i(c, n, "transB", 1);
    if (alpha != 1.0)
        g_attr_f(c, n, "alpha", alpha);
    return g_done(c, n);
}

static int grad_gemm(GradCtx *c)
{
    Node *n = c->n;
    int a = n->inputs[0], b = n->inputs[1], dy = c->dy[0];
    int ta = (int)attr_int(n, "transA", 0), tb = (int)attr_int(n, "transB", 0);
    double alpha = attr_float(n, "alpha", 1), beta = attr_float(n, "beta", 1);
    if (dy < 0)
        return 0;
    if (c->need[0]) /* dA = alpha dY op(B)^T, or its transpose */
        c->dx[0] = ta ? gemm_node(c, b, dy, tb, 1, alpha) : gemm_node(c, dy, b, 0, !tb, alpha);
    if (c->need[1]) /* dB = alpha op(A)^T dY, or its transpose */
        c->dx[1] = tb ? gemm_node(c, dy, a, 1, ta, alpha) : gemm_node(c, a, dy, !ta, 0, alpha);
    if ((c->need[0] && c->dx[0] < 0) || (c->need[1] && c->dx[1] < 0))
        return -1;
    if (n->ninputs > 2 && c->need[2]) {
        int g = dy;
        if (beta != 1.0)
            g = g_op2(c, "Mul", dy, g_const_scalar(c, DT_FLOAT, beta));
        if ((c->dx[2] = g_unbroadcast(c, g, n->inputs[2])) < 0)
            return -1;
    }
    return 0;
}

static const OpDef op_gemm = {
    .name = "Gemm", .domain = "", .since = 1,
    .min_inputs = 2, .max_inputs = 3, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_gemm, .emit = emit_gemm, .grad = grad_gemm,
    .summary = "alpha * op(A) op(B) + beta * C",
};

/* ---------------------------------------------------------------- fused forms
 * kdcc.FusedGemm(A, B, C?, operands...): Gemm with an epilogue (fused.h);
 * kdcc.FusedMatMul(A, B, bias?, operands...): MatMul (numpy semantics) plus a bias
 * of N elements added to every row, then the epilogue. Both made by passes/fuse.c. */
static int infer_fused_tail(Graph *g, Node *n, Diag *d)
{
    Epilogue ep;
    for (int i = 3; i < n->ninputs; i++)
        if (node_in(g, n, i) && !need_input(g, n, i, d))
            return -1;
    if (epilogue_read(g, n, 3, &ep, d) || epilogue_check(g, n, &ep, node_out(g, n, 0), d))
        return -1;
    return 0;
}

static int infer_fused_gemm(Graph *g, Node *n, Diag *d)
{
    return infer_gemm(g, n, d) ? -1 : infer_fused_tail(g, n, d);
}

static int infer_fused_matmul(Graph *g, Node *n, Diag *d)
{
    if (infer_matmul(g, n, d))
        return -1;
    const Value *y = node_out(g, n, 0), *b = node_in(g, n, 2);
    if (b) {
        if (!need_input(g, n, 2, d))
            return -1;
        const Value *bv = node_in(g, n, 1);
        int64_t N = bv->rank > 1 ? bv->dims[bv->rank - 1] : 1;
        if (b->dtype != y->dtype || value_numel(b) != N || (b->rank >= 1 && b->dims[b->rank - 1] != N))
            return diag_error(d, n, "bias '%s' must have %lld elements of type %s", b->name, (long long)N,
                              dtype_name(y->dtype));
        if (y->dtype != DT_FLOAT && y->dtype != DT_DOUBLE)
            return err_dtype(d, n, "FusedMatMul with a bias", y->dtype);
    }
    return infer_fused_tail(g, n, d);
}

static const OpDef op_fused_gemm = {
    .name = "FusedGemm", .domain = "kdcc", .since = 1,
    .min_inputs = 2, .max_inputs = -1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_fused_gemm, .emit = emit_gemm,
    .summary = "Gemm with an epilogue of elementwise steps (activation, residual add) at the store (made by the fusion pass)",
};

static const OpDef op_fused_matmul = {
    .name = "FusedMatMul", .domain = "kdcc", .since = 1,
    .min_inputs = 2, .max_inputs = -1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_fused_matmul, .emit = emit_matmul,
    .summary = "MatMul plus a bias over the last dim and an epilogue of elementwise steps (made by the fusion pass)",
};

/* ---------------------------------------------------------------- Einsum */

#define EIN_MAX_LABELS (52 + KD_MAX_RANK)
#define EIN_MAX_INPUTS 16

/* A parsed equation: per input and the output, the label id of each dim.
 * Letters are 0..51 (A-Z then a-z: ASCII order); ellipsis dims are 52+j. */
typedef struct Einsum {
    int nin;
    int rank[EIN_MAX_INPUTS];
    int lab[EIN_MAX_INPUTS][KD_MAX_RANK];
    int orank;
    int olab[KD_MAX_RANK];
    int64_t size[EIN_MAX_LABELS];
} Einsum;

static int letter_id(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return 26 + (c - 'a');
    return -1;
}

/* Parse one term (no spaces) into labels; ell_rank dims for "..." (with erank total
 * ellipsis dims, right-aligned). Returns count or -1. */
static int parse_term(const char *s, size_t len, int ell_rank, int erank, int *lab, int max, int *has_ell)
{
    int r = 0;
    *has_ell = 0;
    for (size_t i = 0; i < len;) {
        if (s[i] == '.') {
            if (i + 2 >= len || s[i + 1] != '.' || s[i + 2] != '.' || *has_ell)
                return -1;
            *has_ell = 1;
            for (int j = 0; j < ell_rank; j++) {
                if (r >= max)
                    return -1;
                lab[r++] = 52 + (erank - ell_rank) + j;
            }
            i += 3;
            continue;
        }
        int id = letter_id(s[i]);
        if (id < 0 || r >= max)
            return -1;
        lab[r++] = id;
        i++;
    }
    return r;
}

static int count_letters(const char *s, size_t len, int *has_ell)
{
    int c = 0;
    *has_ell = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.')
            *has_ell = 1;
        else
            c++;
    }
    return c;
}

static int einsum_parse(const Graph *g, const Node *n, Einsum *es, Diag *d)
{
    const char *eq0 = attr_string(n, "equation", NULL);
    if (!eq0)
        return diag_error(d, n, "attribute 'equation' is missing");
    /* strip spaces */
    char eq[512];
    size_t L = 0;
    for (const char *p = eq0; *p; p++) {
        if (*p == ' ' || *p == '\t')
            continue;
        if (L + 1 >= sizeof eq)
            return diag_unsupported(d, n, "equation is too long");
        eq[L++] = *p;
    }
    eq[L] = 0;
    const char *arrow = strstr(eq, "->");
    size_t lhs_len = arrow ? (size_t)(arrow - eq) : L;
    memset(es, 0, sizeof *es);
    es->nin = n->ninputs;
    if (es->nin > EIN_MAX_INPUTS)
        return diag_unsupported(d, n, "Einsum with more than %d inputs", EIN_MAX_INPUTS);
    /* split the lhs on commas; first pass: ellipsis ranks */
    const char *terms[EIN_MAX_INPUTS];
    size_t tlen[EIN_MAX_INPUTS];
    int nt = 0;
    size_t st = 0;
    for (size_t i = 0; i <= lhs_len; i++) {
        if (i == lhs_len || eq[i] == ',') {
            if (nt >= EIN_MAX_INPUTS)
                return diag_error(d, n, "equation '%s' has too many terms", eq0);
            terms[nt] = eq + st;
            tlen[nt] = i - st;
            nt++;
            st = i + 1;
        }
    }
    if (nt != es->nin)
        return diag_error(d, n, "equation '%s' has %d input terms but the node has %d inputs", eq0, nt, es->nin);
    int erank = 0, ell_rank[EIN_MAX_INPUTS];
    for (int k = 0; k < nt; k++) {
        const Value *v = node_in(g, n, k);
        if (!v)
            return diag_error(d, n, "input %d is missing", k);
        int he, nl = count_letters(terms[k], tlen[k], &he);
        ell_rank[k] = he ? v->rank - nl : 0;
        if (ell_rank[k] < 0 || (!he && nl != v->rank))
            return diag_error(d, n, "term %d of equation '%s' does not match the rank %d of input '%s'", k, eq0, v->rank, v->name);
        if (ell_rank[k] > erank)
            erank = ell_rank[k];
    }
    for (int i = 0; i < EIN_MAX_LABELS; i++)
        es->size[i] = -1;
    int count[EIN_MAX_LABELS] = {0};
    int any_ell = 0;
    for (int k = 0; k < nt; k++) {
        const Value *v = node_in(g, n, k);
        int he;
        int r = parse_term(terms[k], tlen[k], ell_rank[k], erank, es->lab[k], KD_MAX_RANK, &he);
        if (r != v->rank)
            return diag_error(d, n, "cannot parse term %d of equation '%s'", k, eq0);
        any_ell |= he;
        es->rank[k] = r;
        for (int i = 0; i < r; i++) {
            int l = es->lab[k][i];
            int64_t dim = v->dims[i];
            count[l]++;
            if (es->size[l] < 0 || es->size[l] == 1)
                es->size[l] = dim;
            else if (dim != 1 && dim != es->size[l])
                return diag_error(d, n, "label '%c' has sizes %lld and %lld in equation '%s'",
                                  l < 26 ? 'A' + l : l < 52 ? 'a' + l - 26 : '.', (long long)es->size[l], (long long)dim, eq0);
        }
    }
    if (arrow) {
        const char *o = arrow + 2;
        int he;
        int r = parse_term(o, strlen(o), erank, erank, es->olab, KD_MAX_RANK, &he);
        if (r < 0)
            return diag_error(d, n, "cannot parse the output term of equation '%s'", eq0);
        for (int i = 0; i < r; i++) {
            if (es->size[es->olab[i]] < 0)
                return diag_error(d, n, "output label %d of equation '%s' does not appear in the inputs", i, eq0);
            for (int j = 0; j < i; j++)
                if (es->olab[j] == es->olab[i])
                    return diag_error(d, n, "output label repeated in equation '%s'", eq0);
        }
        es->orank = r;
    } else {
        int r = 0;
        if (any_ell)
            for (int j = 0; j < erank; j++)
                es->olab[r++] = 52 + j;
        for (int l = 0; l < 52; l++)
            if (count[l] == 1) {
                if (r >= KD_MAX_RANK)
                    return diag_unsupported(d, n, "output of rank > %d", KD_MAX_RANK);
                es->olab[r++] = l;
            }
        es->orank = r;
    }
    return 0;
}

static int infer_einsum(Graph *g, Node *n, Diag *d)
{
    for (int i = 0; i < n->ninputs; i++)
        if (!need_input(g, n, i, d))
            return -1;
    DType t = node_in(g, n, 0)->dtype;
    for (int i = 1; i < n->ninputs; i++)
        if (node_in(g, n, i)->dtype != t)
            return diag_error(d, n, "inputs have different element types");
    Einsum es;
    if (einsum_parse(g, n, &es, d))
        return -1;
    int64_t dims[KD_MAX_RANK];
    for (int i = 0; i < es.orank; i++)
        dims[i] = es.size[es.olab[i]];
    value_set_shape(node_out(g, n, 0), t, es.orank, dims);
    return 0;
}

/* index expression of input k: sum over its dims of label var * stride */
static void einsum_index(Writer *w, const Einsum *es, const Value *v, int k)
{
    int64_t st[KD_MAX_RANK];
    shape_strides(v->rank, v->dims, st);
    int any = 0;
    for (int i = 0; i < es->rank[k]; i++) {
        if (v->dims[i] == 1)
            continue;
        w_printf(w, "%sl%d * %" PRId64, any ? " + " : "", es->lab[k][i], st[i]);
        any = 1;
    }
    if (!any)
        w_puts(w, "0");
}

static int emit_einsum(Emitter *e, const Node *n, Diag *d)
{
    Writer *w = e->w;
    const Value *y = node_out(e->g, n, 0);
    DType t = y->dtype;
    if (!la_dtype_ok(t))
        return err_dtype(d, n, "Einsum", t);
    Einsum es;
    if (einsum_parse(e->g, n, &es, d))
        return -1;
    if (value_numel(y) == 0) {
        void_params(e, n);
        return 0;
    }
    int is_out[EIN_MAX_LABELS] = {0}, used[EIN_MAX_LABELS] = {0};
    for (int i = 0; i < es.orank; i++)
        is_out[es.olab[i]] = 1;
    for (int k = 0; k < es.nin; k++)
        for (int i = 0; i < es.rank[k]; i++)
            used[es.lab[k][i]] = 1;
    const char *ld = em_half_load(e, t), *stf = em_half_store(e, t);
    int opened = 0;
    for (int i = 0; i < es.orank; i++) {
        char var[16];
        snprintf(var, sizeof var, "l%d", es.olab[i]);
        em_for(w, var, es.size[es.olab[i]]);
        opened++;
    }
    int64_t ost[KD_MAX_RANK];
    shape_strides(y->rank, y->dims, ost);
    w_printf(w, "%s acc = 0;\n", acc_ctype(t));
    int inner = 0;
    for (int l = 0; l < EIN_MAX_LABELS; l++)
        if (used[l] && !is_out[l]) {
            char var[16];
            snprintf(var, sizeof var, "l%d", l);
            em_for(w, var, es.size[l]);
            inner++;
        }
    w_puts(w, "acc += ");
    for (int k = 0; k < es.nin; k++) {
        w_printf(w, "%s%s(x%d[", k ? " * " : "", ld, k);
        einsum_index(w, &es, node_in(e->g, n, k), k);
        w_puts(w, "])");
    }
    w_puts(w, ";\n");
    em_close(w, inner);
    w_puts(w, "y0[");
    int any = 0;
    for (int i = 0; i < es.orank; i++) {
        w_printf(w, "%sl%d * %" PRId64, any ? " + " : "", es.olab[i], ost[i]);
        any = 1;
    }
    if (!any)
        w_puts(w, "0");
    w_printf(w, "] = %s(acc);\n", stf);
    em_close(w, opened);
    return 0;
}

static const OpDef op_einsum = {
    .name = "Einsum", .domain = "", .since = 12,
    .min_inputs = 1, .max_inputs = -1, .min_outputs = 1, .max_outputs = 1,
    .infer = infer_einsum, .emit = emit_einsum,
    .summary = "Einstein summation (explicit and implicit output, ellipsis)",
};

const OpDef *const ops_gemm[] = {&op_matmul, &op_gemm, &op_einsum, &op_fused_gemm, &op_fused_matmul, NULL};
