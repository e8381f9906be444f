#!/usr/bin/env bash
# The demo, end to end on Fashion-MNIST (Debian's dataset-fashion-mnist): the story of
# examples/distill-fashion-mnist/run.sh at full size:
#  1. compile the bundled CNN teacher to C, build it with cc, classify the test set;
#  2. the few-labels story: a 784-64-10 student trained on 1,000 labels alone, and the
#     same student distilled from the teacher over 20,000 unlabelled images, the
#     training step itself compiled to C by kdcc;
#  3. the distilled student as dependency-free C, built and run, with its flash and RAM.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target kdcc >/dev/null
LABELLED=1000 SCRATCH_EPOCHS=40 LIMIT=20000 EPOCHS=8 \
  bash examples/distill-fashion-mnist/run.sh build/kdcc build/demo
