"""tests/winograd: the Winograd pass (passes/winograd.c) and kdcc.WinogradConv
(compiler/ops/conv_wino.c). For each case, a model in the ONNX textual syntax:
the graph after the `winograd` pass has the operators it should (eligible 3x3
layers rewritten, others left alone) with the tile it should (F(2x2) or F(4x4)),
and the compiled C's outputs match PyTorch's conv2d computed in double from the
same float weights and inputs (an independent reference) within TOL of the
output's scale. Cases for both tile sizes cover odd output sizes (partial tiles
at the right and bottom), asymmetric and zero padding, channel counts that leave
remainder blocks, several chunks of tile rows, a batch, fused bias/Relu/residual
epilogues, every --tune candidate block, compact rows of tiles (a multiple of 4
wide: no gap column in V and the products; F(2x2) on 8x8 and 10x8 with a zeroed
tail in V's last vector, F(4x4) on 22x32 and with a fused pool), a layer whose
scratch comes from the room under the model's peak (compiled with a real --tune),
a wide F(4x4)
candidate whose scratch does not fit (it falls back to F(2x2)), and the layers
the pass must not take (strided, dilated, grouped, few channels, small maps, no
scratch on the target). 5x5 layers as F(2x2,5x5): every candidate block, odd sizes
with pads up to 4, several chunks, compact rows, and the 5x5 layers the pass leaves
(mnist-8's 8->16 on 14x14, whose 16-tile chunks do not fit its budget; stride 2; 5x3
and 7x7 kernels). A MaxPool fused into an F(4x4) layer (attribute pool): the
distillation teacher's block (bias, Relu, residual, 2x2), odd sizes whose last
windows are dropped, 4x4 and 4x2 windows with asymmetric padding, several chunks,
ceil_mode that rounds as floor, --openmp, every candidate block; and the pools that
must stay (the Conv's output read elsewhere too, a partial ceil_mode window,
padding, stride 1, a 3x3 window, after an F(2x2) layer, a scratch that would no
longer fit under the pooled node's tensors). The emitted C of the cases marked
sanitize also runs under AddressSanitizer and UBSan.

TOL: F(2x2) differs from the direct sum by at most 4.4e-7 of the output's scale
here, F(4x4) by at most 4.9e-6 (f4_residual_only, 32 input channels: its
transforms multiply by up to 5 and 8 and its weights by 1/6 and 1/24, each
rounded to float), F(2x2,5x5) (the same points) by at most 2.1e-6: 1e-5 holds
all, twice F(4x4)'s worst, and a reference off by 1e-4 (below) still fails.

usage: winograd.py KDCC WORKDIR [--sanitized]   (Debian's /usr/bin/python3 with numpy and torch)
"""
import contextlib
import io
import os
import re
import subprocess
import sys

import numpy as np
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from kdtest import Checks, lit, randn, t64, tstr  # noqa: E402

KDCC, WORK = sys.argv[1], sys.argv[2]
# --sanitized (set by CMake when kdcc itself is built with ASan/UBSan): that build
# checks kdcc's own code paths, so each case runs kdcc on its default block only (the
# graph, tile and pool checks); the emitted C, the same in both builds, is built and
# compared in the normal run (the sanitize cases with -fsanitize=address,undefined
# there), as are the forced blocks and --tune (tests/tune runs --tune under the
# sanitizers). Every case in full took 415 s of CI under the sanitizers.
SANITIZED_KDCC = "--sanitized" in sys.argv[3:]
os.makedirs(WORK, exist_ok=True)
CC = os.environ.get("CC", "cc")
rng = np.random.default_rng(77)


def arr(shape, scale=1.0):
    return randn(rng, shape, scale)

check = Checks()
TOL = 1e-5


def gemm_blocks(src):
    """(rows, columns) of each register block of the products in emitted C: acc[rows][columns],
    or runs of named arrays c{row}_{q}[lanes] (q the block's q-th vector of columns)."""
    out = [(int(r), int(c)) for r, c in re.findall(r"float acc\[(\d+)\]\[(\d+)\]", src)]
    for run in re.findall(r"(?:[ \t]*float c\d+_\d+\[\d+\];\n)+", src):
        arrs = [(int(i), int(q), int(lv)) for i, q, lv in re.findall(r"c(\d+)_(\d+)\[(\d+)\]", run)]
        out.append((max(a[0] for a in arrs) + 1, (max(a[1] for a in arrs) + 1) * arrs[0][2]))
    return out


