/* Classify Fashion-MNIST test images with the C that kdcc emitted for cnn.onnx.
 *
 * The model code (fashion.c/.h) needs nothing but the C standard headers; this
 * driver reads the IDX files (gzip, through zlib) that Debian's
 * dataset-fashion-mnist installs, runs every test image through fashion_run and
 * prints the accuracy and a few predictions. */
#include "fashion.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static const char *const classes[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

static unsigned char *read_idx(const char *path, int want_dims, unsigned *count)
{
    gzFile f = gzopen(path, "rb");
    unsigned char hdr[16];
    if (!f || gzread(f, hdr, 4) != 4 || hdr[2] != 8 || hdr[3] != want_dims) {
        fprintf(stderr, "classify: %s: not an IDX file of %d dims\n", path, want_dims);
        exit(1);
    }
    if (gzread(f, hdr + 4, 4 * want_dims) != 4 * want_dims) {
        fprintf(stderr, "classify: %s: truncated header\n", path);
        exit(1);
    }
    size_t n = 1;
    for (int i = 0; i < want_dims; i++)
        n *= ((size_t)hdr[4 + 4 * i] << 24) | ((size_t)hdr[5 + 4 * i] << 16) | ((size_t)hdr[6 + 4 * i] << 8) | hdr[7 + 4 * i];
    *count = ((unsigned)hdr[4] << 24) | ((unsigned)hdr[5] << 16) | ((unsigned)hdr[6] << 8) | hdr[7];
    unsigned char *buf = malloc(n);
    if (!buf || gzread(f, buf, (unsigned)n) != (int)n) {
        fprintf(stderr, "classify: %s: truncated data\n", path);
        exit(1);
    }
    gzclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
    char p[1024];
    unsigned n, nl;
    snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte.gz", dir);
    unsigned char *img = read_idx(p, 3, &n);
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte.gz", dir);
    unsigned char *lab = read_idx(p, 1, &nl);
    if (n != nl) {
        fprintf(stderr, "classify: %u images but %u labels\n", n, nl);
        return 1;
    }
    float x[FASHION_IN0_COUNT], logits[FASHION_OUT0_COUNT];
    unsigned correct = 0;
    for (unsigned i = 0; i < n; i++) {
        for (int k = 0; k < FASHION_IN0_COUNT; k++)
            x[k] = img[(size_t)i * FASHION_IN0_COUNT + k] / 255.0f;
        if (fashion_run(x, logits) != 0)
            return 1;
        int best = 0;
        for (int k = 1; k < 10; k++)
            if (logits[k] > logits[best])
                best = k;
        correct += best == lab[i];
        if (i < 8)
            printf("image %u: predicted %-11s (true: %s)\n", i, classes[best], classes[lab[i]]);
    }
    printf("accuracy on the %u Fashion-MNIST test images: %.2f%%\n", n, 100.0 * correct / n);
    printf("model: %d bytes of workspace (arena) for intermediates\n", FASHION_WORKSPACE_BYTES);
    free(img);
    free(lab);
    return 0;
}
