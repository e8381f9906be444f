/* The host side of training: compile emitted C into a shared object, load it, and
 * call it. It knows nothing of graphs: a module is an emitted model plus a generic
 * entry `kd_call(workspace, state, inputs[], outputs[])` the CLI appends. */
#ifndef KDCC_TRAINER_H
#define KDCC_TRAINER_H

#include "compiler/ir/ir.h"

typedef struct StateEntry {
    const char *name;
    int64_t offset;
    int64_t count;
    int dtype;
} StateEntry;

typedef struct Module {
    void *so;
    int (*call)(void *ws, void *state, const void *const *in, void *const *out);
    void *ws;              /* workspace (malloc'd) */
    void *state;           /* state buffer (malloc'd, initialised), NULL if stateless */
    size_t ws_bytes, state_bytes;
    const StateEntry *table;
    int nstate;
} Module;

/* Compile c_text (with header h_text named h_name) in dir with $CC (default cc)
 * -O3 -march=native -shared -fPIC, load it, allocate its workspace and state. The
 * module's C prefix is `name`. 0 ok. */
int module_build(const char *dir, const char *name, const Writer *c_text, const Writer *h_text,
                 const char *h_name, Module *m, Diag *d);
void module_free(Module *m);
/* Copy state entries with equal names (and sizes) from src to dst; returns how many. */
int module_copy_state(const Module *src, Module *dst);
/* Find a state entry by name; NULL if none. */
const StateEntry *module_state(const Module *m, const char *name);

#endif
