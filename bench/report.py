"""Turn bench/run.sh's raw measurements into docs/BENCHMARKS.md.

    /usr/bin/python3 bench/report.py --raw build-bench/bench/raw.tsv [--out docs/BENCHMARKS.md] ...

Called by run.sh; without --out it prints the document.
"""
import argparse
import datetime
import glob
import json
import math
import os
import platform
import re
import statistics
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:
        return ""


def fmt_int(n):
    return "{:,}".format(int(n)).replace(",", "\u202f") if n is not None else "-"


def fmt_us(x):
    if x is None:
        return "-"
    if x >= 1000:
        return "%.0f" % x
    if x >= 10:
        return "%.1f" % x
    return "%.2f" % x


def fmt_bytes(n):
    return fmt_int(n) if n is not None else "-"


FMA_PEAK = None   # (lanes, median, best GFLOP/s) of bench/sgemm.c --peak, when the run has it


def load(raw):
    models, order, sgemm, openblas, elapsed = {}, [], [], "", None
    global FMA_PEAK
    for line in open(raw):
        f = line.rstrip("\n").split("\t")
        kind = f[0]
        if kind == "peak":   # bench/sgemm.c --peak: lanes, median and best GFLOP/s
            FMA_PEAK = (int(f[1]), float(f[2]), float(f[3]))
        elif kind == "openblas":
            openblas = f[1]
        elif kind == "sgemm":
            sgemm.append((int(f[1]), float(f[2]), float(f[3]), float(f[4])))
        elif kind == "elapsed":
            elapsed = int(f[1])
        elif kind == "model":
            models[f[1]] = {"name": f[1], "source": f[2], "macs": int(f[3]), "conv_macs": int(f[4]) if len(f) > 4 else 0,
                            "kdcc": [], "ort": [], "errors": []}
            order.append(f[1])
        elif kind == "error":
            models[f[1]]["errors"].append((f[2], f[3] if len(f) > 3 else ""))
        elif kind == "info":
            models[f[1]]["info_macs"] = int(f[2]) if f[2].isdigit() else None
        elif kind == "compile":
            models[f[1]]["compile"] = (float(f[2]), float(f[3]), int(f[4]))
        elif kind == "arena":
            vals = [None if x == "-" or x == "" else int(x) for x in f[2:7]]
            models[f[1]]["arena"] = dict(zip(["header", "planned", "bound", "sum", "count"], vals))
        elif kind == "kdcc":
            med, mn, calls, samples = float(f[3]), float(f[4]), int(f[5]), int(f[6])
            cpu, cpu_min = (float(f[7]), float(f[8])) if len(f) > 8 else (med, mn)
            models[f[1]]["kdcc"].append({"wall": med, "wall_min": mn, "calls": calls, "samples": samples,
                                         "median": cpu, "min": cpu_min})
        elif kind == "ort":
            models[f[1]]["ort"].append(json.loads(f[3]))
    return [models[n] for n in order], sgemm, openblas, elapsed


