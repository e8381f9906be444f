/* Classify one feature vector with the model kdcc compiled at build time (kws.h,
 * from kdcc_add_model in CMakeLists.txt) and check the result against the
 * probabilities the model gives in numpy. Exit status 0 when they agree. */
#include "kws.h"

#include <math.h>
#include <stdio.h>

int main(void)
{
    static const float expected[KWS_OUT0_COUNT] = {0.415317595f, 0.0452519134f, 0.243389785f, 0.296040654f};
    float features[KWS_IN0_COUNT], probs[KWS_OUT0_COUNT];
    int i, best = 0, bad = 0;
    for (i = 0; i < KWS_IN0_COUNT; i++)
        features[i] = (float)(i % 5) / 5.0f - 0.3f;
    if (kws_run(features, probs) != 0)
        return 1;
    for (i = 0; i < KWS_OUT0_COUNT; i++) {
        if (fabsf(probs[i] - expected[i]) > 1e-5f + 1e-4f * expected[i])
            bad = 1;
        if (probs[i] > probs[best])
            best = i;
        printf("class %d: %.6f (expected %.6f)\n", i, probs[i], expected[i]);
    }
    printf("%s: class %d, %d bytes of workspace\n", bad ? "MISMATCH" : "ok", best, KWS_WORKSPACE_BYTES);
    return bad ? 2 : 0;
}
