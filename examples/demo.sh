#!/usr/bin/env bash
# The demo: build kdcc, compile the bundled Fashion-MNIST CNN to C, build that C
# with cc, and classify the Fashion-MNIST test set (from Debian's
# dataset-fashion-mnist) with it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ ! -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target kdcc >/dev/null
out=build/demo
mkdir -p "$out"
set -x
build/kdcc examples/fashion-mnist/cnn.onnx --batch 1 -o "$out/fashion.c"
cc -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -c "$out/fashion.c" -o "$out/fashion.o"
cc -O2 -I"$out" examples/fashion-mnist/classify.c "$out/fashion.o" -lz -lm -o "$out/classify"
"$out/classify"
