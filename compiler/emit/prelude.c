/* The C prelude: small helpers copied into emitted files when an operator asks for them. */
#include "compiler/emit/emit.h"

const char *const emit_prelude_half =
    "KD_UNUSED static float kd_h2f(uint16_t h)\n"
    "{\n"
    "    uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, bits;\n"
    "    float f;\n"
    "    if (e == 0x1fu)\n"
    "        bits = sign | 0x7f800000u | (m << 13);\n"
    "    else if (e == 0) {\n"
    "        f = ldexpf((float)m, -24);\n"
    "        return sign ? -f : f;\n"
    "    } else\n"
    "        bits = sign | ((e + 112u) << 23) | (m << 13);\n"
    "    memcpy(&f, &bits, 4);\n"
    "    return f;\n"
    "}\n"
    "\n"
    "KD_UNUSED static uint16_t kd_f2h(float f)\n"
    "{\n"
    "    uint32_t x, ax, mant, e, h, rest;\n"
    "    uint16_t sign;\n"
    "    memcpy(&x, &f, 4);\n"
    "    sign = (uint16_t)((x >> 16) & 0x8000u);\n"
    "    ax = x & 0x7fffffffu;\n"
    "    if (ax > 0x7f800000u)\n"
    "        return (uint16_t)(sign | 0x7e00u);\n"
    "    if (ax >= 0x477ff000u)\n"
    "        return (uint16_t)(sign | 0x7c00u);\n"
    "    if (ax < 0x38800000u) {\n"
    "        float a;\n"
    "        memcpy(&a, &ax, 4);\n"
    "        return (uint16_t)(sign | (uint16_t)nearbyintf(a * 16777216.0f));\n"
    "    }\n"
    "    mant = ax & 0x7fffffu;\n"
    "    e = (ax >> 23) - 112u;\n"
    "    h = (e << 10) | (mant >> 13);\n"
    "    rest = mant & 0x1fffu;\n"
    "    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u)))\n"
    "        h++;\n"
    "    return (uint16_t)(sign | h);\n"
    "}\n";

const char *const emit_prelude_bf16 =
    "KD_UNUSED static float kd_bf2f(uint16_t h)\n"
    "{\n"
    "    uint32_t bits = (uint32_t)h << 16;\n"
    "    float f;\n"
    "    memcpy(&f, &bits, 4);\n"
    "    return f;\n"
    "}\n"
    "\n"
    "KD_UNUSED static uint16_t kd_f2bf(float f)\n"
    "{\n"
    "    uint32_t x;\n"
    "    memcpy(&x, &f, 4);\n"
    "    if ((x & 0x7fffffffu) > 0x7f800000u)\n"
    "        return (uint16_t)((x >> 16) | 0x40u);\n"
    "    x += 0x7fffu + ((x >> 16) & 1u);\n"
    "    return (uint16_t)(x >> 16);\n"
    "}\n";

const char *const emit_prelude_round =
    "KD_UNUSED static float kd_rintf(float x)\n"
    "{\n"
    "    float r = floorf(x), diff = x - r;\n"
    "    if (diff > 0.5f || (diff == 0.5f && fmodf(r, 2.0f) != 0.0f))\n"
    "        r += 1.0f;\n"
    "    return r;\n"
    "}\n";

/* QuantizeLinear's saturation and rounding in forms gcc vectorises (12, at every
 * x86-64 level; clang too). Float selects do not do: once the scale and zero point
 * are constants, gcc threads the loop's path through each clamp bound (where the
 * rest folds to a constant) and then cannot if-convert the other path, whose float
 * comparisons and conversions may trap under the default -ftrapping-math; floorf is
 * not vectorised under it either. So the clamp compares the floats' bit patterns
 * mapped to unsigned integers in the floats' order (NaN to 0, below every number),
 * and the rounding truncates, then decides from the remainder counted in units of
 * 2^-24 (exact from 1/2 up), with integer comparisons. Every step is exact, so the
 * result does not depend on the rounding mode. */
const char *const emit_prelude_qround =
    "KD_UNUSED static uint32_t kd_fkey(float v)\n"
    "{\n"
    "    uint32_t b;\n"
    "    memcpy(&b, &v, 4);\n"
    "    return (b ^ ((0u - (b >> 31)) | 0x80000000u)) & ((uint32_t)((b & 0x7fffffffu) > 0x7f800000u) - 1u);\n"
    "}\n"
    "\n"
    "/* v saturated to [l, h] (numbers, l <= h); NaN to l */\n"
    "KD_UNUSED static float kd_clampf(float v, float l, float h)\n"
    "{\n"
    "    uint32_t k = kd_fkey(v);\n"
    "    const uint32_t kl = kd_fkey(l), kh = kd_fkey(h);\n"
    "    k = k > kl ? k : kl;\n"
    "    k = k < kh ? k : kh;\n"
    "    k ^= ((k >> 31) - 1u) | 0x80000000u;\n"
    "    memcpy(&v, &k, 4);\n"
    "    return v;\n"
    "}\n"
    "\n"
    "/* v rounded half to even, |v| < 2^31 */\n"
    "KD_UNUSED static int32_t kd_rint_i32(float v)\n"
    "{\n"
    "    const int32_t q = (int32_t)v;\n"
    "    const int32_t u = (int32_t)((v - (float)q) * 16777216.0f);\n"
    "    return q + (u > 8388608) - (u < -8388608) + ((u == 8388608) - (u == -8388608)) * (q & 1);\n"
    "}\n";