def case(name, x, w, b, attrs, ref, post=(), want=("kdcc.WinogradConv",), opts=(), blocks=("",), sanitize=False,
         inits=(), tiles=None, openmp=False, pools=None, kernels=None, lanes=None):
    """post: extra node lines after the Conv (output c), reading the extra initializers
    inits ((name, array) pairs); the model's output is y. blocks: "" for the default
    block, "tune" for a real --tune run, or MxN forced through a tune file. tiles: the
    tile (2 or 4) of each WinogradConv in want, default 2; kernels: its kernel side (3 or 5),
    default 3. openmp: compile with --openmp
    and -fopenmp, run on two threads. pools: the fused MaxPool window ("2, 2") of each
    WinogradConv in want, None for none (default: none anywhere). lanes: the floats of every
    named accumulator arrays the C must declare (16 on x86-64-v4; a block's remainder may
    take 8)."""
    d = os.path.join(WORK, name)
    os.makedirs(d, exist_ok=True)
    if os.path.exists(os.path.join(d, "keys.tune")):
        os.remove(os.path.join(d, "keys.tune"))
    extra = list(inits)
    inits = ["%s w = %s" % (tstr(w), lit(w))] + ["%s %s = %s" % (tstr(a), nm, lit(a)) for nm, a in extra]
    args = "x, w"
    if b is not None:
        inits.append("%s b = %s" % (tstr(b), lit(b)))
        args += ", b"
    nodes = ["c = Conv<%s>(%s)" % (attrs, args)] + list(post)
    nodes[-1] = re.sub(r"^\w+ =", "y =", nodes[-1])
    ref = np.asarray(ref, dtype=np.float64)
    text = ("<\n ir_version: 8,\n opset_import: [\"\" : 17]\n>\n%s (%s x) => (float[%s] y)\n<\n %s\n>\n{\n%s}\n" %
            (name, tstr(x), ",".join(str(s) for s in ref.shape), ",\n ".join(inits),
             "".join("  %s\n" % n for n in nodes)))
    with open(os.path.join(d, "model.txt"), "w") as f:
        f.write(text)
    x.tofile(os.path.join(d, "in.bin"))
    with open(os.path.join(d, "main.c"), "w") as f:
        f.write('#include <stdio.h>\n#include "m.h"\nstatic float in[M_IN0_COUNT], out[M_OUT0_COUNT];\n'
                'int main(void) {\n FILE *f = fopen("in.bin", "rb");\n'
                ' if (!f || fread(in, sizeof in, 1, f) != 1) return 2;\n fclose(f);\n'
                ' if (m_run(in, out)) return 3;\n f = fopen("out.bin", "wb");\n'
                ' if (!f || fwrite(out, sizeof out, 1, f) != 1) return 4;\n fclose(f);\n return 0;\n}\n')
    if SANITIZED_KDCC:
        blocks = blocks[:1]
    for blk in blocks:
        tag = name + ("_" + blk if blk else "")
        extra = list(opts)
        if blk == "tune":
            extra += ["--tune", "--tune-file", os.path.join(d, "real.tune")]
        elif blk:
            # a tune file that gives every Winograd layer this block (the layers' keys
            # from one --tune run per case)
            tf, t0 = os.path.join(d, "b%s.tune" % blk), os.path.join(d, "keys.tune")
            if not os.path.exists(t0):
                r2 = subprocess.run([KDCC, os.path.join(d, "model.txt"), "-o", os.path.join(d, "t.c"), "--tune",
                                     "--tune-file", t0], capture_output=True, text=True,
                                    env=dict(os.environ, KDCC_TUNE_CFLAGS="-O1"))
                if r2.returncode != 0:
                    check(tag + "_tunes", False, r2.stderr.strip()[:400])
                    continue
            lines = open(t0).read().splitlines()
            with open(tf, "w") as f:
                for ln in lines:
                    f.write(re.sub(r"\t[0-9]+x[0-9]+\t", "\t%s\t" % blk, ln) + "\n" if not ln.startswith("#") else ln + "\n")
            extra += ["--tune-file", tf]
        r = subprocess.run([KDCC, os.path.join(d, "model.txt"), "-o", os.path.join(d, "m.c"), "--name", "m",
                            "--dump-after", "winograd"] + extra + (["--openmp"] if openmp else []),
                           capture_output=True, text=True)
        if r.returncode != 0:
            check(tag + "_compiles", False, (r.stderr.strip().splitlines() or [""])[-1][:400])
            continue
        ops = re.findall(r"^\s+\S.* = ([A-Za-z.]+) ?[<(]", r.stderr, re.M)
        check(tag + "_graph", ops == list(want), "after winograd: %s, want %s" % (ops, list(want)))
        wattrs = re.findall(r"= kdcc\.WinogradConv <([^>]*)>", r.stderr)
        got_tiles = [int(re.search(r"\btile: int = (\d+)", a).group(1)) if "tile: int" in a else 2 for a in wattrs]
        want_tiles = list(tiles) if tiles else [2] * want.count("kdcc.WinogradConv")
        check(tag + "_tiles", got_tiles == want_tiles, "tiles %s, want %s" % (got_tiles, want_tiles))
        got_k = [int(re.search(r"\bkernel: int = (\d+)", a).group(1)) if "kernel: int" in a else 3 for a in wattrs]
        want_k = list(kernels) if kernels else [3] * want.count("kdcc.WinogradConv")
        check(tag + "_kernels", got_k == want_k, "kernel sides %s, want %s" % (got_k, want_k))
        got_pools = [re.search(r"\bpool: ints = \[([0-9, ]+)\]", a).group(1) if "pool: ints" in a else "" for a in wattrs]
        want_pools = [p or "" for p in pools] if pools else [""] * want.count("kdcc.WinogradConv")
        check(tag + "_pools", got_pools == want_pools, "fused pools %s, want %s" % (got_pools, want_pools))
        if openmp:
            npr = open(os.path.join(d, "m.c")).read().count("#pragma omp parallel for")
            check(tag + "_openmp_loops", npr == 1, "%d parallel loops, want 1 (the products')" % npr)
        if blk and blk != "tune":
            mm, nn = blk.split("x")
            src = open(os.path.join(d, "m.c")).read()
            # the block's columns are cut to the chunk's when it has fewer (F(4x4): 16 per row of 4x4 tiles)
            ncols = [c for r, c in gemm_blocks(src) if r == int(mm)]
            check(tag + "_block_used", bool(ncols) and max(ncols) == min(int(nn), max(ncols)) and
                  (int(nn) in ncols or max(ncols) < int(nn)), "no %sx%s block in m.c (%s)" % (mm, nn, ncols))
        if lanes:
            got_lv = sorted({int(v) for v in re.findall(r"float c\d+_\d+\[(\d+)\];", open(os.path.join(d, "m.c")).read())})
            check(tag + "_lanes", lanes in got_lv, "accumulator arrays of %s floats, want some of %d" % (got_lv, lanes))
        if SANITIZED_KDCC:
            continue
        # -O1 and no variable tracking: at -O2 -g gcc took 30 s per sanitized build of
        # the large Winograd functions (3 s at -O1 without -g, 5 s with -g as here)
        opt = (["-O1", "-g", "-fno-var-tracking", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
               if sanitize and not blk else ["-O2"])
        r = subprocess.run([CC, "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror"] + opt +
                           (["-fopenmp"] if openmp else []) + ["-o", "prog", "main.c", "m.c", "-lm"], cwd=d,
                           capture_output=True, text=True)
        if r.returncode != 0:
            check(tag + "_c_builds", False, r.stderr.strip()[:600])
            continue
        r = subprocess.run(["./prog"], cwd=d, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="2"))
        if r.returncode != 0:
            check(tag + "_runs", False, "exit %d %s" % (r.returncode, r.stderr[:400]))
            continue
        got = np.fromfile(os.path.join(d, "out.bin"), dtype=np.float32).astype(np.float64)
        scale = max(1.0, float(np.max(np.abs(ref))))
        err = float(np.max(np.abs(got - ref.ravel()))) / scale if got.size == ref.size else float("inf")
        check(tag + "_outputs", err <= TOL, "max error %.3g of the output scale (tolerance %.0g)" % (err, TOL))
        print("     %s: max error %.2g of the output scale %.3g" % (tag, err, scale))


