/* One training step of an emitted step (kdcc distill --emit-train) on fixed inputs:
 * prints the loss, then every state float after the step (the student's weights and
 * Adam's moments, whose first step is the gradient, which the teacher's soft targets
 * feed sample by sample), one "TENSOR VALUE" line each. */
#include "train_step.h"

#include <stdio.h>
#include <string.h>

static union { unsigned char b[TRAIN_STEP_STATE_BYTES]; float f[TRAIN_STEP_STATE_BYTES / 4 + 1]; double a; } state;
static union { unsigned char b[TRAIN_STEP_WORKSPACE_BYTES]; double a; } ws;
static float image[TRAIN_STEP_IN0_COUNT], logits[TRAIN_STEP_OUT1_COUNT];
static int64_t labels[TRAIN_STEP_IN1_COUNT];

int main(void)
{
    unsigned s = 12345u;
    for (int i = 0; i < TRAIN_STEP_IN0_COUNT; i++) { /* images in [0, 1], different per sample */
        s = s * 1103515245u + 12345u;
        image[i] = (float)((s >> 16) & 255) / 255.0f;
    }
    for (int i = 0; i < TRAIN_STEP_IN1_COUNT; i++)
        labels[i] = (i * 7) % 10;
    float lr = 1e-3f, step = 1, loss = 0;
    train_step_state_init(state.b);
    if (train_step_run_ws(ws.b, state.b, image, labels, &lr, &step, &loss, logits))
        return 1;
    printf("loss %.9g\n", (double)loss);
    for (int t = 0; t < TRAIN_STEP_NUM_STATE; t++) {
        const train_step_state_entry *e = &train_step_state_table[t];
        for (int64_t k = 0; k < e->count; k++)
            printf("%d %.9g\n", t, (double)state.f[e->offset / 4 + k]);
    }
    return 0;
}
