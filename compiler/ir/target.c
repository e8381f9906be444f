/* The target table. Block sizes: an 8 x 16 float block is 16 vectors of 256 bits
 * (gcc 12 -O3 -march=native on znver3, AVX2 + FMA, 16 ymm registers: 8 x 16 ran a
 * 16->16 3x3 Conv at 33 GFLOP/s, 4 x 24 at 29, 4 x 32 at 28, 8 x 8 at 21, 4 x 16 at
 * 18). AVX-512 has 32 zmm registers of 16 floats: 8 x 32 keeps 16 of them busy.
 * NEON has 32 registers of 4 floats: 8 x 8 is 16 of them. The Cortex-M FPUs are
 * scalar with 32 single-precision registers: a 4 x 4 block is 16 of them. */
#include "compiler/ir/target.h"

#include <string.h>

static const Target targets[] = {
    {"generic", "portable C; blocks sized for 128- to 256-bit SIMD (the default)",
     32, 16, 32 * 1024, 512 * 1024, 8, 16, 1024 * 1024, "-O3"},
    {"x86-64-v3", "x86-64 with AVX2 and FMA (Haswell, Zen 1-3)",
     32, 16, 32 * 1024, 512 * 1024, 8, 16, 1024 * 1024, "-O3 -march=x86-64-v3 -ffp-contract=fast"},
    {"x86-64-v4", "x86-64 with AVX-512 (Skylake-SP, Ice Lake, Zen 4)",
     64, 32, 48 * 1024, 1024 * 1024, 8, 32, 2 * 1024 * 1024, "-O3 -march=x86-64-v4 -mprefer-vector-width=512 -ffp-contract=fast"},
    {"cortex-a53", "Arm Cortex-A53 (AArch64, NEON 128-bit)",
     16, 32, 32 * 1024, 512 * 1024, 8, 8, 256 * 1024, "-O3 -mcpu=cortex-a53"},
    {"cortex-m7", "Arm Cortex-M7 with FPv5 (scalar single precision, small caches)",
     4, 32, 16 * 1024, 0, 4, 4, 16 * 1024, "-O2 -mcpu=cortex-m7 -mthumb -mfpu=fpv5-sp-d16 -mfloat-abi=hard"},
    {"cortex-m4", "Arm Cortex-M4F with FPv4 (scalar single precision, no cache)",
     4, 32, 0, 0, 4, 4, 0, "-O2 -mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard"},
};

const Target *target_find(const char *name)
{
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++)
        if (strcmp(targets[i].name, name) == 0)
            return &targets[i];
    return NULL;
}

const Target *target_default(void) { return &targets[0]; }

const Target *target_at(int i)
{
    return i >= 0 && (size_t)i < sizeof targets / sizeof targets[0] ? &targets[i] : NULL;
}

const char *target_native_flags(const Target *t)
{
    return t && t->vector_bytes >= 64 ? "-march=native -mprefer-vector-width=512" : "-march=native";
}

int64_t target_lanes(int64_t vl, int64_t width) { return vl > 8 && width % vl == 0 ? vl : 8; }

const Target *target_host(void)
{
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        return target_find("x86-64-v4");
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return target_find("x86-64-v3");
#endif
    return target_default();
}