# A layer is rewritten only when its scratch fits passes/scratch.c's budget (at
# most its own tensors' bytes in a one-layer model), hence the image sizes.

# odd output sizes (half tiles at the right and bottom), batch 2, a bias
x, w, b = arr((2, 8, 17, 19)), arr((8, 8, 3, 3), 0.3), arr((8,), 0.1)
case("odd_sizes", x, w, b, "pads = [1, 1, 1, 1]", F.conv2d(t64(x), t64(w), t64(b), padding=1))

# no padding; 24 output channels (a remainder block for 16-row blocks), no bias; F(2x2):
# the output, 16 x 23, is under F(4x4)'s 20 x 20
x, w = arr((1, 16, 18, 25)), arr((24, 16, 3, 3), 0.2)
case("valid", x, w, None, "pads = [0, 0, 0, 0]", F.conv2d(t64(x), t64(w)))

# F(2x2) (the output, 17 x 19, is under F(4x4)'s 20 x 20): asymmetric padding,
# 9 -> 13 channels (remainders everywhere), every candidate block
x, w, b = arr((2, 9, 17, 18)), arr((13, 9, 3, 3), 0.3), arr((13,), 0.2)
ref = F.conv2d(F.pad(t64(x), (1, 2, 2, 0)), t64(w), t64(b))
case("asymmetric_pads", x, w, b, "pads = [2, 1, 0, 2]", ref,
     sanitize=True, blocks=("", "8x16", "4x24", "4x32", "6x16", "8x8", "4x16", "8x24", "2x32", "3x8"))

