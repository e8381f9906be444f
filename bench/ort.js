// Time ONNX Runtime (onnxruntime-node, CPU) on one model, in the same way as
// bench/harness.c times kdcc's code, and compare outputs with kdcc's.
//
//   node bench/ort.js MODEL.onnx OVERHEAD.onnx DIR [SECONDS] [MIN_SAMPLES]
//
// DIR holds meta.json (from bench/glue.py) and in_K.bin / out_K.bin (the
// inputs kdcc's harness used and the outputs it produced). One intra-op and
// one inter-op thread, sequential execution, all graph optimisations.
//
// The Node binding costs a few microseconds per call (argument conversion,
// the promise). To compare with ORT itself, the same process also times
// OVERHEAD.onnx (y = x + 1 on one float) and reports its median, which the
// caller subtracts.
//
// Each call is timed twice: wall clock, and the process's CPU time
// (process.cpuUsage: user + system of all threads, microsecond resolution),
// which leaves out the time other processes had the core on a shared machine.
//
// Prints one JSON line: {median_us, min_us, samples, cpu_median_us, cpu_min_us,
// overhead_cpu_median_us, overhead_median_us, overhead_min_us, max_abs_diff,
// max_abs_ref, outputs_compared}.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

const [modelPath, overheadPath, dir, secArg, minArg] = process.argv.slice(2);
const seconds = secArg ? parseFloat(secArg) : 1.0;
const minSamples = minArg ? parseInt(minArg, 10) : 10;

const ARRAYS = {
  float: Float32Array, double: Float64Array, int8: Int8Array, uint8: Uint8Array,
  int16: Int16Array, uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array,
  int64: BigInt64Array, uint64: BigUint64Array, bool: Uint8Array,
};

const ORT_TYPE = { float: 'float32', double: 'float64' };

function readTyped(file, type) {
  const buf = fs.readFileSync(file);
  const A = ARRAYS[type];
  // copy into an aligned buffer
  const bytes = new Uint8Array(buf.byteLength);
  bytes.set(buf);
  return new A(bytes.buffer, 0, buf.byteLength / A.BYTES_PER_ELEMENT);
}

const opts = {
  executionProviders: ['cpu'],
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
};

function median(xs) {
  const s = Float64Array.from(xs).sort();
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

function now() {
  return Number(process.hrtime.bigint()) / 1e3; // microseconds
}

async function time(session, feeds, secs, minN) {
  const w0 = now();
  for (let i = 0; i < 3 || now() - w0 < 0.2e6; i++) await session.run(feeds);
  const samples = [], cpu = [];
  const t0 = now();
  while ((samples.length < minN || now() - t0 < secs * 1e6) && samples.length < 1000000) {
    const c = process.cpuUsage();
    const a = now();
    await session.run(feeds);
    const b = now();
    const d = process.cpuUsage(c);
    samples.push(b - a);
    cpu.push(d.user + d.system);
  }
  return { median: median(samples), min: Math.min(...samples), n: samples.length,
           cpu: median(cpu), cpuMin: Math.min(...cpu) };
}

async function main() {
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8'));
  const session = await ort.InferenceSession.create(modelPath, opts);
  const feeds = {};
  meta.inputs.forEach((inp, k) => {
    const data = readTyped(path.join(dir, `in_${k}.bin`), inp.type);
    feeds[inp.name] = new ort.Tensor(ORT_TYPE[inp.type] || inp.type, data, inp.shape);
  });

  // correctness: ORT's outputs against kdcc's on the same input
  const res = await session.run(feeds);
  let maxDiff = 0, maxRef = 0, compared = 0;
  meta.outputs.forEach((o, k) => {
    const file = path.join(dir, `out_${k}.bin`);
    if (!(o.name in res) || !fs.existsSync(file)) return;
    const mine = readTyped(file, o.type);
    const ref = res[o.name].data;
    if (ref.length !== mine.length) {
      maxDiff = Infinity;
      return;
    }
    compared++;
    for (let i = 0; i < ref.length; i++) {
      const r = Number(ref[i]), m = Number(mine[i]);
      const d = Math.abs(r - m);
      if (!(d <= maxDiff)) maxDiff = Number.isNaN(d) ? Infinity : d;
      if (Math.abs(r) > maxRef) maxRef = Math.abs(r);
    }
  });

  const over = await ort.InferenceSession.create(overheadPath, opts);
  const overFeeds = { input: new ort.Tensor('float32', new Float32Array([0.5]), [1]) };
  // interleave: model, overhead, model, overhead (halves), so drift hits both
  const m1 = await time(session, feeds, seconds / 2, Math.ceil(minSamples / 2));
  const o1 = await time(over, overFeeds, seconds / 4, 50);
  const m2 = await time(session, feeds, seconds / 2, Math.ceil(minSamples / 2));
  const o2 = await time(over, overFeeds, seconds / 4, 50);
  console.log(JSON.stringify({
    median_us: 0.5 * (m1.median + m2.median),
    min_us: Math.min(m1.min, m2.min),
    samples: m1.n + m2.n,
    cpu_median_us: 0.5 * (m1.cpu + m2.cpu),
    cpu_min_us: Math.min(m1.cpuMin, m2.cpuMin),
    overhead_cpu_median_us: 0.5 * (o1.cpu + o2.cpu),
    overhead_median_us: 0.5 * (o1.median + o2.median),
    overhead_min_us: Math.min(o1.min, o2.min),
    max_abs_diff: maxDiff === Infinity ? 'inf' : maxDiff,
    max_abs_ref: maxRef,
    outputs_compared: compared,
  }));
}

main().catch((e) => {
  console.error('ort.js: ' + (e && e.message ? e.message.split('\n')[0] : e));
  process.exit(1);
});
