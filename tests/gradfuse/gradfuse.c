/* Activation derivatives fused into the node that produces their incoming gradient
 * (passes/fuse.c, the "<f>Grad" epilogue steps of compiler/ops/fused.h).
 *
 * Part 1, gradient graphs: each case (a small model in the textual syntax) gets the
 * loss L = sum_k sum(y_k * R_k) with fixed random R_k and autodiff's d L / d x for
 * every float graph input, built twice: as autodiff leaves it and after pass_fuse.
 * The case asserts how many kdcc.ActivationGrad nodes the unfused graph has and how
 * many are left after fusion, then emits both as C, compiles them into one
 * program with $CC and checks (a) the fused gradients against central finite
 * differences through the fused code (2e-3 + 3e-2 * max, as tests/gradcheck) and
 * (b) every fused gradient element against the unfused one
 * (|a - b| <= 1e-6 + 1e-5 * max: the same up to float rounding).
 *
 * Part 2, training graphs: each student model given on the command line
 * (PATH:LEFT) becomes the training step kdcc distill builds (pass_distill with
 * cached soft targets, SGD), unfused and fused; the fused graph is written as text
 * (NAME.fused.txt in the work folder, what --dump-after fuse would print) and must
 * have LEFT ActivationGrad nodes and no Relu node (each joined the Conv or Gemm
 * before it, as its derivative reads its output); both steps run three times from the same
 * initial state on the same batch, and the losses, logits and every state tensor
 * (weights after the updates) must agree to 1e-5 relative.
 *
 *     kdcc-gradfuse WORK_DIR [STUDENT.onnx:LEFT ...]
 */
#include "compiler/cli/cli.h"
#include "compiler/ops/fused.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct Case {
    const char *name;
    int before, after; /* ActivationGrad nodes without and with fusion */
    const char *text;
} Case;

#define HDR "<ir_version: 8, opset_import: [\"\" : 17, \"kdcc\" : 1]>\n"