# F(4x4): several chunks of tile rows (28 x 28, 16 channels: five rows of 4x4 tiles,
# then two), batch 2, with Relu and a residual Add fused into the epilogue
x, w, b = arr((2, 16, 28, 28)), arr((16, 16, 3, 3), 0.1), arr((16,), 0.1)
ref = F.relu(F.conv2d(t64(x), t64(w), t64(b), padding=1)) + t64(x)
case("chunks_residual", x, w, b, "pads = [1, 1, 1, 1]", ref, post=("r = Relu(c)", "y = Add(r, x)"), sanitize=True,
     tiles=(4,))

# a layer whose scratch only fits in the room under the model's peak (its own tensors
# are smaller): rewritten, and --tune times it alone with that same budget
x = arr((1, 16, 32, 32))
w, b = arr((32, 16, 3, 3), 0.1), arr((32,), 0.1)
w2, w3 = arr((32, 32, 3, 3), 0.1), arr((32, 32, 3, 3), 0.1)
c1 = F.conv2d(t64(x), t64(w), t64(b), padding=1)
ref = F.conv2d(F.conv2d(c1, t64(w2), padding=1, stride=2), t64(w3), padding=1)
case("headroom", x, w, b, "pads = [1, 1, 1, 1]", ref, inits=(("w2", w2), ("w3", w3)),
     post=("d = Conv<pads = [1, 1, 1, 1], strides = [2, 2]>(c, w2)", "y = Conv<pads = [1, 1, 1, 1]>(d, w3)"),
     want=("kdcc.WinogradConv", "Conv", "kdcc.WinogradConv"), blocks=("", "tune"), tiles=(4, 4))

# F(4x4) with --openmp on two threads: 16 -> 96 channels on 20 x 128, large enough
# for the emitter to share out the products' channel loop (not the output's, whose
# channels share the staged rows in scratch; a race there went unseen by this
# check on a loaded 2-core machine, so the emitted pragmas are counted too)
x, w, b = arr((1, 16, 20, 128)), arr((96, 16, 3, 3), 0.1), arr((96,), 0.1)
ref = F.relu(F.conv2d(t64(x), t64(w), t64(b), padding=1))
case("f4_openmp", x, w, b, "pads = [1, 1, 1, 1]", ref, post=("y = Relu(c)",), tiles=(4,), openmp=True)

# F(4x4): odd output sizes (23 x 25: the last row of tiles has 3 rows, the last tile of
# each row 1 column), batch 2, a bias, Relu
x, w, b = arr((2, 16, 23, 25)), arr((16, 16, 3, 3), 0.2), arr((16,), 0.1)
case("f4_odd_sizes", x, w, b, "pads = [1, 1, 1, 1]", F.relu(F.conv2d(t64(x), t64(w), t64(b), padding=1)),
     post=("y = Relu(c)",), sanitize=True, tiles=(4,))

# F(4x4): asymmetric padding (output 21 x 23), 16 -> 20 channels (remainder blocks
# for every candidate), batch 4, every candidate block, under the sanitizers too
x, w, b = arr((4, 16, 21, 22)), arr((20, 16, 3, 3), 0.2), arr((20,), 0.2)
ref = F.conv2d(F.pad(t64(x), (1, 2, 2, 0)), t64(w), t64(b))
case("f4_asymmetric_pads", x, w, b, "pads = [2, 1, 0, 2]", ref, sanitize=True, tiles=(4,),
     blocks=("", "8x16", "4x24", "4x32", "6x16", "8x8", "4x16", "8x24", "2x32", "2x16", "3x32"))

# F(4x4), 32 -> 16 channels on 40 x 36, pads 2 on the right and bottom only (a
# residual Add, no Relu): output 40 x 36, exact multiples of the tile
x, w = arr((1, 32, 40, 36)), arr((16, 32, 3, 3), 0.1)
r_in = arr((1, 16, 40, 36))
ref = F.conv2d(F.pad(t64(x), (0, 2, 0, 2)), t64(w)) + t64(r_in)
case("f4_residual_only", x, w, None, "pads = [0, 0, 2, 2]", ref, post=("y = Add(c, r)",), inits=(("r", r_in),),
     tiles=(4,))

# a wide 64 -> 64 layer the rule gives F(4x4), whose one row of 4x4 tiles needs
# more scratch than the target allows (1.2 MB of 1 MB): F(2x2)
x, w = arr((1, 64, 16, 226)), arr((64, 64, 3, 3), 0.05)
case("wide_falls_back", x, w, None, "pads = [0, 0, 0, 0]", F.conv2d(t64(x), t64(w)), tiles=(2,))

