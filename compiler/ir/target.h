/* Code-generation targets: what the tiling decisions of the operator emitters
 * (register blocks, scratch copies) are chosen for. `kdcc --target NAME`; the
 * default is "generic". The emitted C stays portable C99 for every target: a
 * target changes block sizes and which kernels are used, never the language. */
#ifndef KDCC_TARGET_H
#define KDCC_TARGET_H

#include <stdint.h>

typedef struct Target {
    const char *name;
    const char *summary;      /* one line for --help and the docs */
    int vector_bytes;         /* SIMD register width the compiler vectorises to; 4 = scalar FPU */
    int vector_regs;          /* vector (or floating-point) registers */
    int64_t l1d, l2;          /* data cache bytes per core; 0 = none (tightly coupled SRAM) */
    /* register block of the float Conv/GEMM micro-kernels: output channels (rows)
     * x pixels (columns) held in accumulators across the reduction */
    int block_m, block_n;
    /* bytes a kernel may take from the arena for a padded copy or im2col panel;
     * 0 = only kernels that work in place (RAM is what the device lacks) */
    int64_t max_scratch;
    const char *cflags;       /* compiler flags the figures were measured with / are meant for */
} Target;

/* NULL if no target has that name. */
const Target *target_find(const char *name);
/* The default ("generic"). */
const Target *target_default(void);
/* i-th target, NULL past the end (for --help and the docs). */
const Target *target_at(int i);
/* The target of this host's CPU, for code kdcc builds and runs here itself (the
 * distillation step): x86-64-v4 with AVX-512, x86-64-v3 with AVX2 and FMA, else
 * generic. Never a default for emitted C, which is for the device. */
const Target *target_host(void);
/* The flags that build this host's code for target t: -march=native, and on a target
 * of 16-float vectors (x86-64-v4) -mprefer-vector-width=512, without which gcc and
 * clang keep its accumulator arrays in 256-bit registers. For --tune's candidates
 * and the distillation step. */
const char *target_native_flags(const Target *t);
/* The floats of one named accumulator array in a block `width` floats wide, for a
 * target of vl floats per vector: vl when it is above 8 and divides width, else 8. */
int64_t target_lanes(int64_t vl, int64_t width);

#endif