static const Case CASES[] = {
    /* the MLP student: dH = dZ W2 is a Gemm, which takes Relu' at its store */
    {"gemm_relu_gemm", 1, 0,
     HDR "g (float[4,6] x, float[5,6] w1, float[5] b1, float[3,5] w2, float[3] b2) => (float[4,3] y) {\n"
         "  h = Gemm <transB: int = 1> (x, w1, b1)\n  a = Relu(h)\n"
         "  y = Gemm <transB: int = 1> (a, w2, b2)\n}"},
    /* MatMul's data gradient (MatMul with a Transpose, folded into a Gemm) and every
     * kind of derivative step, each on its own branch */
    {"matmul_activations_1", 5, 0,
     HDR "g (float[3,4] x, float[4,5] w1, float[5,2] v1, float[5,2] v2, float[5,2] v3, float[5,2] v4, float[5,2] v5)"
         " => (float[3,2] y1, float[3,2] y2, float[3,2] y3, float[3,2] y4, float[3,2] y5) {\n"
         "  h = MatMul(x, w1)\n"
         "  a1 = LeakyRelu <alpha: float = 0.2> (h)\n  y1 = MatMul(a1, v1)\n"
         "  a2 = Sigmoid(h)\n  y2 = MatMul(a2, v2)\n"
         "  a3 = Tanh(h)\n  y3 = MatMul(a3, v3)\n"
         "  a4 = HardSwish(h)\n  y4 = MatMul(a4, v4)\n"
         "  a5 = Gelu(h)\n  y5 = MatMul(a5, v5)\n}"},
    {"matmul_activations_2", 5, 0,
     HDR "g (float[3,4] x, float[4,5] w1, float[5,2] v1, float[5,2] v2, float[5,2] v3, float[5,2] v4, float[5,2] v5)"
         " => (float[3,2] y1, float[3,2] y2, float[3,2] y3, float[3,2] y4, float[3,2] y5)"
         " <float lo = {-1.5}, float hi = {1.25}> {\n"
         "  h = MatMul(x, w1)\n"
         "  a1 = Gelu <approximate: string = \"tanh\"> (h)\n  y1 = MatMul(a1, v1)\n"
         "  a2 = Clip(h, lo, hi)\n  y2 = MatMul(a2, v2)\n"
         "  a3 = Elu <alpha: float = 0.5> (h)\n  y3 = MatMul(a3, v3)\n"
         "  a4 = HardSigmoid <alpha: float = 0.3, beta: float = 0.4> (h)\n  y4 = MatMul(a4, v4)\n"
         "  a5 = Softplus(h)\n  y5 = MatMul(a5, v5)\n}"},
    /* a value read by a Gemm and by a residual Add: its gradient is the Gemm's plus
     * the Add's, and the Gemm takes the Add and then Relu' */
    {"residual_sum", 1, 0,
     HDR "g (float[4,5] x, float[5,5] w1, float[5,5] w2) => (float[4,5] y) {\n"
         "  h = MatMul(x, w1)\n  a = Relu(h)\n  o = Gemm <transB: int = 1> (a, w2)\n  y = Add(o, a)\n}"},
    /* an elementwise producer (the gradient of a Mul) starts a chain: kdcc.Fused */
    {"elementwise_chain", 1, 0,
     HDR "g (float[3,4] x, float[3,4] s) => (float[3,4] y) {\n"
         "  a = Tanh(x)\n  y = Mul(a, s)\n}"},
    /* Gemm -> Reshape (the Flatten's gradient) -> ActivationGrad: fused through the view */
    {"conv_flatten_gemm", 1, 0,
     HDR "g (float[2,2,4,4] x, float[3,2,3,3] w, float[3] b, float[5,48] v) => (float[2,5] y) {\n"
         "  c = Conv <pads: ints = [1, 1, 1, 1]> (x, w, b)\n  r = Relu(c)\n"
         "  f = Flatten <axis: int = 1> (r)\n  y = Gemm <transB: int = 1> (f, v)\n}"},
    /* a Conv's data gradient (a stride-1 ConvTranspose), then Relu' */
    {"conv_relu_conv", 1, 0,
     HDR "g (float[2,2,5,5] x, float[4,2,3,3] w1, float[3,4,3,3] w2, float[3] b2) => (float[2,3,5,5] y) {\n"
         "  c = Conv <pads: ints = [1, 1, 1, 1]> (x, w1)\n  r = Relu(c)\n"
         "  y = Conv <pads: ints = [1, 1, 1, 1]> (r, w2, b2)\n}"},
    /* the same with groups of 2x2 channels (the weight's channel dims swapped per
     * group), dilations and uneven pads; smooth activations, as a Relu's kinks
     * within the finite differences' steps of these sums of 18 products would fail
     * a few elements by themselves */
    {"conv_grouped_dilated", 1, 0,
     HDR "g (float[1,2,6,6] x, float[4,2,3,3] w1, float[6,2,3,3] w2) => (float[1,6,5,5] y) {\n"
         "  c = Conv <pads: ints = [1, 1, 1, 1]> (x, w1)\n  r = Sigmoid(c)\n"
         "  y = Conv <group: int = 2, dilations: ints = [2, 2], pads: ints = [2, 1, 1, 2]> (r, w2)\n}"},
    /* depthwise (one channel per group: a Reshape, no swap), and 1-D */
    {"conv_depthwise_1d", 2, 0,
     HDR "g (float[2,3,7] x, float[3,3,3] w1, float[3,1,3] w2, float[2,3,3] w3) => (float[2,2,7] y) {\n"
         "  c = Conv <pads: ints = [1, 1]> (x, w1)\n  r = Tanh(c)\n"
         "  e = Conv <group: int = 3, pads: ints = [1, 1]> (r, w2)\n  f = Softplus(e)\n"
         "  y = Conv <pads: ints = [1, 1]> (f, w3)\n}"},
    /* MaxPool's gradient scatters: its Relu' stays an ActivationGrad */
    {"maxpool_stays", 1, 1,
     HDR "g (float[1,2,4,4] x, float[2,2,3,3] w) => (float[1,2,2,2] y) {\n"
         "  c = Conv <pads: ints = [1, 1, 1, 1]> (x, w)\n  r = Relu(c)\n"
         "  y = MaxPool <kernel_shape: ints = [2, 2], strides: ints = [2, 2]> (r)\n}"},
};

static uint32_t rng;
static float frand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