# the rule's edges: 15 x 16 outputs keep F(2x2), 16 x 16 take F(4x4) (8 channels,
# fewer rows of tiles per chunk to fit the one-layer budget)
x, w = arr((4, 16, 15, 16)), arr((16, 16, 3, 3), 0.2)
case("f2_small_map", x, w, None, "pads = [1, 1, 1, 1]", F.conv2d(t64(x), t64(w), padding=1))
x, w = arr((2, 8, 16, 16)), arr((8, 8, 3, 3), 0.3)
case("f4_edge_map", x, w, None, "pads = [1, 1, 1, 1]", F.conv2d(t64(x), t64(w), padding=1), tiles=(4,))

# Compact rows (rows of tiles a multiple of 4 wide: V and the products without the gap
# column). F(2x2) on 10 x 8 (5 rows of 4 tiles; ResNet-8's 8x8 maps are 4 rows of 4), 24
# -> 20 channels, batch 2, a residual Add and Relu: chunks of 4 tile rows, then one
# whose 4 tiles leave 4 zero columns in V's last vector; every candidate block
x, w, b = arr((2, 24, 10, 8)), arr((20, 24, 3, 3), 0.2), arr((20,), 0.1)
r_in = arr((2, 20, 10, 8))
ref = F.relu(F.conv2d(t64(x), t64(w), t64(b), padding=1) + t64(r_in))
case("compact_f2", x, w, b, "pads = [1, 1, 1, 1]", ref, post=("a = Add(c, r)", "y = Relu(a)"), inits=(("r", r_in),),
     sanitize=True, blocks=("", "8x16", "4x24", "4x32", "6x16", "8x8", "4x16", "8x24", "2x32", "2x16", "3x32"))
# the 8 x 8 map of ResNet-8's last stage (64 pixels, the smallest the pass takes), 16 ->
# 16 channels, batch 4
x, w = arr((4, 16, 8, 8)), arr((16, 16, 3, 3), 0.3)
case("compact_f2_8x8", x, w, None, "pads = [1, 1, 1, 1]", F.conv2d(t64(x), t64(w), padding=1), sanitize=True)
# F(4x4) on 22 x 32 (rows of 8 tiles; the last of 6 tile rows has 2 output rows), a
# residual Add and Relu, every candidate block
x, w, b = arr((1, 16, 22, 32)), arr((16, 16, 3, 3), 0.2), arr((16,), 0.1)
ref = F.relu(F.conv2d(t64(x), t64(w), t64(b), padding=1) + t64(x))
case("compact_f4", x, w, b, "pads = [1, 1, 1, 1]", ref, post=("a = Add(c, x)", "y = Relu(a)"), tiles=(4,),
     sanitize=True, blocks=("", "8x16", "4x24", "4x32", "6x16", "8x8", "4x16", "8x24", "2x32", "2x16", "3x32"))

# F(2x2,5x5): 8 -> 16 channels on 28 x 28 (mnist-8's second layer on a map twice as
# wide: rows of 14 tiles and two gap columns each), pads 2, bias and Relu, every
# candidate block, under the sanitizers too
x, w, b = arr((1, 8, 28, 28)), arr((16, 8, 5, 5), 0.2), arr((16,), 0.1)
case("k5_relu", x, w, b, "pads = [2, 2, 2, 2]", F.relu(F.conv2d(t64(x), t64(w), t64(b), padding=2)),
     post=("y = Relu(c)",), sanitize=True, kernels=(5,),
     blocks=("", "8x16", "4x24", "4x32", "6x16", "8x8", "4x16", "8x24", "2x32", "3x8"))
# odd sizes and asymmetric padding (output 17 x 18: half tiles at the bottom; pads up to
# 4), 9 -> 13 channels, batch 4 (for the scratch of 16-tile chunks to fit), a bias
x, w, b = arr((4, 9, 17, 18)), arr((13, 9, 5, 5), 0.2), arr((13,), 0.2)
ref = F.conv2d(F.pad(t64(x), (1, 3, 4, 0)), t64(w), t64(b))
case("k5_asymmetric_pads", x, w, b, "pads = [4, 1, 0, 3]", ref, sanitize=True, kernels=(5,), blocks=("", "4x24", "6x16"))
# no padding, several chunks of tile rows (40 x 35 outputs, rows of 18 tiles whose last
# has one column), 16 -> 24 channels, a residual Add
x, w = arr((1, 16, 44, 39)), arr((24, 16, 5, 5), 0.1)
r_in = arr((1, 24, 40, 35))
case("k5_valid_chunks", x, w, None, "pads = [0, 0, 0, 0]", F.conv2d(t64(x), t64(w)) + t64(r_in),
     post=("y = Add(c, r)",), inits=(("r", r_in),), kernels=(5,))