def summarise(m):
    """Per-round pairing: round r's kdcc median against round r's ORT median minus its binding cost.
    Primary figures are CPU time per call; wall-clock figures are kept for the details table."""
    k = [r["median"] for r in m["kdcc"]]
    o_raw = [r.get("cpu_median_us", r["median_us"]) for r in m["ort"]]
    o_bind = [r.get("overhead_cpu_median_us", r["overhead_median_us"]) for r in m["ort"]]
    n = min(len(k), len(o_raw))
    s = {"kdcc": statistics.median(k) if k else None,
         "kdcc_wall": statistics.median(r["wall"] for r in m["kdcc"]) if k else None,
         "kdcc_wall_min": min(r["wall_min"] for r in m["kdcc"]) if k else None,
         "ort_raw": statistics.median(o_raw) if o_raw else None,
         "ort_wall": statistics.median(r["median_us"] for r in m["ort"]) if o_raw else None,
         "bind_wall": statistics.median(r["overhead_median_us"] for r in m["ort"]) if o_raw else None,
         "ort_wall_min": min(r["min_us"] for r in m["ort"]) if o_raw else None,
         "bind": statistics.median(o_bind) if o_bind else None}
    corr = [o_raw[i] - o_bind[i] for i in range(len(o_raw))]
    s["ort"] = statistics.median(corr) if corr else None
    ratios = [k[i] / corr[i] for i in range(n) if corr[i] > 0]
    # a ratio is only meaningful when ORT's own time is clearly above the binding cost's noise
    s["ort_resolved"] = bool(corr) and s["ort"] > 0.25 * s["bind"]
    s["ratio"] = statistics.median(ratios) if ratios and s["ort_resolved"] else None
    s["ratio_spread"] = (min(ratios), max(ratios)) if ratios and s["ort_resolved"] else None
    # best calls: the fastest wall-clock call of each, ORT's minus the binding's fastest call
    bind_min = min(r["overhead_min_us"] for r in m["ort"]) if o_raw else None
    s["ort_best"] = s["ort_wall_min"] - bind_min if o_raw else None
    s["ratio_best"] = (s["kdcc_wall_min"] / s["ort_best"]
                       if o_raw and s["ort_resolved"] and s["ort_best"] > 0.25 * bind_min else None)
    macs = m["macs"]
    s["gflops"] = 2.0 * macs / (s["kdcc"] * 1e3) if macs and s["kdcc"] else None
    s["ort_gflops"] = 2.0 * macs / (s["ort"] * 1e3) if macs and s["ort"] and s["ort_resolved"] else None
    if m["ort"]:
        d = [r["max_abs_diff"] for r in m["ort"]]
        s["diff"] = d[0]
        s["ref"] = m["ort"][0]["max_abs_ref"]
    else:
        s["diff"] = s["ref"] = None
    return s