static void seed(const char *name)
{
    rng = 2166136261u;
    for (const char *p = name; *p; p++)
        rng = (rng ^ (unsigned char)*p) * 16777619u;
}

static int count_op(const Graph *g, const char *op)
{
    int k = 0;
    for (int i = 0; i < g->nnodes; i++)
        k += !g->nodes[i]->dead && !strcmp(g->nodes[i]->op_type, op);
    return k;
}

/* derivative steps in the graph's epilogues */
static int count_grad_steps(const Graph *g)
{
    int k = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const Attr *a = node_attr(g->nodes[i], "epilogue");
        for (int j = 0; a && !g->nodes[i]->dead && j < a->n; j++)
            k += act_grad_step_known(a->strings[j]);
    }
    return k;
}

static int write_file(const char *dir, const char *name, const Writer *w)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f)
        return -1;
    int bad = w->len && fwrite(w->buf, 1, w->len, f) != w->len;
    return (fclose(f) != 0 || bad) ? -1 : 0;
}

/* ---------------------------------------------------------------- gradient graphs */

/* the loss and its gradients (the graph's outputs: loss, then one per float input) */
static int build_grad(Graph *g, const char *name, int fuse, int *wrt, int *nwrt, Diag *d)
{
    PassOptions po = {.fold = 1};
    if (ops_resolve(g, d) || pass_bind(g, &po, d) || pass_infer(g, 1, d))
        return -1;
    seed(name);
    GradCtx c = {.g = g, .d = d};
    int loss = -1, grads[16];
    for (int k = 0; k < g->noutputs; k++) {
        Value *y = &g->values[g->outputs[k]];
        int r = graph_new_value(g, "R");
        y = &g->values[g->outputs[k]];
        float *p = value_make_const(g, &g->values[r], DT_FLOAT, y->rank, y->dims);
        if (!p)
            return diag_error(d, NULL, "out of memory");
        for (int64_t i = 0; i < value_numel(y); i++)
            p[i] = frand();
        int m = g_op2(&c, "Mul", g->outputs[k], r);
        Node *rs = m < 0 ? NULL : g_new(&c, "ReduceSum", &m, 1, 1);
        if (!rs)
            return -1;
        g_attr_i(&c, rs, "keepdims", 0);
        int s = g_done(&c, rs);
        loss = s < 0 ? -1 : loss < 0 ? s : g_op2(&c, "Add", loss, s);
        if (loss < 0)
            return -1;
        g->values[g->outputs[k]].is_output = 0;
    }
    *nwrt = 0;
    for (int i = 0; i < g->ninputs && *nwrt < 16; i++)
        if (g->values[g->inputs[i]].role == VR_INPUT && g->values[g->inputs[i]].dtype == DT_FLOAT)
            wrt[(*nwrt)++] = g->inputs[i];
    if (pass_autodiff(g, loss, wrt, *nwrt, grads, d))
        return -1;
    g->outputs = arena_array(g->arena, (size_t)*nwrt + 1, sizeof(int));
    g->noutputs = 0;
    g->outputs[g->noutputs++] = loss;
    g->values[loss].is_output = 1;
    for (int i = 0; i < *nwrt; i++) {
        if (grads[i] < 0)
            return diag_error(d, NULL, "no gradient for input '%s'", g->values[wrt[i]].name);
        g->outputs[g->noutputs++] = grads[i];
        g->values[grads[i]].is_output = 1;
    }
    return (fuse && pass_fuse(g, d)) || pass_dce(g, d) || pass_alias(g, d) || pass_scratch(g, d) || pass_plan(g, d)
               ? -1 : 0;
}