# compact rows (16 wide: rows of 8 tiles, no gap columns in V and the products), batch 4,
# auto_pad SAME_UPPER
x, w = arr((4, 8, 16, 16)), arr((8, 8, 5, 5), 0.2)
case("k5_compact_same", x, w, None, "auto_pad = \"SAME_UPPER\"", F.conv2d(t64(x), t64(w), padding=2), sanitize=True,
     kernels=(5,))
# 5x5 layers the pass leaves alone: mnist-8's 8 -> 16 on 14 x 14, whose chunks of 16
# tiles do not fit under its own tensors (19 KB); stride 2; a 5x3 kernel; a 7x7 one
x, w, b = arr((1, 8, 14, 14)), arr((16, 8, 5, 5), 0.2), arr((16,), 0.1)
case("k5_mnist8_stays", x, w, b, "pads = [2, 2, 2, 2]", F.relu(F.conv2d(t64(x), t64(w), t64(b), padding=2)),
     post=("y = Relu(c)",), want=("kdcc.FusedConv",))
x, w = arr((1, 8, 20, 20)), arr((8, 8, 5, 5), 0.2)
case("k5_stride2_stays", x, w, None, "pads = [2, 2, 2, 2], strides = [2, 2]",
     F.conv2d(t64(x), t64(w), padding=2, stride=2), want=("Conv",))
w53, w7 = arr((8, 8, 5, 3), 0.2), arr((8, 8, 7, 7), 0.2)
case("k53_stays", x, w53, None, "pads = [2, 1, 2, 1]", F.conv2d(t64(x), t64(w53), padding=(2, 1)), want=("Conv",))
case("k7_stays", x, w7, None, "pads = [3, 3, 3, 3]", F.conv2d(t64(x), t64(w7), padding=3), want=("Conv",))

# auto_pad SAME_UPPER resolves to explicit pads the pass keeps
x, w = arr((2, 8, 24, 24)), arr((8, 8, 3, 3), 0.3)
case("auto_pad", x, w, None, "auto_pad = \"SAME_UPPER\"", F.conv2d(t64(x), t64(w), padding=1), tiles=(4,))

# A MaxPool after an F(4x4) layer, its only consumer, is fused into it (attribute pool):
# the pooled planes are computed from the staged output rows.
def maxpool(t, k, ceil=False):
    return F.max_pool2d(t, k, stride=k, ceil_mode=ceil)


def mp(k, extra=""):
    return "MaxPool<kernel_shape = [%d, %d], strides = [%d, %d]%s>" % (k[0], k[1], k[0], k[1], extra)


# the distillation teacher's block: 16 -> 16 on 28 x 28 (two chunks: five rows of tiles,
# then two), bias, Relu, residual Add of the input, 2x2 pool; batch 4; sanitizers
x, w, b = arr((4, 16, 28, 28)), arr((16, 16, 3, 3), 0.1), arr((16,), 0.1)
ref = maxpool(F.relu(F.conv2d(t64(x), t64(w), t64(b), padding=1)) + t64(x), (2, 2))
case("pool_teacher", x, w, b, "pads = [1, 1, 1, 1]", ref, post=("r = Relu(c)", "a = Add(r, x)", "y = %s(a)" % mp((2, 2))),
     sanitize=True, tiles=(4,), pools=("2, 2",))

# odd output sizes (23 x 25: the last row of tiles has 3 rows, so its second row of
# windows is dropped; the last window column is dropped too), batch 3, Relu, every
# candidate block
x, w, b = arr((3, 16, 23, 25)), arr((16, 16, 3, 3), 0.2), arr((16,), 0.1)
ref = maxpool(F.relu(F.conv2d(t64(x), t64(w), t64(b), padding=1)), (2, 2))
case("pool_odd_sizes", x, w, b, "pads = [1, 1, 1, 1]", ref, post=("r = Relu(c)", "y = %s(r)" % mp((2, 2))), tiles=(4,),
     pools=("2, 2",), sanitize=True, blocks=("", "8x16", "4x24", "4x32", "6x16", "8x8", "4x16", "8x24", "2x32", "3x32"))

# 4 x 4 and 4 x 2 windows, asymmetric padding (output 22 x 23: the last row of tiles
# has 2 rows, its window dropped), 16 -> 20 channels, no bias, no epilogue, batch 8 (the
# pooled output is 1/16 of the Conv's, and the scratch must fit under the node's tensors)
x, w = arr((8, 16, 21, 22)), arr((20, 16, 3, 3), 0.2)
conv = F.conv2d(F.pad(t64(x), (1, 2, 2, 1)), t64(w))
case("pool_4x4", x, w, None, "pads = [2, 1, 1, 2]", maxpool(conv, (4, 4)), post=("y = %s(c)" % mp((4, 4)),),
     tiles=(4,), pools=("4, 4",), sanitize=True)