def tune_layers(d):
    """The Conv layers of bench/tune/TARGET/*.tune: model, shape, kernel, MACs and ns."""
    out = []
    for f in sorted(glob.glob(os.path.join(d, "*.tune"))):
        model = os.path.basename(f)[:-5]
        for line in open(f):
            if line.startswith("#") or "\t" not in line:
                continue
            fields = line.rstrip("\n").split("\t")
            key, blk, ns = fields[:3]
            form = fields[3] if len(fields) > 3 else ""   # the pointwise kernel's form, where --tune chose one
            op = key.split()[0]
            dims = dict(re.findall(r"(\w+)=\w+\[([0-9,]+)\]", key))
            if "Conv" not in op or "x1" not in dims or "y" not in dims or not ns.isdigit():
                continue
            w_ = [int(v) for v in dims["x1"].split(",")]
            x = [int(v) for v in dims["x0"].split(",")]
            y = [int(v) for v in dims["y"].split(",")]
            ny = math.prod(y)
            if op.endswith("WinogradConv"):
                if re.search(r"\bkernel=5\b", key):  # F(2x2,5x5): U[36, M, C]
                    macs, kind = ny * w_[2] * 25, "Winograd F(2x2,5x5)"
                else:
                    macs, kind = ny * w_[2] * 9, "Winograd F(%dx%d,3x3)" % ((2, 2) if w_[0] == 16 else (4, 4))
                ks = [5, 5] if re.search(r"\bkernel=5\b", key) else [3, 3]
            elif re.search(r"\bweight_hwc=1\b", key):
                # weight_hwc (passes/layout.c): W stored [M][K0][K1][C] for compiler/ops/conv.c's
                # channel-dot kernel, whose block (cd_plan) is the tune file's when it has at
                # most 12 accumulators, else mr channels x nr / 8 pixels when that has at most
                # 24 (x86-64-v4's 32 registers; 12 on the others), else 3 x 4
                macs, ks, kind = ny * math.prod(w_[1:]), w_[1:3], "channel dots"
                bm, bn = (int(v) for v in blk.split("x"))
                most = 24 if os.path.basename(os.path.normpath(d)) == "x86-64-v4" else 12  # bench/tune/TARGET
                blk = blk if bm * bn <= 12 else "%dx%d" % (bm, bn // 8) if bn >= 8 and bm * (bn // 8) <= most else "3x4"
            elif re.search(r"\bweight_kc=\d+", key):
                # weight_kc (passes/layout.c): W stored [C][K0][K1][Mp] for compiler/ops/conv.c's
                # channel-vector kernel; its block (cv_plan) is pixels x channels, the tune
                # file's when its channels are whole vectors within Mp and it has at most 12
                # vector accumulators (24 on x86-64-v4), else 6 x 2 vectors, 12 x 1 or 4 x 3
                macs, ks, kind = ny * math.prod(w_[:-1]), w_[1:3], "channel vectors"
                v4 = os.path.basename(os.path.normpath(d)) == "x86-64-v4"
                vl, mp, (bm, bn) = 16 if v4 else 8, w_[-1], (int(v) for v in blk.split("x"))
                if not (bn % vl == 0 and bn <= mp and bm * (bn // vl) <= (24 if v4 else 12)):
                    q = mp // vl if mp // vl <= 3 else 2
                    bm, bn = 12 // q, q * vl
                blk = "%dx%d" % (min(bm, math.prod(y[2:])), bn)
            else:
                # weight_cm (passes/layout.c): a pointwise W stored [C][Mp]; each output sums C inputs
                macs = ny * (x[1] if re.search(r"weight_cm=\d+", key) else math.prod(w_[1:]))
                ks = w_[2:]
                st = re.search(r"strides=([0-9,]+)", key)
                kind = "1x1" if w_[2:] == [1, 1] else ("strided" if st and set(st.group(1).split(",")) != {"1"} else "direct")
                g = re.search(r"group=(\d+)", key)
                if g and int(g.group(1)) > 1:
                    kind = "grouped"
            shape = "%d->%d %s on %s" % (x[1], y[1], "x".join(str(k) for k in ks), "x".join(str(v) for v in y[2:]))
            out.append(dict(model=model, shape=shape, kind=kind + " " + blk + (" " + form if form else ""), macs=macs, ns=int(ns)))
    return out


def machine():
    lscpu = sh("lscpu")
    get = lambda key: (re.search(r"^%s:\s*(.*)$" % re.escape(key), lscpu, re.M) or [None, "?"])[1]  # noqa: E731
    return {
        "cpu": get("Model name"),
        "cpus": get("CPU(s)"),
        "threads_per_core": get("Thread(s) per core"),
        "cores_per_socket": get("Core(s) per socket"),
        "flags": " ".join(f for f in ("avx2", "fma", "avx512f") if re.search(r"\b%s\b" % f, get("Flags"))),
        "kernel": platform.release(),
        "os": sh(". /etc/os-release 2>/dev/null && echo \"$PRETTY_NAME\""),
        "load": sh("cat /proc/loadavg").split()[:3],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--out")
    ap.add_argument("--ort-version", default="?")
    ap.add_argument("--seconds", default="1")
    ap.add_argument("--rounds", default="3")
    ap.add_argument("--cflags", default="-O3 -march=native")
    ap.add_argument("--cc", default="cc")
    ap.add_argument("--kdcc-flags", default="--batch 1")
    ap.add_argument("--tune-dir", help="bench/tune/TARGET: the Conv layers' --tune timings, tabulated against sgemm")
    a = ap.parse_args()

    models, sgemm, openblas, elapsed = load(a.raw)
    mach = machine()
    ccv = sh("%s --version | head -1" % a.cc)
    nodev = sh("node --version")
    commit = sh("git -C %s rev-parse --short HEAD" % ROOT)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    peak = max((g for _, _, g, _ in sgemm), default=None)

    L = []
    w = L.append
    w("# Benchmarks")
    w("")
    w("Generated by `bash bench/run.sh` (do not edit by hand: rerun it). "
      "kdcc's generated C against ONNX Runtime on the same machine, in the same run, one thread, batch 1.")
    w("")
    w("## Machine and tools")
    w("")
    w("| | |")
    w("| --- | --- |")
    w("| date | %s |" % date)
    w("| CPU | %s; %s logical CPUs (%s cores per socket, %s threads per core); %s |"
      % (mach["cpu"], mach["cpus"], mach["cores_per_socket"], mach["threads_per_core"], mach["flags"] or "no AVX2"))
    w("| OS | %s, Linux %s |" % (mach["os"] or "?", mach["kernel"]))
    w("| load average at the end | %s (a shared machine: other jobs ran during the measurements) |" % " ".join(mach["load"]))
    w("| kdcc | commit %s, `kdcc MODEL %s`, generated C built with `%s %s` |" % (commit or "?", a.kdcc_flags, a.cc, a.cflags))
    w("| C compiler | %s |" % ccv)
    w("| ONNX Runtime | onnxruntime-node %s (CPU), Node.js %s |" % (a.ort_version, nodev))
    w("| OpenBLAS | %s |" % (openblas or "?"))
    w("| run | %s s timed per model, engine and round; %s rounds; %s s in all |"
      % (a.seconds, a.rounds, elapsed if elapsed is not None else "?"))
    w("")
    w("## Method")
    w("")
    w("- **kdcc**: `kdcc MODEL --batch 1` writes C; `bench/harness.c` calls `m_run` in a loop "
      "(warm-up, then timed samples until the time is up; a sample is one call, "
      "or a block of calls lasting at least 20 µs for the tiniest models).")
    w("- **Target**: the host's (`--target` in the kdcc row above): x86-64-v4 where the CPU has AVX-512, "
      "x86-64-v3 with AVX2 and FMA, else generic. The target sets the register blocks and the floats per "
      "accumulator array (16 on x86-64-v4, built with `-mprefer-vector-width=512`, without which gcc and clang "
      "use 256-bit registers on these CPUs); --tune's blocks are kept per target in bench/tune/TARGET/.")
    w("- **ONNX Runtime**: `bench/ort.js`, in-process through onnxruntime-node: `intraOpNumThreads 1`, "
      "`interOpNumThreads 1`, sequential execution, graph optimisations `all`; warm-up, then per-call times of "
      "`session.run`. The Node binding's own cost per call (argument conversion, a hop to "
      "a worker thread and back, the promise) is measured in the same process on a one-element model "
      "(`bench/models/overhead.onnx`, y = x + 1) and subtracted, so the figure is ORT's own time. "
      "Where ORT's time is not clearly above that cost (below a quarter of it), no ratio is given.")
    w("- **Time** is the median over calls of the process's CPU time per call (`CLOCK_PROCESS_CPUTIME_ID` "
      "in the harness, `process.cpuUsage()` in ort.js). The machine is shared (see the load average): "
      "wall-clock time of a long call includes stretches when other jobs had the core, which inflated "
      "wall-clock medians by up to 2x in trial runs; CPU time leaves those out and is what the latency "
      "would be on an idle core (cache and memory-bandwidth interference from the other jobs still counts). "
      "Wall-clock medians and minima are in the details table.")
    w("- **Best calls**: the ratio of the fastest wall-clock call of each (ORT's fastest minus the binding's "
      "fastest), a second estimate that is insensitive to interruptions; where the two ratios disagree, "
      "the truth is likely between them.")
    w("- Both run on the same random input (uniform in [0, 1), fixed seed), which the harness writes for ort.js; "
      "ort.js also compares ORT's outputs with kdcc's (max abs diff).")
    w("- kdcc and ORT alternate per model (%s rounds). Figures are medians over rounds; the ratio "
      "(kdcc time / ORT time, below 1 = kdcc faster) is the median of per-round ratios, so slow phases of "
      "the shared machine affect both sides of each ratio." % a.rounds)
    w("- MACs: multiply-accumulates of Conv, ConvTranspose, Gemm, MatMul and their integer forms "
      "(`bench/macs.py`, from ONNX shape inference). GFLOP/s = 2 x MACs / time.")
    w("- Arena: `M_WORKSPACE_BYTES` from the generated header. Lower bound: the largest total size of "
      "intermediates live at the same node (kdcc's node order and lifetime model, views free, no in-place "
      "reuse; the figure `kdcc MODEL --report` prints as `no in place`, computed by the same function, "
      "`plan_lower_bound_separate`, through `bench/arena_bound.c`; an arena below it writes some outputs "
      "over their inputs in place). Sum: every intermediate in its own buffer. "
      "Graph inputs, outputs and weights are not in the arena.")
    w("")
    w("## Results")
    w("")
    w("| model | MACs | kdcc µs | ORT µs | kdcc / ORT | kdcc / ORT, best calls | kdcc GFLOP/s | arena bytes | lower bound | sum of intermediates | max abs diff |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    sums = {}
    for m in models:
        if m["errors"] and not m["kdcc"]:
            stage, msg = m["errors"][0]
            msg = re.sub(r"^kdcc: error: [^:]*: ", "", msg)  # the file name is the row's model
            w("| %s | %s | %s | | | | | | | | |" % (m["name"], fmt_int(m["macs"]),
                                                  "fails (%s): `%s`" % (stage, msg.replace("|", "\\|"))))
            continue
        s = summarise(m)
        sums[m["name"]] = s
        ar = m.get("arena", {})
        ort = fmt_us(s["ort"]) if s["ort_resolved"] else "< binding noise"
        diff = "-" if s["diff"] is None else ("%.1e" % s["diff"] if isinstance(s["diff"], (int, float)) else str(s["diff"]))
        w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            m["name"], fmt_int(m["macs"]), fmt_us(s["kdcc"]), ort,
            "%.2f" % s["ratio"] if s["ratio"] else "-",
            "%.2f" % s["ratio_best"] if s["ratio_best"] else "-",
            "%.2f" % s["gflops"] if s["gflops"] else "-",
            fmt_bytes(ar.get("header")), fmt_bytes(ar.get("bound")), fmt_bytes(ar.get("sum")), diff))
    errs = [(m["name"], e) for m in models for e in m["errors"] if m["kdcc"]]
    for name, (stage, msg) in errs:
        w("")
        w("%s: %s failed: `%s`" % (name, stage, msg))
    w("")
    w("Sources: mnist-8 ... ultraface-* are the real models of `../shared/onnx-tests/models`; "
      "mlp, lenet5, resnet8, dscnn, mobilenet025 and autoencoder are PyTorch exports with random weights "
      "(`bench/make_models.py`, committed in `bench/models`).")
    w("")
    w("### Details")
    w("")
    w("Wall-clock figures (what a caller waits, including time the shared machine gave to other jobs), "
      "the binding's cost, and compile times:")
    w("")
    w("| model | kdcc wall µs (median / min) | ORT wall µs with binding (median / min) | binding wall µs | ORT CPU µs with binding | binding CPU µs | per-round kdcc / ORT | ORT GFLOP/s | max abs output | kdcc compile s | cc -O3 s | C bytes |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for m in models:
        if m["name"] not in sums:
            continue
        s = sums[m["name"]]
        c = m.get("compile", (None, None, None))
        w("| %s | %s / %s | %s / %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            m["name"], fmt_us(s["kdcc_wall"]), fmt_us(s["kdcc_wall_min"]), fmt_us(s["ort_wall"]),
            fmt_us(s["ort_wall_min"]), fmt_us(s["bind_wall"]), fmt_us(s["ort_raw"]), fmt_us(s["bind"]),
            "%.2f to %.2f" % s["ratio_spread"] if s["ratio_spread"] else "-",
            "%.2f" % s["ort_gflops"] if s["ort_gflops"] else "-",
            "%.3g" % s["ref"] if s["ref"] is not None else "-",
            "%.2f" % c[0] if c[0] is not None else "-", "%.2f" % c[1] if c[1] is not None else "-",
            fmt_int(c[2]) if c[2] is not None else "-"))
    w("")
    w("## Reference: OpenBLAS sgemm, one thread")
    w("")
    w("Square row-major C = A x B (`bench/sgemm.c`, `openblas_set_num_threads(1)`).")
    w("")
    w("| N | median µs | GFLOP/s (median) | GFLOP/s (best call) |")
    w("| ---: | ---: | ---: | ---: |")
    for n, med, g, gb in sgemm:
        w("| %d | %s | %.1f | %.1f |" % (n, fmt_us(med), g, gb))
    w("")
    if FMA_PEAK:
        w("The core's multiply-add peak (`bench/sgemm.c --peak`: 16 independent chains of fused multiply-adds on %d-float "
          "vectors, nothing else in the loop): %.1f GFLOP/s median, %.1f at best. sgemm's best call reaches %.0f%% "
          "of it; no float kernel on this core can pass it." % (FMA_PEAK[0], FMA_PEAK[1], FMA_PEAK[2],
                                                                100 * max(gb for _, _, _, gb in sgemm) / FMA_PEAK[2]))
        w("")

    layers = tune_layers(a.tune_dir) if a.tune_dir else []
    if layers and peak:
        w("## Conv layers timed alone (--tune)")
        w("")
        w("`kdcc --tune` chose each tunable Conv layer's register block (and a pointwise layer's kernel form) "
          "on this host, timing its candidates alone, warm (`bench/tune/TARGET/MODEL.tune` records the choice); "
          "in this run `kdcc --tune-retime` timed each layer again in its recorded choice (best of four runs "
          "of five trials), so the times below sit beside this run's sgemm. MACs "
          "are the direct convolution's, also for Winograd layers (which do fewer multiplications), so "
          "GFLOP/s = 2 x MACs / time compares with sgemm's %.1f GFLOP/s above. Layers under 200 k MACs "
          "are left out (call overhead, not arithmetic)." % peak)
        w("")
        w("| model | layer | kernel | MACs | µs | GFLOP/s | of sgemm |")
        w("| --- | --- | --- | ---: | ---: | ---: | ---: |")
        big = [l for l in layers if l["macs"] >= 200000]
        for l in big:
            g = 2 * l["macs"] / l["ns"]
            w("| %s | %s | %s | %s | %s | %.1f | %.0f%% |" % (l["model"], l["shape"], l["kind"], fmt_int(l["macs"]),
                                                             fmt_us(l["ns"] / 1000), g, 100 * g / peak))
        w("")
        half = [l for l in big if 2 * l["macs"] / l["ns"] >= 0.5 * peak]
        tot = sum(l["macs"] for l in big)
        w("%d of %d layers reach 50%% of sgemm's GFLOP/s; they hold %.0f%% of these layers' MACs." %
          (len(half), len(big), 100 * sum(l["macs"] for l in half) / tot if tot else 0))
        w("")

    # ---- a reading, computed from the figures ----
    w("## Reading")
    w("")
    ok = [(n, s) for n, s in sums.items() if s["ratio"]]
    by_name = {m["name"]: m for m in models}
    failed = [m["name"] for m in models if m["errors"] and not m["kdcc"]]
    if ok:
        gm = math.exp(sum(math.log(s["ratio"]) for _, s in ok) / len(ok))
        faster = sorted([n for n, s in ok if s["ratio"] < 0.9], key=lambda n: sums[n]["ratio"])
        slower = sorted([n for n, s in ok if s["ratio"] > 1.1], key=lambda n: -sums[n]["ratio"])
        even = [n for n, s in ok if 0.9 <= s["ratio"] <= 1.1]
        w("- Over the %d models with a ratio, kdcc's time is %.2fx ORT's (geometric mean). "
          "kdcc is faster (ratio < 0.9) on %s; within 10%% on %s; slower (> 1.1) on %s."
          % (len(ok), gm, ", ".join(faster) or "none", ", ".join(even) or "none",
             ", ".join("%s (%.1fx)" % (n, sums[n]["ratio"]) for n in slower) or "none"))
        # where kdcc is less than 2x ahead: the GFLOP/s a 2x lead would take (in ORT's median
        # and in its best calls), beside the core's multiply-add peak
        short = [(n, s) for n, s in ok if s["ratio"] > 0.5 and by_name[n]["macs"]]
        if short and FMA_PEAK:
            need = lambda s, t: 2.0 * by_name[s]["macs"] / (t / 2 * 1e3)  # noqa: E731
            w("- A 2x lead over ORT on %s would take, for the model's MACs in half of ORT's own median time "
              "(and of its best calls): %s, against this core's multiply-add peak of %.1f GFLOP/s "
              "(`bench/sgemm.c --peak`, best; sgemm %.1f)."
              % (", ".join(n for n, _ in short),
                 "; ".join("%s %.0f GFLOP/s (%s)" % (n, need(n, s["ort"]),
                                                     "%.0f" % need(n, s["ort_best"]) if s["ort_best"] and s["ort_best"] > 0
                                                     else "-") for n, s in short),
                 FMA_PEAK[2], peak))
        conv = [s["ratio"] for n, s in ok if by_name[n]["macs"] and by_name[n]["conv_macs"] > 0.5 * by_name[n]["macs"]]
        fc = [s["ratio"] for n, s in ok if by_name[n]["macs"] and by_name[n]["conv_macs"] == 0]
        gmean = lambda xs: math.exp(sum(math.log(x) for x in xs) / len(xs))  # noqa: E731
        if conv and fc:
            text = ("- By kind: on the %d models whose MACs are mostly convolutions kdcc takes %.2fx ORT's time "
                    "(geometric mean); on the %d fully-connected models (Gemm/MatMul only) %.2fx."
                    % (len(conv), gmean(conv), len(fc), gmean(fc)))
            if gmean(conv) > 1.2 * gmean(fc):
                text += (" Fully-connected layers at batch 1 are matrix-vector products bound by reading the "
                         "weights, where kdcc's straight-line code without per-operator dispatch does well; "
                         "convolutions are where ORT's kernels (packed GEMM, specialised depthwise and blocked-layout "
                         "kernels) stay ahead of kdcc's loop nests: compare kdcc's and ORT's GFLOP/s on the "
                         "convolutional models.")
            w(text)
        shaky = [n for n, s in ok if s["ort"] < s["bind"]]
        if shaky:
            w("- Ratios for %s are indicative only: ORT's own time there is smaller than the binding cost that "
              "was subtracted, so small errors in that cost move the ratio a lot (see the per-round spread)."
              % ", ".join(shaky))
    tiny = [n for n, s in sums.items() if not s["ort_resolved"]]
    if tiny:
        w("- For %s ORT's own time is lost in the noise of the binding's per-call cost (median %s µs here), "
          "so no ratio is given; kdcc's absolute time is the figure to read." %
          (", ".join(tiny), fmt_us(statistics.median(s["bind"] for s in sums.values() if s["bind"] is not None))))
    if peak:
        gf = sorted(((s["gflops"], n) for n, s in sums.items() if s["gflops"]), reverse=True)
        if gf:
            w("- Arithmetic throughput: kdcc reaches %.1f GFLOP/s at best (%s), %.0f%% of single-thread OpenBLAS sgemm's "
              "%.1f GFLOP/s; the median over models is %.1f GFLOP/s. Weights of the small models stay in cache "
              "across the repeated calls, which flatters them; a tiny model's GFLOP/s says more about "
              "per-call overhead than about arithmetic."
              % (gf[0][0], gf[0][1], 100 * gf[0][0] / peak, peak, statistics.median(g for g, _ in gf)))
    tight = [n for n, m in ((m["name"], m) for m in models) if n in sums and m.get("arena", {}).get("bound")
             and m["arena"]["header"] is not None and m["arena"]["header"] <= m["arena"]["bound"] + 16 * m["arena"]["count"]]
    loose = [(n, m["arena"]["header"] / m["arena"]["bound"]) for n, m in ((m["name"], m) for m in models)
             if n in sums and m.get("arena", {}).get("bound") and n not in tight and m["arena"]["header"]]
    if tight or loose:
        w("- Memory plan: the arena meets or beats the lower bound (up to 16-byte alignment) on %d of %d models%s. "
          "Compared with giving every intermediate its own buffer, it saves %s."
          % (len(tight), len(tight) + len(loose),
             "; above it on " + ", ".join("%s (%.2fx)" % x for x in loose) if loose else "",
             ", ".join("%.0f%% on %s" % (100 * (1 - m["arena"]["header"] / m["arena"]["sum"]), m["name"])
                       for m in models if m["name"] in sums and m.get("arena", {}).get("sum") and m["arena"]["header"] is not None
                       and m["arena"]["sum"] > 0)))
    bad = [n for n, s in sums.items() if s["diff"] is not None and (not isinstance(s["diff"], (int, float))
                                                                     or s["diff"] > 1e-3 * max(1.0, s["ref"] or 0))]
    w("- Outputs: %s" % ("kdcc and ORT agree on every model that compiled (max abs diff within 1e-3 of the output scale)."
                         if not bad else "outputs differ beyond 1e-3 relative on %s (see max abs diff)." % ", ".join(bad)))
    chk = [(m["name"], m.get("info_macs")) for m in models if m["name"] in sums]
    disagree = [n for n, v in chk if v is not None and v != by_name[n]["macs"]]
    if any(v is not None for _, v in chk):
        w("- MACs: `kdcc info` counts %s" % ("the same MACs as bench/macs.py on every compiled model."
                                            if not disagree else "differently from bench/macs.py on %s." % ", ".join(disagree)))
    if failed:
        w("- Not compiled by kdcc: %s (the error is in the table)." % ", ".join(failed))
    w("- Caveats: one shared machine with other jobs running (see the load average); medians over alternating "
      "rounds damp the noise but single figures moved by 10-40% between whole runs here (super-resolution-10 the most). ORT runs through "
      "its Node binding with the binding's cost subtracted, which is an estimate. Weights of the PyTorch "
      "models are random; timing does not depend on their values.")
    text = "\n".join(L) + "\n"
    if a.out:
        # keep the distillation benchmark's sections, one per thread count (bench/distill/run.sh writes them)
        try:
            with open(a.out) as f:
                old = f.read()
            for sec in re.finditer(r"<!-- (distill-benchmark[\w-]*):begin -->.*?<!-- \1:end -->", old, re.S):
                text += "\n" + sec.group(0) + "\n"
        except OSError:
            pass
        with open(a.out, "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