static void grad_harness(Writer *w, const Graph *g, const int *wrt, int nwrt)
{
    w_line(w, "#include \"fused.h\"");
    w_line(w, "#include \"unfused.h\"");
    w_line(w, "#include <math.h>");
    w_line(w, "#include <stdio.h>");
    w_line(w, "static unsigned rng = 777u;");
    w_line(w, "static float frand(void) { rng = rng * 1664525u + 1013904223u; return (float)((rng >> 8) & 0xffffffu) / 16777216.0f * 2.0f - 1.0f; }");
    for (int i = 0; i < nwrt; i++) {
        long long n = (long long)value_numel(&g->values[wrt[i]]);
        w_line(w, "static float in%d[%lld], gf%d[%lld], gu%d[%lld];", i, n, i, n, i, n);
    }
    w_line(w, "static float loss[1];");
    for (int u = 0; u < 2; u++) {
        const char *m = u ? "unfused" : "fused";
        w_printf(w, "static float run_%s(void)\n{\n    %s_run(", m, m);
        for (int i = 0; i < nwrt; i++)
            w_printf(w, "in%d, ", i);
        w_puts(w, "loss");
        for (int i = 0; i < nwrt; i++)
            w_printf(w, ", g%c%d", u ? 'u' : 'f', i);
        w_puts(w, ");\n    return loss[0];\n}\n");
    }
    w_line(w, "int main(void)");
    w_line(w, "{");
    w_line(w, "    int bad = 0, checked = 0, same = 0, differ = 0;");
    w_line(w, "    long i, k;");
    for (int i = 0; i < nwrt; i++)
        w_line(w, "    for (i = 0; i < %lld; i++) in%d[i] = frand();", (long long)value_numel(&g->values[wrt[i]]), i);
    w_line(w, "    run_unfused();");
    w_line(w, "    run_fused();");
    for (int i = 0; i < nwrt; i++) { /* before the finite differences run the fused code again */
        const Value *v = &g->values[wrt[i]];
        w_line(w, "    for (k = 0; k < %lld; k++) {", (long long)value_numel(v));
        w_line(w, "        float a = gf%d[k], b = gu%d[k], m = fabsf(a) > fabsf(b) ? fabsf(a) : fabsf(b);", i, i);
        w_line(w, "        same++;");
        w_line(w, "        if (!(fabsf(a - b) <= 1e-6f + 1e-5f * m)) { differ++; if (differ < 5) printf(\"d/d%s[%%ld]: fused %%.9g, unfused %%.9g\\n\", k, a, b); }", v->name);
        w_line(w, "    }");
    }
    for (int i = 0; i < nwrt; i++) {
        const Value *v = &g->values[wrt[i]];
        long long n = (long long)value_numel(v), step = n > 40 ? n / 40 : 1;
        w_line(w, "    for (k = 0; k < %lld; k += %lld) {", n, step);
        w_line(w, "        float keep = in%d[k], an = gf%d[k], h = 1e-2f, lp, lm, num, err, tol;", i, i);
        w_line(w, "        in%d[k] = keep + h; lp = run_fused();", i);
        w_line(w, "        in%d[k] = keep - h; lm = run_fused();", i);
        w_line(w, "        in%d[k] = keep;", i);
        w_line(w, "        num = (lp - lm) / (2 * h);");
        w_line(w, "        err = fabsf(an - num);");
        w_line(w, "        tol = 2e-3f + 3e-2f * (fabsf(an) > fabsf(num) ? fabsf(an) : fabsf(num));");
        w_line(w, "        checked++;");
        w_line(w, "        if (!(err <= tol)) { bad++; if (bad < 5) printf(\"d/d%s[%%ld]: analytic %%g, numeric %%g\\n\", k, an, num); }", v->name);
        w_line(w, "    }");
    }
    w_line(w, "    printf(\"%%d of %%d gradient elements agree with finite differences, %%d of %%d with the unfused graph\\n\", checked - bad, checked, same - differ, same);");
    w_line(w, "    return bad != 0 || differ != 0;");
    w_line(w, "}");
}

/* compile fused.c, unfused.c and main.c in dir and run; 0 if the program passes */
static int compile_run(const char *dir, const char *cc)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && %s -std=c99 -O1 -Wall -Wextra -Wpedantic -Werror fused.c unfused.c main.c -lm -o prog > cc.log 2>&1"
             " && ./prog > run.log 2>&1",
             dir, cc);
    int st = system(cmd);
    snprintf(cmd, sizeof cmd, "cat '%s/cc.log' '%s/run.log' 2>/dev/null | head -8 | sed 's/^/    /'", dir, dir);
    if (system(cmd) < 0)
        perror("system");
    return st != 0;
}