case("pool_4x2", x, w, None, "pads = [2, 1, 1, 2]", maxpool(conv, (4, 2)), post=("y = %s(c)" % mp((4, 2)),),
     tiles=(4,), pools=("4, 2",))

# several chunks of tile rows and a residual operand that is an initializer: 32 -> 16 on
# 40 x 36, pads only at the bottom and right, 2x2 pool; ceil_mode rounds as floor here
# (even sizes), so it fuses too
x, w = arr((1, 32, 40, 36)), arr((16, 32, 3, 3), 0.1)
r_in = arr((1, 16, 40, 36))
ref = maxpool(F.conv2d(F.pad(t64(x), (0, 2, 0, 2)), t64(w)) + t64(r_in), (2, 2), ceil=True)
case("pool_chunks_ceil", x, w, None, "pads = [0, 0, 2, 2]", ref, post=("a = Add(c, r)", "y = %s(a)" % mp((2, 2), ", ceil_mode = 1")),
     inits=(("r", r_in),), tiles=(4,), pools=("2, 2",))

# with --openmp on two threads (the products' channel loop shared out), Relu, 2x2 pool;
# batch 3, for the scratch to fit under the pooled node's tensors
x, w, b = arr((3, 16, 20, 128)), arr((96, 16, 3, 3), 0.1), arr((96,), 0.1)
ref = maxpool(F.relu(F.conv2d(t64(x), t64(w), t64(b), padding=1)), (2, 2))
case("pool_openmp", x, w, b, "pads = [1, 1, 1, 1]", ref, post=("r = Relu(c)", "y = %s(r)" % mp((2, 2))), tiles=(4,),
     pools=("2, 2",), openmp=True)

# pools that stay: the Conv's output read elsewhere too (here a GlobalAveragePool; in a
# training graph, MaxPoolGrad), ceil_mode on odd sizes (a partial window), padding,
# strides other than the window, a 3x3 window, and a pool after an F(2x2) layer
x, w = arr((2, 16, 21, 21)), arr((16, 16, 3, 3), 0.2)
conv = F.conv2d(t64(x), t64(w), padding=1)
case("pool_shared_stays", x, w, None, "pads = [1, 1, 1, 1]", maxpool(conv, (2, 2)) + conv.mean((2, 3), keepdim=True),
     post=("p = %s(c)" % mp((2, 2)), "g = GlobalAveragePool(c)", "y = Add(p, g)"),
     want=("kdcc.WinogradConv", "MaxPool", "GlobalAveragePool", "Add"), tiles=(4,))
case("pool_ceil_odd_stays", x, w, None, "pads = [1, 1, 1, 1]", maxpool(conv, (2, 2), ceil=True),
     post=("y = %s(c)" % mp((2, 2), ", ceil_mode = 1"),), want=("kdcc.WinogradConv", "MaxPool"), tiles=(4,))
case("pool_pads_stay", x, w, None, "pads = [1, 1, 1, 1]", F.max_pool2d(conv, 2, stride=2, padding=1),
     post=("y = %s(c)" % mp((2, 2), ", pads = [1, 1, 1, 1]"),), want=("kdcc.WinogradConv", "MaxPool"), tiles=(4,))
case("pool_stride1_stays", x, w, None, "pads = [1, 1, 1, 1]", F.max_pool2d(conv, 2, stride=1),
     post=("y = MaxPool<kernel_shape = [2, 2]>(c)",), want=("kdcc.WinogradConv", "MaxPool"), tiles=(4,))
# and one whose scratch would no longer fit once the output is pooled (one image, 8 ->
# 64 channels on 20 x 20: the node's own tensors shrink from 115 KB to 38.4 KB, under the
# 41.2 KB scratch of its smallest chunk, two rows of tiles)
x1, w1, b1 = arr((1, 8, 20, 20)), arr((64, 8, 3, 3), 0.1), arr((64,), 0.1)
case("pool_budget_stays", x1, w1, b1, "pads = [1, 1, 1, 1]",
     maxpool(F.relu(F.conv2d(t64(x1), t64(w1), t64(b1), padding=1)), (2, 2)),
     post=("r = Relu(c)", "y = %s(r)" % mp((2, 2))), want=("kdcc.WinogradConv", "MaxPool"), tiles=(4,))
