/* Compile, load and call emitted modules on the host. */
#include "runtime/trainer.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int write_all(const char *path, const Writer *w)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int bad = w->len && fwrite(w->buf, 1, w->len, f) != w->len;
    return (fclose(f) != 0 || bad) ? -1 : 0;
}

int module_build(const char *dir, const char *name, const Writer *c_text, const Writer *h_text,
                 const char *h_name, Module *m, Diag *d)
{
    memset(m, 0, sizeof *m);
    char cp[4096], hp[4096], so[4096], log[4096], cmd[16384];
    snprintf(cp, sizeof cp, "%s/%s.c", dir, name);
    snprintf(hp, sizeof hp, "%s/%s", dir, h_name);
    snprintf(so, sizeof so, "%s/%s.so", dir, name);
    snprintf(log, sizeof log, "%s/%s.log", dir, name);
    if (write_all(cp, c_text) || write_all(hp, h_text))
        return diag_error(d, NULL, "cannot write '%s'", cp);
    const char *cc = getenv("CC") && getenv("CC")[0] ? getenv("CC") : "cc";
    const char *flags = getenv("KDCC_TRAIN_CFLAGS") ? getenv("KDCC_TRAIN_CFLAGS") : "-O3 -march=native";
    snprintf(cmd, sizeof cmd, "%s -std=c99 %s -fPIC -shared -o '%s' '%s' -lm > '%s' 2>&1", cc, flags, so, cp, log);
    if (system(cmd) != 0)
        return diag_error(d, NULL, "compiling the generated %s.c with %s failed (see %s)", name, cc, log);
    m->so = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!m->so)
        return diag_error(d, NULL, "cannot load %s: %s", so, dlerror());
    char sym[256];
    snprintf(sym, sizeof sym, "%s_kd_call", name);
    *(void **)&m->call = dlsym(m->so, sym);
    snprintf(sym, sizeof sym, "%s_kd_sizes", name);
    void (*sizes)(size_t *, size_t *, int *) = NULL;
    *(void **)&sizes = dlsym(m->so, sym);
    if (!m->call || !sizes)
        return diag_error(d, NULL, "internal error: %s lacks its entry points", so);
    int ns = 0;
    sizes(&m->ws_bytes, &m->state_bytes, &ns);
    m->nstate = ns;
    if (ns) {
        snprintf(sym, sizeof sym, "%s_state_table", name);
        m->table = dlsym(m->so, sym);
        snprintf(sym, sizeof sym, "%s_state_init", name);
        void (*init)(void *) = NULL;
        *(void **)&init = dlsym(m->so, sym);
        if (!m->table || !init)
            return diag_error(d, NULL, "internal error: %s lacks its state table", so);
        m->state = aligned_alloc(64, (m->state_bytes + 63) / 64 * 64 + 64);
        if (!m->state)
            return diag_error(d, NULL, "out of memory for the training state (%zu bytes)", m->state_bytes);
        init(m->state);
    }
    m->ws = aligned_alloc(64, (m->ws_bytes + 63) / 64 * 64 + 64);
    if (!m->ws)
        return diag_error(d, NULL, "out of memory for the workspace (%zu bytes)", m->ws_bytes);
    return 0;
}

void module_free(Module *m)
{
    free(m->ws);
    free(m->state);
    if (m->so)
        dlclose(m->so);
    memset(m, 0, sizeof *m);
}

const StateEntry *module_state(const Module *m, const char *name)
{
    for (int i = 0; i < m->nstate; i++)
        if (strcmp(m->table[i].name, name) == 0)
            return &m->table[i];
    return NULL;
}

int module_copy_state(const Module *src, Module *dst)
{
    int n = 0;
    for (int i = 0; i < dst->nstate; i++) {
        const StateEntry *e = &dst->table[i];
        const StateEntry *s = module_state(src, e->name);
        if (!s || s->count != e->count || s->dtype != e->dtype)
            continue;
        memcpy((char *)dst->state + e->offset, (const char *)src->state + s->offset,
               (size_t)e->count * dtype_size((DType)e->dtype));
        n++;
    }
    return n;
}
