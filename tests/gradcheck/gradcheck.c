/* Gradient checks through emitted code.
 *
 * For each case (a small model in the textual syntax): the outputs are folded
 * into a scalar loss L = sum_k sum(y_k * R_k) with fixed random R_k, autodiff
 * adds d L / d x for every float graph input x, and the whole graph is emitted
 * as C, compiled with $CC and run by a harness that compares each analytic
 * gradient element (a sample of them for big inputs) with the central finite
 * difference (L(x + h) - L(x - h)) / 2h computed by running the same code.
 * A case passes when every compared element satisfies
 *     |analytic - numeric| <= 2e-3 + 3e-2 * max(|analytic|, |numeric|).
 */
#include "compiler/cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef GRADCHECK_WORK
#define GRADCHECK_WORK "/tmp/kdcc-gradcheck"
#endif

typedef struct Case {
    const char *name;
    const char *text;
} Case;

#define HDR "<ir_version: 8, opset_import: [\"\" : 17, \"kdcc\" : 1]>\n"

static const Case CASES[] = {
    {"gemm_transB_bias", HDR "g (float[3,4] x, float[5,4] w, float[5] b) => (float[3,5] y) {\n"
                             "  y = Gemm <transB: int = 1> (x, w, b)\n}"},
    {"gemm_transA_alpha_beta", HDR "g (float[4,3] x, float[4,5] w, float[1,5] c) => (float[3,5] y) {\n"
                                   "  y = Gemm <transA: int = 1, alpha: float = 0.5, beta: float = 2.0> (x, w, c)\n}"},
    {"gemm_both_transposed", HDR "g (float[4,3] x, float[5,4] w) => (float[3,5] y) {\n"
                                 "  y = Gemm <transA: int = 1, transB: int = 1> (x, w)\n}"},
    {"matmul_batched_broadcast", HDR "g (float[2,3,4] x, float[4,5] w) => (float[2,3,5] y) {\n"
                                     "  y = MatMul(x, w)\n}"},
    {"add_sub_mul_div_broadcast", HDR "g (float[2,3] a, float[3] b, float[2,1] pos_c) => (float[2,3] y) {\n"
                                      "  s = Add(a, b)\n  t = Sub(s, pos_c)\n  u = Mul(t, b)\n  y = Div(u, pos_c)\n}"},
    {"activations", HDR "g (float[2,8] x) => (float[2,8] y1, float[2,8] y2, float[2,8] y3, float[2,8] y4, float[2,8] y5, float[2,8] y6) {\n"
                        "  y1 = Relu(x)\n  y2 = LeakyRelu <alpha: float = 0.1> (x)\n  y3 = Sigmoid(x)\n"
                        "  y4 = Tanh(x)\n  y5 = HardSwish(x)\n  y6 = Erf(x)\n}"},
    {"gelu_clip_elu", HDR "g (float[3,5] x) => (float[3,5] y1, float[3,5] y2, float[3,5] y3) <float lo = {-0.5}, float hi = {0.6}> {\n"
                          "  y1 = Gelu(x)\n  y2 = Clip(x, lo, hi)\n  y3 = Elu(x)\n}"},
    {"reshape_flatten_transpose", HDR "g (float[2,3,4] x, float[12,2] w) => (float[2,2] y) <int64[2] s = {2, 12}> {\n"
                                      "  t = Transpose <perm: ints = [0, 2, 1]> (x)\n  r = Reshape(t, s)\n"
                                      "  f = Flatten <axis: int = 1> (r)\n  y = MatMul(f, w)\n}"},
    {"mlp_two_layers", HDR "g (float[4,6] x, float[6,5] w1, float[5] b1, float[5,3] w2, float[3] b2) => (float[4,3] y) {\n"
                           "  h = MatMul(x, w1)\n  hb = Add(h, b1)\n  a = Relu(hb)\n  o = MatMul(a, w2)\n  y = Add(o, b2)\n}"},
    {"value_used_twice", HDR "g (float[3,3] x) => (float[3,3] y) {\n  s = Mul(x, x)\n  y = Add(s, x)\n}"},
    {"distill_loss_kl", HDR "g (float[4,5] z) => (float loss)\n"
                            "<int64[4] lab = {1, -1, 4, 0}, float[4,5] p = {0.1, 0.2, 0.3, 0.2, 0.2, 0.5, 0.1, 0.1, 0.2, 0.1,"
                            " 0.0, 0.0, 0.0, 0.0, 1.0, 0.25, 0.25, 0.25, 0.125, 0.125}> {\n"
                            "  loss = kdcc.DistillLoss <temperature: float = 3.0, alpha: float = 0.7> (z, lab, p)\n}"},
    {"distill_loss_mse", HDR "g (float[2,3] z) => (float loss) <int64[2] lab = {2, 0}, float[2,3] t = {1.5, -0.5, 0.25, 2, 0, -1}> {\n"
                             "  loss = kdcc.DistillLoss <temperature: float = 2.0, alpha: float = 0.4, soft_loss: string = \"mse\"> (z, lab, t)\n}"},
    {"distill_loss_soft_only", HDR "g (float[3,4] z) => (float loss) <float[3,4] p = {0.7, 0.1, 0.1, 0.1, 0.25, 0.25, 0.25, 0.25, 0.0, 0.5, 0.5, 0.0}> {\n"
                                   "  loss = kdcc.DistillLoss <temperature: float = 4.0, alpha: float = 1.0> (z, , p)\n}"},
/* more cases, one file per operator family */
#include "cases_conv_pool.inc"
#include "cases_norm_shape.inc"
#include "cases_matmul_gather.inc"
};

