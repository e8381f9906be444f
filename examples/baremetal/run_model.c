/* run_model.c: run a kdcc-compiled model on fixed inputs and print its outputs,
 * the same program on the host and on a board, so that the two runs can be
 * compared value by value.
 *
 * The model is compiled with `--name model` (API model_run, macros MODEL_*):
 *
 *     kdcc my.onnx -o build/model.c --name model
 *
 * Inputs: every float input is filled from one 32-bit linear congruential
 * generator (seed RUN_SEED) with values k/32768 - 1, k in [0, 65535]: exact in
 * float, so both runs see the same bits. Up to 4 inputs and 4 outputs, all float.
 *
 * Output: text lines, written through kd_board_write (host_io.c on the host,
 * board_mps2.c on a board):
 *
 *     out K COUNT          output K has COUNT values
 *     K I XXXXXXXX         value I of output K, as the hex bit pattern of the float
 *     end RC               model_run returned RC
 *
 * Outputs of more than RUN_MAX_PRINT values print every n-th value only.
 * main returns 0 when model_run returned 0; the startup code passes main's
 * result on (board_mps2.c: to the semihosting exit, so qemu's exit status).
 */
#include "model.h"

#include <stdint.h>

void kd_board_write(const char *s);

#ifndef RUN_SEED
#define RUN_SEED 1u
#endif
#ifndef RUN_MAX_PRINT
#define RUN_MAX_PRINT 4096
#endif

#if MODEL_NUM_INPUTS > 4 || MODEL_NUM_OUTPUTS > 4
#error "run_model.c handles up to 4 inputs and 4 outputs"
#endif

/* static, so that the stack stays small: the buffers go to .bss */
static float in0[MODEL_IN0_COUNT];
#if MODEL_NUM_INPUTS > 1
static float in1[MODEL_IN1_COUNT];
#endif
#if MODEL_NUM_INPUTS > 2
static float in2[MODEL_IN2_COUNT];
#endif
#if MODEL_NUM_INPUTS > 3
static float in3[MODEL_IN3_COUNT];
#endif
static float out0[MODEL_OUT0_COUNT];
#if MODEL_NUM_OUTPUTS > 1
static float out1[MODEL_OUT1_COUNT];
#endif
#if MODEL_NUM_OUTPUTS > 2
static float out2[MODEL_OUT2_COUNT];
#endif
#if MODEL_NUM_OUTPUTS > 3
static float out3[MODEL_OUT3_COUNT];
#endif

#if MODEL_NUM_INPUTS == 1
#define RUN_INPUTS in0
#elif MODEL_NUM_INPUTS == 2
#define RUN_INPUTS in0, in1
#elif MODEL_NUM_INPUTS == 3
#define RUN_INPUTS in0, in1, in2
#else
#define RUN_INPUTS in0, in1, in2, in3
#endif
#if MODEL_NUM_OUTPUTS == 1
#define RUN_OUTPUTS out0
#elif MODEL_NUM_OUTPUTS == 2
#define RUN_OUTPUTS out0, out1
#elif MODEL_NUM_OUTPUTS == 3
#define RUN_OUTPUTS out0, out1, out2
#else
#define RUN_OUTPUTS out0, out1, out2, out3
#endif

static uint32_t rng = RUN_SEED;

static void fill(float *x, long n)
{
    long i;
    for (i = 0; i < n; i++) {
        rng = rng * 1664525u + 1013904223u;
        x[i] = (float)(long)(rng >> 16) / 32768.0f - 1.0f;
    }
}

/* decimal and hex formatting without a C library */
static char *put_str(char *p, const char *s)
{
    while (*s)
        *p++ = *s++;
    return p;
}

static char *put_dec(char *p, unsigned long v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

static char *put_hex32(char *p, uint32_t v)
{
    int s;
    for (s = 28; s >= 0; s -= 4)
        *p++ = "0123456789abcdef"[(v >> s) & 15u];
    return p;
}

static uint32_t bits(float f)
{
    union {
        float f;
        uint32_t u;
    } c;
    c.f = f;
    return c.u;
}

static void print_output(unsigned k, const float *y, long n)
{
    char line[64];
    long i, step = n > RUN_MAX_PRINT ? (n + RUN_MAX_PRINT - 1) / RUN_MAX_PRINT : 1;
    char *p = put_str(line, "out ");
    p = put_dec(p, k);
    p = put_str(p, " ");
    p = put_dec(p, (unsigned long)n);
    p = put_str(p, "\n");
    *p = 0;
    kd_board_write(line);
    for (i = 0; i < n; i += step) {
        p = put_dec(line, k);
        *p++ = ' ';
        p = put_dec(p, (unsigned long)i);
        *p++ = ' ';
        p = put_hex32(p, bits(y[i]));
        *p++ = '\n';
        *p = 0;
        kd_board_write(line);
    }
}

int main(void)
{
    char line[32], *p;
    int rc;
    fill(in0, MODEL_IN0_COUNT);
#if MODEL_NUM_INPUTS > 1
    fill(in1, MODEL_IN1_COUNT);
#endif
#if MODEL_NUM_INPUTS > 2
    fill(in2, MODEL_IN2_COUNT);
#endif
#if MODEL_NUM_INPUTS > 3
    fill(in3, MODEL_IN3_COUNT);
#endif
    rc = model_run(RUN_INPUTS, RUN_OUTPUTS);
    print_output(0, out0, MODEL_OUT0_COUNT);
#if MODEL_NUM_OUTPUTS > 1
    print_output(1, out1, MODEL_OUT1_COUNT);
#endif
#if MODEL_NUM_OUTPUTS > 2
    print_output(2, out2, MODEL_OUT2_COUNT);
#endif
#if MODEL_NUM_OUTPUTS > 3
    print_output(3, out3, MODEL_OUT3_COUNT);
#endif
    p = put_str(line, "end ");
    p = put_dec(p, (unsigned long)(rc < 0 ? -rc : rc));
    p = put_str(p, "\n");
    *p = 0;
    kd_board_write(line);
    return rc == 0 ? 0 : 1;
}
