/* The fuzzing entry points (see fuzz_entry.h). */
#define _GNU_SOURCE /* memfd_create */
#include "fuzz/fuzz_entry.h"

#include "compiler/cli/cli.h"
#include "frontends/data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FUZZ_NAME "fuzz.onnx"

char kdcc_fuzz_last_message[1024];

/* A bound on the arena, so that a few bytes asking for a huge folded constant
 * (ConstantOfShape [100000,100000]) end in kdcc's clean "out of memory" path instead
 * of exhausting the machine; the CLI has no such bound. KDCC_FUZZ_ARENA_MB overrides. */
static void arena_init_limited(Arena *a)
{
    static size_t limit;
    if (!limit) {
        const char *e = getenv("KDCC_FUZZ_ARENA_MB");
        long mb = e ? atol(e) : 0;
        limit = (size_t)(mb > 0 ? mb : 16) << 20;
    }
    arena_init(a);
    a->limit = limit;
}

static void bug(const char *target, const char *what, const Diag *d)
{
    fprintf(stderr, "kdcc-fuzz %s: %s%s%s\n", target, what, d ? ": " : "", d ? d->msg : "");
    abort();
}

/* A refusal must come with exactly one line naming the problem. */
static int refused(const char *target, const Diag *d)
{
    if (d->errors == 0 || d->msg[0] == 0)
        bug(target, "failed without a diagnostic", NULL);
    if (strchr(d->msg, '\n') || strchr(d->msg, '\r'))
        bug(target, "the diagnostic is more than one line", d);
    snprintf(kdcc_fuzz_last_message, sizeof kdcc_fuzz_last_message, "%s", d->msg);
    return 1;
}

/* What kdcc MODEL -o m.c --batch 1 --no-validate does after loading the model. */
static int compile(const char *target, Graph *g, Diag *d)
{
    CompileOptions o;
    memset(&o, 0, sizeof o);
    o.validate = 0;
    o.pass.fold = 1;
    o.pass.batch = 1;
    o.emit.name = "m";
    o.emit.header = "m.h";
    o.emit.source = FUZZ_NAME;
    Writer c, h;
    w_init(&c);
    w_init(&h);
    int rc = compile_graph(g, &o, &c, &h, d);
    if (rc == 0) {
        if (c.oom || h.oom)
            bug(target, "the emitted text is incomplete (out of memory)", NULL);
        if (!c.buf || !h.buf || c.len == 0 || h.len == 0)
            bug(target, "compile_graph succeeded with an empty output", NULL);
        if (strlen(c.buf) != c.len || strlen(h.buf) != h.len)
            bug(target, "the emitted C contains a NUL byte", NULL);
    }
    w_free(&c);
    w_free(&h);
    return rc == 0 ? 0 : refused(target, d);
}

/* Printing a graph in the textual syntax must give text that parses back to a graph
 * that prints the same. Off with KDCC_FUZZ_NO_ROUNDTRIP=1. */
static void roundtrip(const char *target, const Graph *g)
{
    static int off = -1;
    if (off < 0) {
        const char *e = getenv("KDCC_FUZZ_NO_ROUNDTRIP");
        off = e && *e && strcmp(e, "0") != 0;
    }
    if (off)
        return;
    Writer w1, w2;
    w_init(&w1);
    w_init(&w2);
    onnx_text_print(g, &w1);
    if (w1.oom)
        bug(target, "printing the graph ran out of memory", NULL);
    Arena a;
    arena_init(&a);
    Diag d;
    diag_init(&d, "printed.txt");
    d.quiet_warnings = 1;
    Graph *g2 = onnx_text_parse(&a, w1.buf ? w1.buf : "", w1.len, "printed.txt", &d);
    if (!g2) {
        fprintf(stderr, "---- printed text ----\n%.4000s\n----\n", w1.buf ? w1.buf : "");
        bug(target, "the printed graph does not parse back", &d);
    }
    onnx_text_print(g2, &w2);
    if (w1.len != w2.len || (w1.len && memcmp(w1.buf, w2.buf, w1.len) != 0)) {
        fprintf(stderr, "---- first print ----\n%.4000s\n---- second print ----\n%.4000s\n----\n",
                w1.buf ? w1.buf : "", w2.buf ? w2.buf : "");
        bug(target, "print -> parse -> print is not a fixed point", NULL);
    }
    arena_free(&a);
    w_free(&w1);
    w_free(&w2);
}

int kdcc_fuzz_onnx(const uint8_t *data, size_t size)
{
    Arena a;
    arena_init_limited(&a);
    Diag d;
    diag_init(&d, FUZZ_NAME);
    d.quiet_warnings = 1;
    ImportOptions io;
    memset(&io, 0, sizeof io);
    /* path NULL: external data cannot be resolved, as for a model without a folder */
    Graph *g = onnx_import_buffer(&a, data, size, NULL, &io, &d);
    int rc;
    if (!g)
        rc = refused("onnx", &d);
    else {
        roundtrip("onnx", g);
        rc = compile("onnx", g, &d);
    }
    arena_free(&a);
    return rc;
}

