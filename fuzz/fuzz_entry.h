/* The fuzzing entry points: one function per target, each feeding one input through
 * the same path kdcc takes for a file of that kind. Shared by the libFuzzer targets
 * (fuzz_target.c, clang only) and the plain replay driver (replay.c, any compiler),
 * so every corpus and regression file also runs in a normal ctest.
 *
 * Each returns 0 when kdcc accepted the input, 1 when it refused it cleanly (one
 * diagnostic line). Anything else is a bug and abort()s with a message on stderr:
 * a refusal without a message, a multi-line message, an incomplete output buffer,
 * or output that is not what the emitter promises. Crashes and sanitizer reports
 * come from the code under test itself. */
#ifndef KDCC_FUZZ_ENTRY_H
#define KDCC_FUZZ_ENTRY_H

#include <stddef.h>
#include <stdint.h>

/* ONNX binary model -> import, resolve, bind (--batch 1), infer+fold, dce, plan, emit_c. */
int kdcc_fuzz_onnx(const uint8_t *data, size_t size);
/* ONNX textual syntax -> onnx_text_parse, print/parse round trip, then the same pipeline. */
int kdcc_fuzz_text(const uint8_t *data, size_t size);
/* A serialized TensorProto (test_data_set_N/input_K.pb, --const FILE) -> onnx_read_tensor_file. */
int kdcc_fuzz_tensor(const uint8_t *data, size_t size);

/* The diagnostic of the last refusal, for the replay driver's -v. */
extern char kdcc_fuzz_last_message[1024];

/* Training/evaluation data files (frontends/data.h): the same bytes through the .npy,
 * IDX (plain or gzip) and CSV (label column "last") readers; 0 if any accepted them. */
int kdcc_fuzz_data(const uint8_t *data, size_t size);

typedef int (*KdccFuzzFn)(const uint8_t *data, size_t size);
/* "onnx", "text", "tensor", "data" -> the function; NULL if unknown. */
KdccFuzzFn kdcc_fuzz_lookup(const char *target);

#endif