static uint32_t rng = 12345;
static float frand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

static int write_text(const char *path, const Writer *w)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int bad = w->len && fwrite(w->buf, 1, w->len, f) != w->len;
    return (fclose(f) != 0 || bad) ? -1 : 0;
}

/* Build the loss and gradient graph; returns 0 and fills wrt ids. */
static int build(Graph *g, int *wrt, int *nwrt, int *grads, Diag *d)
{
    PassOptions po = {.fold = 1};
    if (ops_resolve(g, d) || pass_bind(g, &po, d) || pass_infer(g, 1, d))
        return -1;
    GradCtx c = {.g = g, .d = d};
    int loss = -1;
    for (int k = 0; k < g->noutputs; k++) {
        Value *y = &g->values[g->outputs[k]];
        int r = graph_new_value(g, "R");
        float *p = value_make_const(g, &g->values[r], DT_FLOAT, y->rank, y->dims);
        if (!p)
            return diag_error(d, NULL, "out of memory");
        for (int64_t i = 0; i < value_numel(y); i++)
            p[i] = frand();
        int m = g_op2(&c, "Mul", g->outputs[k], r);
        Node *rs = g_new(&c, "ReduceSum", &m, 1, 1);
        if (m < 0 || !rs)
            return -1;
        g_attr_i(&c, rs, "keepdims", 0);
        int s = g_done(&c, rs);
        if (s < 0)
            return -1;
        loss = loss < 0 ? s : g_op2(&c, "Add", loss, s);
        if (loss < 0)
            return -1;
        g->values[g->outputs[k]].is_output = 0;
    }
    *nwrt = 0;
    for (int i = 0; i < g->ninputs; i++)
        if (g->values[g->inputs[i]].role == VR_INPUT && g->values[g->inputs[i]].dtype == DT_FLOAT)
            wrt[(*nwrt)++] = g->inputs[i];
    if (pass_autodiff(g, loss, wrt, *nwrt, grads, d))
        return -1;
    g->noutputs = 0;
    g->outputs = arena_array(g->arena, (size_t)*nwrt + 1, sizeof(int));
    g->outputs[g->noutputs++] = loss;
    g->values[loss].is_output = 1;
    for (int i = 0; i < *nwrt; i++) {
        if (grads[i] < 0)
            return diag_error(d, NULL, "no gradient for input '%s'", g->values[wrt[i]].name);
        /* an output listed twice or a graph input as output is fine for the emitter */
        g->outputs[g->noutputs++] = grads[i];
        g->values[grads[i]].is_output = 1;
    }
    return pass_dce(g, d) || pass_scratch(g, d) || pass_plan(g, d) ? -1 : 0;
}

