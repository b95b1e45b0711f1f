// Runs an ONNX model with onnxruntime-node (CPU) on named feeds and writes
// every graph output.
//   node ort_run.js SPEC.json
// SPEC: {"model": PATH, "out_dir": DIR,
//        "feeds": [{"name", "dtype": "int64"|"int32"|"float32", "dims": [...], "file": RAW.bin}]}
// Writes DIR/<i>.bin for the i-th output (raw little-endian) and prints
// {"outputs": [{"name", "dtype", "dims", "file"}]}.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

const ARRAYS = {int64: BigInt64Array, int32: Int32Array, float32: Float32Array};

async function main() {
  const specPath = process.argv[2];
  if (!specPath) {
    console.error('usage: node ort_run.js SPEC.json');
    process.exit(2);
  }
  const spec = JSON.parse(fs.readFileSync(specPath, 'utf8'));
  const feeds = {};
  for (const f of spec.feeds) {
    const Arr = ARRAYS[f.dtype];
    if (!Arr) throw new Error('unsupported feed dtype ' + f.dtype);
    const n = f.dims.reduce((a, b) => a * b, 1);
    const buf = fs.readFileSync(f.file);
    // Copy into a fresh, aligned buffer (a zero-length tensor has no bytes).
    const data = new Arr(n);
    if (n) new Uint8Array(data.buffer).set(new Uint8Array(buf.buffer, buf.byteOffset, n * Arr.BYTES_PER_ELEMENT));
    feeds[f.name] = new ort.Tensor(f.dtype, data, f.dims);
  }
  const session = await ort.InferenceSession.create(spec.model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: spec.optimization || 'all',
    intraOpNumThreads: 2,
  });
  const result = await session.run(feeds);
  const outputs = [];
  session.outputNames.forEach((name, i) => {
    const t = result[name];
    const file = path.join(spec.out_dir, i + '.bin');
    fs.writeFileSync(file, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    outputs.push({name, dtype: t.type, dims: t.dims, file});
  });
  console.log(JSON.stringify({outputs}));
}

main().catch((e) => {
  console.error('ort_run: ' + (e && e.message ? e.message : e));
  process.exit(1);
});