static int emit_pair(Graph *gf, Graph *gu, const char *dir, Diag *d)
{
    int rc = 0;
    for (int u = 0; u < 2 && !rc; u++) {
        const char *m = u ? "unfused" : "fused";
        char hn[32], cn[32];
        snprintf(hn, sizeof hn, "%s.h", m);
        snprintf(cn, sizeof cn, "%s.c", m);
        EmitOptions eo = {.name = m, .header = hn};
        Writer c, h;
        w_init(&c);
        w_init(&h);
        rc = emit_c(u ? gu : gf, &eo, &c, &h, d);
        if (!rc && (write_file(dir, cn, &c) || write_file(dir, hn, &h)))
            rc = diag_error(d, NULL, "cannot write into %s", dir);
        w_free(&c);
        w_free(&h);
    }
    return rc;
}

static int run_case(const Case *k, const char *root, const char *cc)
{
    Arena a;
    arena_init(&a);
    Diag d;
    diag_init(&d, k->name);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", root, k->name);
    mkdir(dir, 0755);
    int rc = 1, wrt[16], nwrt = 0, wrt2[16], nwrt2 = 0;
    Graph *gf = onnx_text_parse(&a, k->text, strlen(k->text), k->name, &d);
    Graph *gu = gf ? onnx_text_parse(&a, k->text, strlen(k->text), k->name, &d) : NULL;
    if (!gu || build_grad(gu, k->name, 0, wrt2, &nwrt2, &d) || build_grad(gf, k->name, 1, wrt, &nwrt, &d) ||
        emit_pair(gf, gu, dir, &d)) {
        printf("FAIL %s: %s\n", k->name, d.msg);
        goto done;
    }
    int before = count_op(gu, "ActivationGrad"), after = count_op(gf, "ActivationGrad"), steps = count_grad_steps(gf);
    if (before != k->before || after != k->after || steps != before - after) {
        printf("FAIL %s: %d ActivationGrad nodes unfused (want %d), %d fused (want %d), %d derivative steps (want %d)\n",
               k->name, before, k->before, after, k->after, steps, before - after);
        goto done;
    }
    Writer mw;
    w_init(&mw);
    grad_harness(&mw, gf, wrt, nwrt);
    int bad = write_file(dir, "main.c", &mw);
    w_free(&mw);
    printf("%s %s: %d of %d ActivationGrad fused\n", bad ? "FAIL" : "..  ", k->name, before - after, before);
    fflush(stdout);
    if (!bad && !compile_run(dir, cc))
        rc = 0;
    printf("%s %s\n", rc ? "FAIL" : "ok  ", k->name);
done:
    fflush(stdout);
    arena_free(&a);
    return rc;
}

/* ---------------------------------------------------------------- training graphs */

#define TRAIN_BATCH 4

static Graph *train_graph(Arena *a, const char *path, int fuse, Diag *d)
{
    ImportOptions io = {0};
    Graph *g = model_load(a, path, &io, d);
    PassOptions po = {.fold = 1, .batch = TRAIN_BATCH};
    if (!g || ops_resolve(g, d) || pass_bind(g, &po, d) || pass_infer(g, 1, d))
        return NULL;
    DistillOptions o = {.T = 4, .alpha = 0.9, .with_labels = 1};
    o.opt.kind = OPT_SGD;
    o.opt.momentum = 0.9;
    if (pass_distill(g, &o, d) || (fuse && pass_fuse(g, d)))
        return NULL;
    return g;
}

static int finish_train(Graph *g, Diag *d)
{
    return pass_dce(g, d) || pass_alias(g, d) || pass_scratch(g, d) || pass_plan(g, d);
}

