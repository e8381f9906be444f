/* libFuzzer target: built once per KDCC_FUZZ_TARGET (onnx, text, tensor). */
#include "fuzz/fuzz_entry.h"

#ifndef KDCC_FUZZ_TARGET
#error "define KDCC_FUZZ_TARGET to the entry point, e.g. kdcc_fuzz_onnx"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    KDCC_FUZZ_TARGET(data, size);
    return 0;
}