# compact rows (32 wide: rows of 8 tiles) with a fused 2x2 pool, Relu, batch 2, 12 ->
# 20 channels (a remainder block)
xc, wc, bc = arr((2, 12, 24, 32)), arr((20, 12, 3, 3), 0.2), arr((20,), 0.1)
case("pool_compact", xc, wc, bc, "pads = [1, 1, 1, 1]",
     maxpool(F.relu(F.conv2d(t64(xc), t64(wc), t64(bc), padding=1)), (2, 2)),
     post=("r = Relu(c)", "y = %s(r)" % mp((2, 2))), tiles=(4,), pools=("2, 2",), sanitize=True,
     blocks=("", "6x16", "3x32"))
case("pool_3x3_stays", x, w, None, "pads = [1, 1, 1, 1]", maxpool(conv, (3, 3)), post=("y = %s(c)" % mp((3, 3)),),
     want=("kdcc.WinogradConv", "MaxPool"), tiles=(4,))
x, w = arr((2, 16, 14, 16)), arr((16, 16, 3, 3), 0.2)
case("pool_f2_stays", x, w, None, "pads = [1, 1, 1, 1]", maxpool(F.conv2d(t64(x), t64(w), padding=1), (2, 2)),
     post=("y = %s(c)" % mp((2, 2)),), want=("kdcc.WinogradConv", "MaxPool"))

# x86-64-v4: accumulator arrays of 16 floats (one AVX-512 register each), also in the
# wide blocks --tune offers there; F(2x2) 64 -> 64 on 8 x 8 (ResNet-8's last layers:
# 16 columns, one vector; a batch of 4 for the scratch budget) with a residual, and F(4x4) 24 -> 40 on 20 x 20 with Relu
x, w, b = arr((4, 64, 8, 8)), arr((64, 64, 3, 3), 0.05), arr((64,), 0.1)
r_in = arr((4, 64, 8, 8))
case("v4_f2_64ch_8x8", x, w, b, "pads = [1, 1, 1, 1]", F.conv2d(t64(x), t64(w), t64(b), padding=1) + t64(r_in),
     post=("y = Add(c, r)",), inits=(("r", r_in),), opts=("--target", "x86-64-v4"), lanes=16,
     blocks=("", "6x64", "8x32", "4x64"))
x, w, b = arr((1, 24, 20, 20)), arr((40, 24, 3, 3), 0.1), arr((40,), 0.1)
case("v4_f4_24to40", x, w, b, "pads = [1, 1, 1, 1]", F.relu(F.conv2d(t64(x), t64(w), t64(b), padding=1)),
     post=("y = Relu(c)",), tiles=(4,), opts=("--target", "x86-64-v4"), lanes=16, blocks=("", "8x32", "6x48", "4x64"))

# layers the pass must leave alone: stride 2, dilation 2, two groups, 4 channels,
# and every layer on a target without scratch memory
x, w = arr((1, 8, 12, 12)), arr((8, 8, 3, 3), 0.3)
case("stride2_stays", x, w, None, "pads = [1, 1, 1, 1], strides = [2, 2]",
     F.conv2d(t64(x), t64(w), padding=1, stride=2), want=("Conv",))
case("dilation2_stays", x, w, None, "pads = [2, 2, 2, 2], dilations = [2, 2]",
     F.conv2d(t64(x), t64(w), padding=2, dilation=2), want=("Conv",))
wg = arr((8, 4, 3, 3), 0.3)
case("groups_stay", x, wg, None, "pads = [1, 1, 1, 1], group = 2", F.conv2d(t64(x), t64(wg), padding=1, groups=2),
     want=("Conv",))
xs, ws = arr((2, 16, 7, 7)), arr((16, 16, 3, 3), 0.3)
case("small_map_stays", xs, ws, None, "pads = [1, 1, 1, 1]", F.conv2d(t64(xs), t64(ws), padding=1), want=("Conv",))
x4, w4 = arr((1, 4, 12, 12)), arr((8, 4, 3, 3), 0.3)
case("few_channels_stay", x4, w4, None, "pads = [1, 1, 1, 1]", F.conv2d(t64(x4), t64(w4), padding=1), want=("Conv",))
case("cortex_m4_stays", x, w, None, "pads = [1, 1, 1, 1]", F.conv2d(t64(x), t64(w), padding=1), want=("Conv",),
     opts=("--target", "cortex-m4"))

# the comparison can fail: a perturbed reference is caught
x, w = arr((2, 8, 24, 24)), arr((8, 8, 3, 3), 0.3)
saved = (check.passes, check.fails)
quiet = io.StringIO()
with contextlib.redirect_stdout(quiet):
    case("perturbed", x, w, None, "pads = [1, 1, 1, 1]", F.conv2d(t64(x), t64(w), padding=1) * (1 + 1e-4), tiles=(4,))
caught = check.fails - saved[1] == 1
check.passes, check.fails = saved
if not SANITIZED_KDCC:   # no C is built there
    check("comparison_can_fail", caught, "a reference off by 1e-4 relative passed")

check.finish()
