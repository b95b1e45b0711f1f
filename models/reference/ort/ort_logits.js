// Runs an ONNX decoder with onnxruntime-node (CPU) on int64 token ids and
// writes the float32 logits.
//   node ort_logits.js MODEL.onnx IDS.bin BATCH SEQ OUT.bin
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, idsPath, batch, seq, out] = process.argv.slice(2);
  if (!out) {
    console.error('usage: node ort_logits.js MODEL.onnx IDS.bin BATCH SEQ OUT.bin');
    process.exit(2);
  }
  const b = Number(batch), s = Number(seq);
  const buf = fs.readFileSync(idsPath);
  const ids = new BigInt64Array(buf.buffer, buf.byteOffset, b * s);
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: 2,
  });
  const result = await session.run({input_ids: new ort.Tensor('int64', ids, [b, s])});
  const logits = result.logits;
  fs.writeFileSync(out, Buffer.from(logits.data.buffer, logits.data.byteOffset, logits.data.byteLength));
  console.log(JSON.stringify({dims: logits.dims}));
}

main().catch((e) => {
  console.error('ort_logits: ' + (e && e.message ? e.message : e));
  process.exit(1);
});