int kdcc_fuzz_text(const uint8_t *data, size_t size)
{
    Arena a;
    arena_init_limited(&a);
    Diag d;
    diag_init(&d, "fuzz.txt");
    d.quiet_warnings = 1;
    /* the parser gets exactly size bytes, no terminating NUL beyond them */
    Graph *g = onnx_text_parse(&a, (const char *)data, size, "fuzz.txt", &d);
    int rc;
    if (!g)
        rc = refused("text", &d);
    else {
        roundtrip("text", g);
        rc = compile("text", g, &d);
    }
    arena_free(&a);
    return rc;
}

/* The readers take paths: give them an anonymous in-memory file holding the bytes. */
static const char *memfile(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("kdcc-fuzz", 0);
        if (fd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) {
        perror("kdcc-fuzz: writing the memfd");
        abort();
    }
    return path;
}

int kdcc_fuzz_tensor(const uint8_t *data, size_t size)
{
    /* onnx_read_tensor_file has no buffer entry point: hand it an anonymous in-memory file. */
    const char *path = memfile(data, size);
    Arena a;
    arena_init_limited(&a);
    Diag d;
    diag_init(&d, "model.onnx");
    d.quiet_warnings = 1;
    Tensor t;
    int rc = onnx_read_tensor_file(&a, path, &t, &d);
    if (rc == 0) {
        size_t es = dtype_size(t.dtype);
        int64_t n = 1;
        if (t.rank < 0 || t.rank > KD_MAX_RANK)
            bug("tensor", "a decoded tensor has an impossible rank", NULL);
        for (int i = 0; i < t.rank; i++) {
            if (t.dims[i] < 0)
                bug("tensor", "a decoded tensor has a negative dimension", NULL);
            n *= t.dims[i];
        }
        if (es == 0 || (uint64_t)n * es != (uint64_t)t.nbytes)
            bug("tensor", "a decoded tensor's byte count does not match its dtype and shape", NULL);
        /* touch every byte, so a short buffer shows up under ASan */
        volatile uint8_t sum = 0;
        for (size_t i = 0; i < t.nbytes; i++)
            sum ^= ((const uint8_t *)t.data)[i];
        (void)sum;
    }
    rc = rc == 0 ? 0 : refused("tensor", &d);
    arena_free(&a);
    return rc;
}

static void check_dataset(const Dataset *ds)
{
    if (ds->rank < 0 || ds->rank > KD_MAX_RANK)
        bug("data", "a dataset has an impossible rank", NULL);
    int64_t n = 1;
    for (int i = 0; i < ds->rank; i++) {
        if (ds->dims[i] < 0)
            bug("data", "a dataset has a negative dimension", NULL);
        n *= ds->dims[i];
    }
    size_t es = dtype_size(ds->dtype);
    if (es == 0 || (uint64_t)n * es != (uint64_t)ds->nbytes)
        bug("data", "a dataset's byte count does not match its dtype and shape", NULL);
    volatile uint8_t sum = 0;
    for (size_t i = 0; i < ds->nbytes; i++)
        sum ^= ((const uint8_t *)ds->data)[i];
    (void)sum;
}

int kdcc_fuzz_data(const uint8_t *data, size_t size)
{
    const char *path = memfile(data, size);
    int any = 0;
    for (int reader = 0; reader < 4; reader++) {
        Diag d;
        diag_init(&d, NULL);
        d.quiet_warnings = 1;
        Dataset x, y;
        dataset_init(&x);
        dataset_init(&y);
        int rc;
        if (reader == 0)
            rc = data_read_npy(path, &x, &d);
        else if (reader == 1)
            rc = data_read_idx(path, &x, &d);
        else {
            CsvOptions o;
            memset(&o, 0, sizeof o);
            o.label = reader == 3 ? "last" : NULL;
            rc = data_read_csv(path, &o, &x, reader == 3 ? &y : NULL, &d);
        }
        if (rc == 0) {
            any = 1;
            check_dataset(&x);
            if (reader == 3)
                check_dataset(&y);
        } else {
            refused("data", &d);
            if (x.data || y.data)
                bug("data", "a reader failed but left data behind", &d);
        }
        dataset_free(&x);
        dataset_free(&y);
    }
    return any ? 0 : 1;
}

KdccFuzzFn kdcc_fuzz_lookup(const char *target)
{
    if (strcmp(target, "onnx") == 0)
        return kdcc_fuzz_onnx;
    if (strcmp(target, "text") == 0)
        return kdcc_fuzz_text;
    if (strcmp(target, "tensor") == 0)
        return kdcc_fuzz_tensor;
    if (strcmp(target, "data") == 0)
        return kdcc_fuzz_data;
    return NULL;
}
