// Perplexity with onnxruntime-node (CPU), the same sliding window as
// w4a4-run and the reference evaluator: windows of CTX tokens advancing by
// STRIDE, each fed as [BOS][window], every token scored once. Prints JSON.
//   node ort_ppl.js MODEL.onnx IDS.txt CTX STRIDE [BOS] [THREADS]
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, idsPath, ctxArg, strideArg, bosArg, threadsArg] = process.argv.slice(2);
  if (!strideArg) {
    console.error('usage: node ort_ppl.js MODEL.onnx IDS.txt CTX STRIDE [BOS] [THREADS]');
    process.exit(2);
  }
  const ids = fs.readFileSync(idsPath, 'utf8').split(/[\s,]+/).filter((s) => s.length).map(Number);
  const ctx = Number(ctxArg), stride = Number(strideArg), bos = Number(bosArg || 1);
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: Number(threadsArg || 2),
  });
  let nll = 0, count = 0, scored = 0;
  const t0 = process.hrtime.bigint();
  for (let start = 0; start < ids.length; start += stride) {
    const end = Math.min(start + ctx, ids.length);
    const input = BigInt64Array.from([bos, ...ids.slice(start, end)].map(BigInt));
    const out = await session.run({input_ids: new ort.Tensor('int64', input, [1, input.length])});
    const logits = out.logits.data, vocab = out.logits.dims[2];
    for (let j = Math.max(scored - start, 0); j < end - start; ++j) {
      let mx = -Infinity;
      for (let v = 0; v < vocab; ++v) mx = Math.max(mx, logits[j * vocab + v]);
      let sum = 0;
      for (let v = 0; v < vocab; ++v) sum += Math.exp(logits[j * vocab + v] - mx);
      nll -= logits[j * vocab + ids[start + j]] - mx - Math.log(sum);
      ++count;
    }
    scored = end;
    if (end === ids.length) break;
  }
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify({tokens: count, mean_nll: nll / count, ppl: Math.exp(nll / count),
                              tokens_per_s: count / wall, wall_s: wall}));
}

main().catch((e) => {
  console.error('ort_ppl: ' + (e && e.message ? e.message : e));
  process.exit(1);
});
