/* Element types: names, sizes, C types, conversions. */
#include "compiler/ir/ir.h"

#include <math.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
    const char *ctype;
} T[DT_COUNT_] = {
    [DT_UNDEFINED] = {"undefined", 0, NULL},
    [DT_FLOAT] = {"float", 4, "float"},
    [DT_UINT8] = {"uint8", 1, "uint8_t"},
    [DT_INT8] = {"int8", 1, "int8_t"},
    [DT_UINT16] = {"uint16", 2, "uint16_t"},
    [DT_INT16] = {"int16", 2, "int16_t"},
    [DT_INT32] = {"int32", 4, "int32_t"},
    [DT_INT64] = {"int64", 8, "int64_t"},
    [DT_STRING] = {"string", 0, NULL},
    [DT_BOOL] = {"bool", 1, "bool"},
    [DT_FLOAT16] = {"float16", 2, "uint16_t"},
    [DT_DOUBLE] = {"double", 8, "double"},
    [DT_UINT32] = {"uint32", 4, "uint32_t"},
    [DT_UINT64] = {"uint64", 8, "uint64_t"},
    [DT_COMPLEX64] = {"complex64", 0, NULL},
    [DT_COMPLEX128] = {"complex128", 0, NULL},
    [DT_BFLOAT16] = {"bfloat16", 2, "uint16_t"},
    [DT_FLOAT8E4M3FN] = {"float8e4m3fn", 1, NULL},
    [DT_FLOAT8E4M3FNUZ] = {"float8e4m3fnuz", 1, NULL},
    [DT_FLOAT8E5M2] = {"float8e5m2", 1, NULL},
    [DT_FLOAT8E5M2FNUZ] = {"float8e5m2fnuz", 1, NULL},
    [DT_UINT4] = {"uint4", 0, NULL},
    [DT_INT4] = {"int4", 0, NULL},
    [DT_FLOAT4E2M1] = {"float4e2m1", 0, NULL},
    [DT_FLOAT8E8M0] = {"float8e8m0", 1, NULL},
    [DT_UINT2] = {"uint2", 0, NULL},
    [DT_INT2] = {"int2", 0, NULL},
};

const char *dtype_name(DType t)
{
    return (t >= 0 && t < DT_COUNT_ && T[t].name) ? T[t].name : "?";
}

DType dtype_from_name(const char *s)
{
    for (int i = 1; i < DT_COUNT_; i++)
        if (T[i].name && strcmp(T[i].name, s) == 0)
            return (DType)i;
    if (strcmp(s, "float32") == 0)
        return DT_FLOAT;
    if (strcmp(s, "float64") == 0)
        return DT_DOUBLE;
    return DT_UNDEFINED;
}

size_t dtype_size(DType t)
{
    return (t >= 0 && t < DT_COUNT_) ? T[t].size : 0;
}

const char *dtype_ctype(DType t)
{
    return (t >= 0 && t < DT_COUNT_) ? T[t].ctype : NULL;
}

int dtype_is_float(DType t)
{
    return t == DT_FLOAT || t == DT_DOUBLE;
}

int dtype_is_int(DType t)
{
    switch (t) {
    case DT_UINT8: case DT_INT8: case DT_UINT16: case DT_INT16:
    case DT_INT32: case DT_INT64: case DT_UINT32: case DT_UINT64:
        return 1;
    default:
        return 0;
    }
}

int dtype_is_signed(DType t)
{
    return t == DT_INT8 || t == DT_INT16 || t == DT_INT32 || t == DT_INT64;
}

int dtype_supported(DType t)
{
    return dtype_is_float(t) || dtype_is_int(t) || t == DT_BOOL || t == DT_FLOAT16 || t == DT_BFLOAT16;
}

/* ---- element access in native layout ---- */

double elem_get_f64(const void *data, DType dt, int64_t i)
{
    switch (dt) {
    case DT_FLOAT: return ((const float *)data)[i];
    case DT_DOUBLE: return ((const double *)data)[i];
    case DT_UINT8: return ((const uint8_t *)data)[i];
    case DT_INT8: return ((const int8_t *)data)[i];
    case DT_UINT16: return ((const uint16_t *)data)[i];
    case DT_INT16: return ((const int16_t *)data)[i];
    case DT_INT32: return ((const int32_t *)data)[i];
    case DT_INT64: return (double)((const int64_t *)data)[i];
    case DT_UINT32: return ((const uint32_t *)data)[i];
    case DT_UINT64: return (double)((const uint64_t *)data)[i];
    case DT_BOOL: return ((const uint8_t *)data)[i] != 0;
    case DT_FLOAT16: return kd_half_to_float(((const uint16_t *)data)[i]);
    case DT_BFLOAT16: return kd_bf16_to_float(((const uint16_t *)data)[i]);
    default: return 0;
    }
}