static void harness(Writer *w, const Graph *g, const int *wrt, int nwrt)
{
    w_line(w, "#include \"model.h\"");
    w_line(w, "#include <math.h>");
    w_line(w, "#include <stdio.h>");
    w_line(w, "static unsigned rng = 777u;");
    w_line(w, "static float frand(void) { rng = rng * 1664525u + 1013904223u; return (float)((rng >> 8) & 0xffffffu) / 16777216.0f * 2.0f - 1.0f; }");
    for (int i = 0; i < nwrt; i++)
        w_line(w, "static float in%d[%lld];", i, (long long)value_numel(&g->values[wrt[i]]));
    w_line(w, "static float loss[1];");
    for (int i = 0; i < nwrt; i++)
        w_line(w, "static float gr%d[%lld];", i, (long long)value_numel(&g->values[wrt[i]]));
    w_puts(w, "static float run(void)\n{\n    model_run(");
    for (int i = 0; i < nwrt; i++)
        w_printf(w, "in%d, ", i);
    w_puts(w, "loss");
    for (int i = 0; i < nwrt; i++)
        w_printf(w, ", gr%d", i);
    w_puts(w, ");\n    return loss[0];\n}\n");
    w_line(w, "int main(void)");
    w_line(w, "{");
    w_line(w, "    int bad = 0, checked = 0;");
    w_line(w, "    long i, k;");
    for (int i = 0; i < nwrt; i++) {
        const Value *v = &g->values[wrt[i]];
        int pos = strncmp(v->name, "pos", 3) == 0;
        w_line(w, "    for (i = 0; i < %lld; i++) in%d[i] = %s;", (long long)value_numel(v), i,
               pos ? "1.0f + 0.5f * frand()" : "frand()");
    }
    w_line(w, "    run();");
    for (int i = 0; i < nwrt; i++) {
        const Value *v = &g->values[wrt[i]];
        long long n = value_numel(v);
        long long step = n > 40 ? n / 40 : 1;
        w_line(w, "    for (k = 0; k < %lld; k += %lld) {", n, step);
        w_line(w, "        float keep = in%d[k], an = gr%d[k], h = 1e-2f, lp, lm, num, err, tol;", i, i);
        w_line(w, "        in%d[k] = keep + h; lp = run();", i);
        w_line(w, "        in%d[k] = keep - h; lm = run();", i);
        w_line(w, "        in%d[k] = keep; run();", i);
        w_line(w, "        num = (lp - lm) / (2 * h);");
        w_line(w, "        err = fabsf(an - num);");
        w_line(w, "        tol = 2e-3f + 3e-2f * (fabsf(an) > fabsf(num) ? fabsf(an) : fabsf(num));");
        w_line(w, "        checked++;");
        w_line(w, "        if (!(err <= tol)) { bad++; if (bad < 5) printf(\"d/d%s[%%ld]: analytic %%g, numeric %%g\\n\", k, an, num); }", v->name);
        w_line(w, "    }");
    }
    w_line(w, "    printf(\"%%d of %%d gradient elements agree\\n\", checked - bad, checked);");
    w_line(w, "    return bad != 0;");
    w_line(w, "}");
}

static int run_case(const Case *k, const char *workroot, const char *cc)
{
    Arena a;
    arena_init(&a);
    Diag d;
    diag_init(&d, k->name);
    char work[1024], p[1200], cmd[4096];
    snprintf(work, sizeof work, "%s/%s", workroot, k->name);
    mkdir(workroot, 0755);
    mkdir(work, 0755);
    /* each case draws its loss weights from its own seed: adding cases changes no other case */
    rng = 2166136261u;
    for (const char *p2 = k->name; *p2; p2++)
        rng = (rng ^ (unsigned char)*p2) * 16777619u;
    Graph *g = onnx_text_parse(&a, k->text, strlen(k->text), k->name, &d);
    int wrt[16], grads[16], nwrt = 0, rc = 1;
    Writer cw, hw, mw;
    w_init(&cw);
    w_init(&hw);
    w_init(&mw);
    EmitOptions eo = {.name = "model", .header = "model.h"};
    if (!g || build(g, wrt, &nwrt, grads, &d) || emit_c(g, &eo, &cw, &hw, &d)) {
        printf("FAIL %s: %s\n", k->name, d.msg);
        goto done;
    }
    harness(&mw, g, wrt, nwrt);
    snprintf(p, sizeof p, "%s/model.c", work);
    int bad = write_text(p, &cw);
    snprintf(p, sizeof p, "%s/model.h", work);
    bad |= write_text(p, &hw);
    snprintf(p, sizeof p, "%s/main.c", work);
    bad |= write_text(p, &mw);
    if (bad) {
        printf("FAIL %s: cannot write into %s\n", k->name, work);
        goto done;
    }
    snprintf(cmd, sizeof cmd,
             "cd '%s' && %s -std=c99 -O1 -Wall -Wextra -Wpedantic -Werror model.c main.c -lm -o prog > cc.log 2>&1 && ./prog > run.log 2>&1",
             work, cc);
    int st = system(cmd);
    snprintf(cmd, sizeof cmd, "cat '%s/cc.log' '%s/run.log' 2>/dev/null | head -8 | sed 's/^/    /'", work, work);
    if (st == 0) {
        printf("ok   %s\n", k->name);
        rc = 0;
    } else {
        printf("FAIL %s:\n", k->name);
        fflush(stdout);
        if (system(cmd) < 0)
            perror("system");
    }
done:
    fflush(stdout);
    w_free(&cw);
    w_free(&hw);
    w_free(&mw);
    arena_free(&a);
    return rc;
}

int main(int argc, char **argv)
{
    const char *work = argc > 1 ? argv[1] : GRADCHECK_WORK;
    const char *cc = getenv("CC") && getenv("CC")[0] ? getenv("CC") : "cc";
    int fails = 0, n = (int)(sizeof CASES / sizeof CASES[0]);
    for (int i = 0; i < n; i++)
        fails += run_case(&CASES[i], work, cc);
    printf("%d passed, %d failed\n", n - fails, fails);
    return fails != 0;
}