static void train_harness(Writer *w, const Graph *g)
{
    w_line(w, "#include \"fused.h\"");
    w_line(w, "#include \"unfused.h\"");
    w_line(w, "#include <math.h>");
    w_line(w, "#include <stdint.h>");
    w_line(w, "#include <stdio.h>");
    w_line(w, "static unsigned rng = 4242u;");
    w_line(w, "static float frand(void) { rng = rng * 1664525u + 1013904223u; return (float)((rng >> 8) & 0xffffffu) / 16777216.0f * 2.0f - 1.0f; }");
    w_line(w, "static union { double d; unsigned char b[FUSED_WORKSPACE_BYTES + 16]; } wf;");
    w_line(w, "static union { double d; unsigned char b[UNFUSED_WORKSPACE_BYTES + 16]; } wu;");
    w_line(w, "static union { double d; unsigned char b[FUSED_STATE_BYTES + 16]; } sf;");
    w_line(w, "static union { double d; unsigned char b[UNFUSED_STATE_BYTES + 16]; } su;");
    int64_t C = g->values[g->outputs[1]].dims[1];
    for (int i = 0, k = 0; i < g->ninputs; i++) {
        const Value *v = &g->values[g->inputs[i]];
        if (v->role != VR_INPUT)
            continue;
        w_line(w, "static %s in%d[%lld];", dtype_ctype(v->dtype), k++, (long long)value_numel(v));
    }
    for (int i = 0; i < g->noutputs; i++) {
        long long n = (long long)value_numel(&g->values[g->outputs[i]]);
        w_line(w, "static float of%d[%lld], ou%d[%lld];", i, n, i, n);
    }
    w_line(w, "static int near(float a, float b) { float m = fabsf(a) > fabsf(b) ? fabsf(a) : fabsf(b); return fabsf(a - b) <= 1e-6f + 1e-5f * m; }");
    w_line(w, "int main(void)");
    w_line(w, "{");
    w_line(w, "    int differ = 0, compared = 0;");
    w_line(w, "    long i, s;");
    int k = 0;
    for (int i = 0; i < g->ninputs; i++) {
        const Value *v = &g->values[g->inputs[i]];
        if (v->role != VR_INPUT)
            continue;
        long long n = (long long)value_numel(v);
        if (v->dtype == DT_INT64)
            w_line(w, "    for (i = 0; i < %lld; i++) in%d[i] = (int64_t)((frand() + 1.0f) * %lld) %% %lld;", n, k,
                   (long long)C, (long long)C);
        else if (!strcmp(v->name, "lr"))
            w_line(w, "    in%d[0] = 0.05f;", k);
        else if (!strcmp(v->name, "soft_targets"))
            w_line(w, "    for (i = 0; i < %lld; i++) in%d[i] = (frand() + 1.0f) / %lld;", n, k, (long long)C);
        else
            w_line(w, "    for (i = 0; i < %lld; i++) in%d[i] = frand();", n, k);
        k++;
    }
    w_line(w, "    fused_state_init(sf.b);");
    w_line(w, "    unfused_state_init(su.b);");
    w_line(w, "    for (s = 1; s <= 3; s++) {");
    k = 0;
    for (int i = 0; i < g->ninputs; i++) {
        const Value *v = &g->values[g->inputs[i]];
        if (v->role != VR_INPUT)
            continue;
        if (!strcmp(v->name, "step"))
            w_line(w, "        in%d[0] = (float)s;", k);
        k++;
    }
    for (int u = 0; u < 2; u++) {
        w_printf(w, "        %s_run_ws(w%c.b, s%c.b", u ? "unfused" : "fused", u ? 'u' : 'f', u ? 'u' : 'f');
        for (int i = 0; i < k; i++)
            w_printf(w, ", in%d", i);
        for (int i = 0; i < g->noutputs; i++)
            w_printf(w, ", o%c%d", u ? 'u' : 'f', i);
        w_puts(w, ");\n");
    }
    for (int i = 0; i < g->noutputs; i++) {
        w_line(w, "        for (i = 0; i < %lld; i++, compared++)", (long long)value_numel(&g->values[g->outputs[i]]));
        w_line(w, "            if (!near(of%d[i], ou%d[i])) { if (differ++ < 5) printf(\"step %%ld output %d[%%ld]: fused %%.9g, unfused %%.9g\\n\", s, i, of%d[i], ou%d[i]); }", i, i, i, i, i);
    }
    w_line(w, "    }");
    w_line(w, "    printf(\"loss after 3 steps: fused %%.9g, unfused %%.9g\\n\", of0[0], ou0[0]);");
    w_line(w, "    if (FUSED_NUM_STATE != UNFUSED_NUM_STATE) { printf(\"state tables differ\\n\"); return 1; }");
    w_line(w, "    for (s = 0; s < FUSED_NUM_STATE; s++) {");
    w_line(w, "        const fused_state_entry *a = &fused_state_table[s];");
    w_line(w, "        const unfused_state_entry *b = &unfused_state_table[s];");
    w_line(w, "        const float *pa = (const float *)(const void *)(sf.b + a->offset), *pb = (const float *)(const void *)(su.b + b->offset);");
    w_line(w, "        if (a->dtype != 1 || a->count != b->count) continue;");
    w_line(w, "        for (i = 0; i < a->count; i++, compared++)");
    w_line(w, "            if (!near(pa[i], pb[i])) { if (differ++ < 5) printf(\"state %%s[%%ld]: fused %%.9g, unfused %%.9g\\n\", a->name, i, pa[i], pb[i]); }");
    w_line(w, "    }");
    w_line(w, "    printf(\"%%d of %%d outputs and state elements agree after 3 steps\\n\", compared - differ, compared);");
    w_line(w, "    return differ != 0;");
    w_line(w, "}");
}