int64_t elem_get_i64(const void *data, DType dt, int64_t i)
{
    switch (dt) {
    case DT_INT64: return ((const int64_t *)data)[i];
    case DT_UINT64: return (int64_t)((const uint64_t *)data)[i];
    case DT_INT32: return ((const int32_t *)data)[i];
    case DT_UINT32: return ((const uint32_t *)data)[i];
    case DT_INT16: return ((const int16_t *)data)[i];
    case DT_UINT16: return ((const uint16_t *)data)[i];
    case DT_INT8: return ((const int8_t *)data)[i];
    case DT_UINT8: return ((const uint8_t *)data)[i];
    case DT_BOOL: return ((const uint8_t *)data)[i] != 0;
    default: {
        double x = elem_get_f64(data, dt, i);
        if (isnan(x))
            return 0;
        if (x >= 9.2233720368547758e18)
            return INT64_MAX;
        if (x <= -9.2233720368547758e18)
            return INT64_MIN;
        return (int64_t)x;
    }
    }
}

void elem_set_f64(void *data, DType dt, int64_t i, double x)
{
    switch (dt) {
    case DT_FLOAT: ((float *)data)[i] = (float)x; return;
    case DT_DOUBLE: ((double *)data)[i] = x; return;
    case DT_FLOAT16: ((uint16_t *)data)[i] = kd_float_to_half((float)x); return;
    case DT_BFLOAT16: ((uint16_t *)data)[i] = kd_float_to_bf16((float)x); return;
    case DT_BOOL: ((uint8_t *)data)[i] = x != 0; return;
    default: {
        int64_t v;
        if (isnan(x))
            v = 0;
        else if (x >= 9.2233720368547758e18)
            v = INT64_MAX;
        else if (x <= -9.2233720368547758e18)
            v = INT64_MIN;
        else
            v = (int64_t)x;
        elem_set_i64(data, dt, i, v);
    }
    }
}

void elem_set_i64(void *data, DType dt, int64_t i, int64_t x)
{
    switch (dt) {
    case DT_INT64: ((int64_t *)data)[i] = x; return;
    case DT_UINT64: ((uint64_t *)data)[i] = (uint64_t)x; return;
    case DT_INT32: ((int32_t *)data)[i] = (int32_t)(uint32_t)x; return;
    case DT_UINT32: ((uint32_t *)data)[i] = (uint32_t)x; return;
    case DT_INT16: ((int16_t *)data)[i] = (int16_t)(uint16_t)x; return;
    case DT_UINT16: ((uint16_t *)data)[i] = (uint16_t)x; return;
    case DT_INT8: ((int8_t *)data)[i] = (int8_t)(uint8_t)x; return;
    case DT_UINT8: ((uint8_t *)data)[i] = (uint8_t)x; return;
    case DT_BOOL: ((uint8_t *)data)[i] = x != 0; return;
    default: elem_set_f64(data, dt, i, (double)x); return;
    }
}

/* ---- half precision ---- */

float kd_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0x1f)
        bits = sign | 0x7f800000u | (man << 13);
    else if (exp == 0) {
        if (man == 0)
            bits = sign;
        else {
            float f = ldexpf((float)man, -24);
            memcpy(&bits, &f, 4);
            bits |= sign;
        }
    } else
        bits = sign | ((exp + 112) << 23) | (man << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t kd_float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u)
        return sign | 0x7e00; /* NaN */
    if (ax >= 0x477ff000u)  /* rounds to >= 65520: inf */
        return sign | 0x7c00;
    if (ax < 0x38800000u) { /* subnormal or zero in half */
        float a;
        memcpy(&a, &ax, 4);
        float r = rintf(a * 16777216.0f); /* units of 2^-24, round to nearest even */
        return sign | (uint16_t)r;
    }
    uint32_t mant = ax & 0x7fffff;
    uint32_t e = (ax >> 23) - 112;
    uint32_t h = (e << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
        h++;
    return sign | (uint16_t)h;
}

float kd_bf16_to_float(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t kd_float_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40);
    uint32_t lsb = (x >> 16) & 1;
    x += 0x7fff + lsb;
    return (uint16_t)(x >> 16);
}
