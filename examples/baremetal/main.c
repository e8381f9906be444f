/* A bare-metal-style application: no stdio, no malloc, no libc of its own.
 *
 * It uses only what kdcc's header declares and returns a status from main: 0 when
 * the model's output matches the probabilities numpy gives, 1 when the model
 * failed to run, 2 on a mismatch. On a board, main's result would drive an LED
 * or a debug register; here the host's exit status carries it.
 *
 * The emitted kws.c needs from the C library only memcpy (string.h) and the
 * float functions of math.h its operators use (this model: expf, for Softmax);
 * `nm -u kws.o` lists them. newlib, picolibc or the toolchain's libm provide
 * them on a microcontroller; support.c is a minimal stand-in for freestanding
 * builds that have none. See README.md.
 */
#include "kws.h"

/* static, so the stack stays small: a microcontroller may have only a few KiB */
static float features[KWS_IN0_COUNT];
static float probs[KWS_OUT0_COUNT];
static const float expected[KWS_OUT0_COUNT] = {0.415317595f, 0.0452519134f, 0.243389785f, 0.296040654f};

static float absf(float x)
{
    return x < 0 ? -x : x;
}

int main(void)
{
    int i;
    for (i = 0; i < KWS_IN0_COUNT; i++)
        features[i] = (float)(i % 5) / 5.0f - 0.3f;
    if (kws_run(features, probs) != 0)
        return 1;
    for (i = 0; i < KWS_OUT0_COUNT; i++)
        if (absf(probs[i] - expected[i]) > 1e-5f + 1e-4f * expected[i])
            return 2;
    return 0;
}
