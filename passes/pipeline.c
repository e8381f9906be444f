/* The pass manager: runs the inference pipeline and dumps the graph after a named pass. */
#include "compiler/ops/ops.h"
#include "passes/passes.h"

#include <string.h>

const char *const pipeline_passes[] = {"import", "bind", "infer", "fuse", "winograd", "layout", "dce", "alias", "plan", NULL};

static void dump(Graph *g, const PassOptions *o, const char *pass)
{
    if (!o->dump_after || !o->dump)
        return;
    if (strcmp(o->dump_after, pass) != 0 && strcmp(o->dump_after, "all") != 0)
        return;
    FILE *f = o->dump_to ? o->dump_to : stderr;
    fprintf(f, "# after %s\n", pass);
    o->dump(g, f);
}

int run_pipeline(Graph *g, const PassOptions *o, Diag *d)
{
    if (o->dump_after) {
        int known = strcmp(o->dump_after, "all") == 0;
        for (int i = 0; pipeline_passes[i]; i++)
            known |= strcmp(pipeline_passes[i], o->dump_after) == 0;
        if (!known)
            return diag_error(d, NULL, "--dump-after: no pass named '%s' (passes: import bind infer fuse winograd layout dce alias plan, or all)", o->dump_after);
    }
    g->target = o->target;
    dump(g, o, "import");
    if (ops_resolve(g, d))
        return -1;
    if (pass_bind(g, o, d))
        return -1;
    dump(g, o, "bind");
    if (pass_infer(g, o->fold, d))
        return -1;
    dump(g, o, "infer");
    if (pass_fuse(g, d))
        return -1;
    dump(g, o, "fuse");
    if (pass_winograd(g, d))
        return -1;
    dump(g, o, "winograd");
    if (pass_layout(g, d))
        return -1;
    dump(g, o, "layout");
    if (pass_dce(g, d))
        return -1;
    dump(g, o, "dce");
    if (pass_alias(g, d))
        return -1;
    dump(g, o, "alias");
    if (o->before_scratch && o->before_scratch(g, o->before_scratch_ctx, d))
        return -1;
    if (pass_scratch(g, d) || pass_plan(g, d))
        return -1;
    dump(g, o, "plan");
    return 0;
}
