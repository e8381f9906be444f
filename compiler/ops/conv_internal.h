/* Shared by the convolution family's files: compiler/ops/conv.c (the operators,
 * geometry, the direct, padded-plane, im2col and per-row kernels, gradients) and
 * the files of further kernels (compiler/ops/conv_wino.c: Winograd F(2x2,3x3) and F(4x4,3x3);
 * compiler/ops/conv_dw.c: depthwise and pointwise). Not for other families. */
#ifndef KDCC_CONV_INTERNAL_H
#define KDCC_CONV_INTERNAL_H

#include "compiler/ops/fused.h"

#define MAX_SP (KD_MAX_RANK - 2)
#define UNROLL_TAPS 16   /* last-dim kernel taps written out one by one up to this size */
#define PP_MIN_M 4       /* fewer output channels per group (depthwise): other paths */

typedef struct ConvGeom {
    int transpose;
    int nsp;                       /* spatial dims */
    int64_t N, C, M, G;            /* batch, input channels, output channels, groups */
    int64_t in[MAX_SP], out[MAX_SP], k[MAX_SP];
    int64_t s[MAX_SP], dl[MAX_SP], pb[MAX_SP], pe[MAX_SP];
} ConvGeom;

int64_t conv_floordiv(int64_t a, int64_t b); /* b > 0 */
int64_t conv_ceildiv(int64_t a, int64_t b);  /* b > 0 */

/* The geometry of Conv (transpose 0) or ConvTranspose (1) node n from its inputs'
 * shapes and attributes. 0, or -1 with a diagnostic. */
int conv_geom(const Graph *g, const Node *n, int transpose, ConvGeom *cg, Diag *d);

/* The store of output element y0[idx] = val, through the node's epilogue (fused.h). */
void conv_store(Writer *w, const Epilogue *ep, DType dt, const char *val, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* 1 if node n's epilogue reads no tensor operand element by element (activations,
 * scalar operands), so it works the same on an output stored channels-last. */
int conv_epilogue_index_free(const Graph *g, const Node *n);

/* The epilogue over the finished output planes of channels m0 .. m0 + mb - 1 of
 * image b (C variables b and m0 in scope): one contiguous, vectorisable pass. */
void conv_epilogue_planes(Writer *w, const Epilogue *ep, int64_t M, int64_t OSZ, int64_t mb);

/* The register block (output channels x pixels): --tune's choice for the node
 * (Node.block_m/n), else the target's. */
void conv_block(const Graph *g, const Node *n, int64_t *mr, int64_t *nr);

/* The floats of one named accumulator array in a block `width` floats wide: the
 * target's vector (16 on x86-64-v4) when it divides width, else 8. */
int64_t conv_lanes(const Graph *g, int64_t width);

/* The padded-plane kernel's block of nr output pixels on an OH x OW map: VW columns
 * (a multiple of 8 that divides nr, or nr itself) by R = nr / VW rows (at most OH),
 * the shape with the fewest pixels outside the output, the widest of those. */
void conv_block_shape(int64_t nr, int64_t OH, int64_t OW, int64_t *VW, int64_t *R);

/* Valid output-pixel range [lo, hi) of last-dim tap kl along dim L. */
void conv_tap_range(const ConvGeom *cg, int L, int64_t kl, int64_t *lo, int64_t *hi);

/* The body of a loop that fills the padded row `pr` (PW floats) from input row u
 * (C variables pr, u and the row pointer xr = xc + u * IW in scope): zeros when u
 * is outside [0, IH) (the rest in an else), zeros outside padded columns [clo, chi),
 * and in between pr[c] = xr[c * stride + off]. */
void conv_pad_row(Writer *w, int64_t IH, int64_t IW, int64_t PW, int64_t clo, int64_t chi, int64_t stride, int64_t off);

/* The accumulators of a named-array register block, c{mm}_{q}[lv] for mb channels
 * by nq vectors, set to the channel's bias (x2[m0 + mm]) or 0. */
void conv_vec_acc_init(Writer *w, int64_t mb, int64_t nq, int64_t lv, int has_bias);

/* One kernel row's taps of a padded-plane block in named arrays (the body inside the
 * loops that set xk, the plane row, and wk, the first channel's weights of that row):
 * for each of the K1 taps, mb weights (channel mm's at wk[mm * wstride + kl]) times
 * nq vectors of lv pixels, vector q at (q / vr) * rs floats from xk (rs: the plane's
 * row stride), column q % vr * lv. Tap kl reads column kl * dl1 of the padded row, in
 * phase plane (kl * dl1 % S1) of PS floats when the layer is strided along the row
 * (S1 > 1). */
void conv_vec_taps(Writer *w, int64_t mb, int64_t wstride, int64_t K1, int64_t dl1, int64_t S1, int64_t PS, int64_t rs,
                   int64_t nq, int64_t vr, int64_t lv);

/* ---- compiler/ops/conv_dw.c: depthwise and pointwise kernels ---- */
/* Scratch bytes of the depthwise or pointwise kernel for node n (geometry cg,
 * flattened or not), 0 if neither takes it or it needs none; a form whose scratch
 * exceeds the node's budget gives way to one whose scratch is smaller. */
int64_t conv_dw_scratch(const Graph *g, const Node *n, const ConvGeom *cg, int64_t budget);
/* For OpDef.tunable: 1 if the pointwise kernel takes n (it honours the block), 0 if
 * the depthwise kernel does (it has none), -1 if neither. */
int conv_dw_tunable(const Graph *g, const Node *n);
/* For OpDef.tune_forms: the pointwise kernel's forms where it could take either. */
const char *const *conv_dw_forms(const Graph *g, const Node *n);
/* Emit Conv through the kernel: 1 if emitted, 0 if the case is not one it takes. */
int emit_conv_depthwise(Emitter *e, const Node *n, const ConvGeom *cg, const Epilogue *ep);
int emit_conv_pointwise(Emitter *e, const Node *n, const ConvGeom *cg, const Epilogue *ep);

#endif