static int run_student(const char *spec, const char *root, const char *cc)
{
    char path[1024];
    snprintf(path, sizeof path, "%s", spec);
    char *colon = strrchr(path, ':');
    int want = colon ? atoi(colon + 1) : 0;
    if (colon)
        *colon = 0;
    char name[128], dir[1200];
    name_from_path(path, name, sizeof name);
    snprintf(dir, sizeof dir, "%s/train_%s", root, name);
    mkdir(dir, 0755);
    Arena a;
    arena_init(&a);
    Diag d;
    diag_init(&d, path);
    int rc = 1;
    Graph *gf = train_graph(&a, path, 1, &d);
    Graph *gu = gf ? train_graph(&a, path, 0, &d) : NULL;
    if (!gu) {
        printf("FAIL train %s: %s\n", name, d.msg);
        goto done;
    }
    /* what --dump-after fuse prints, for a reader */
    Writer t;
    w_init(&t);
    onnx_text_print(gf, &t);
    char tn[160];
    snprintf(tn, sizeof tn, "%s.fused.txt", name);
    int bad = write_file(root, tn, &t);
    w_free(&t);
    int before = count_op(gu, "ActivationGrad"), after = count_op(gf, "ActivationGrad");
    printf("..   train %s: %d of %d ActivationGrad fused (%s/%s)\n", name, before - after, before, root, tn);
    if (bad || after != want || before == 0) {
        printf("FAIL train %s: %d ActivationGrad nodes left, want %d\n", name, after, want);
        goto done;
    }
    /* Relu's derivative reads its output, so the forward Relus join their Conv/Gemm */
    if (count_op(gu, "Relu") == 0 || count_op(gf, "Relu") != 0) {
        printf("FAIL train %s: %d Relu nodes left of %d\n", name, count_op(gf, "Relu"), count_op(gu, "Relu"));
        goto done;
    }
    Writer mw;
    w_init(&mw);
    if (finish_train(gf, &d) || finish_train(gu, &d) || emit_pair(gf, gu, dir, &d)) {
        printf("FAIL train %s: %s\n", name, d.msg);
        w_free(&mw);
        goto done;
    }
    train_harness(&mw, gf);
    bad = write_file(dir, "main.c", &mw);
    w_free(&mw);
    if (!bad && !compile_run(dir, cc))
        rc = 0;
    printf("%s train %s\n", rc ? "FAIL" : "ok  ", name);
done:
    fflush(stdout);
    arena_free(&a);
    return rc;
}

int main(int argc, char **argv)
{
    const char *root = argc > 1 ? argv[1] : "/tmp/kdcc-gradfuse";
    const char *cc = getenv("CC") && getenv("CC")[0] ? getenv("CC") : "cc";
    mkdir(root, 0755);
    int fails = 0, n = (int)(sizeof CASES / sizeof CASES[0]);
    for (int i = 0; i < n; i++)
        fails += run_case(&CASES[i], root, cc);
    for (int i = 2; i < argc; i++)
        fails += run_student(argv[i], root, cc);
    n += argc > 2 ? argc - 2 : 0;
    printf("%d passed, %d failed\n", n - fails, fails);
    return fails != 0;
}
