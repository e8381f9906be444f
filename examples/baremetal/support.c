/* What a freestanding build of kdcc's output must provide when the toolchain has
 * no C library: memcpy and memset (compilers may emit calls to them for copies
 * and zeroing even in freestanding code) and the math.h functions the model uses
 * (`nm -u kws.o`; this model: expf). Compile this file without optimisation of
 * loops into library calls (-O0, or gcc's -fno-tree-loop-distribute-patterns),
 * or memcpy would call itself.
 *
 * expf: x = k*ln2 + r with |r| <= ln2/2, e^r by its Taylor series to r^7, then
 * scaled by 2^k through the exponent bits: about 1 ulp on the range that matters.
 */
#include <stddef.h>
#include <stdint.h>

void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;
    while (n--)
        *d++ = (unsigned char)c;
    return dst;
}

float expf(float x)
{
    if (x != x)
        return x;
    if (x > 88.72f) {
        union { uint32_t u; float f; } inf = {0x7f800000u};
        return inf.f;
    }
    if (x < -103.0f)
        return 0.0f;
    const float ln2 = 0.693147180559945f;
    int k = (int)(x / ln2 + (x < 0 ? -0.5f : 0.5f));
    float r = x - (float)k * ln2;
    float p = 1.0f + r * (1.0f + r * (1.0f / 2 + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 + r * (1.0f / 5040)))))));
    /* p * 2^k in two steps so that 2^k itself stays a normal float */
    int k1 = k / 2, k2 = k - k1;
    union { float f; uint32_t u; } s1 = {0}, s2 = {0};
    s1.u = (uint32_t)(k1 + 127) << 23;
    s2.u = (uint32_t)(k2 + 127) << 23;
    return p * s1.f * s2.f;
}
