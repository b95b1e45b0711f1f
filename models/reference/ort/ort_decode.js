// Greedy decoding with onnxruntime-node (CPU) on a decoder-with-past export
// (optimum's convention: input_ids, attention_mask, position_ids,
// past_key_values.{i}.key / .value in; logits, present.{i}.* out): the
// prompt in one call, then STEPS calls of one token each with the presents
// fed back as the past. Prints JSON with the prefill time and the decode
// tokens/s (the same measure as w4a4-run --generate --json).
//   node ort_decode.js MODEL.onnx PROMPT_IDS(comma-separated) STEPS [THREADS]
'use strict';
const ort = require('onnxruntime-node');

async function main() {
  const [model, idsArg, stepsArg, threadsArg] = process.argv.slice(2);
  if (!stepsArg) {
    console.error('usage: node ort_decode.js MODEL.onnx IDS STEPS [THREADS]');
    process.exit(2);
  }
  const prompt = idsArg.split(',').filter((s) => s.length).map(Number);
  const steps = Number(stepsArg);
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: Number(threadsArg || 2),
  });
  const pastNames = session.inputNames.filter((n) => n.startsWith('past_key_values.'));
  const presentNames = session.outputNames.filter((n) => n.startsWith('present.'));
  if (!pastNames.length || pastNames.length !== presentNames.length)
    throw new Error(model + ': not a decoder-with-past export (past_key_values.* / present.*)');
  // The past's shape [batch, kv_heads, past, head_dim] from the model's inputs.
  const meta = session.inputMetadata ? session.inputMetadata : null;
  let kvHeads = 0, headDim = 0;
  if (meta) {
    const m = Array.isArray(meta) ? meta.find((x) => x.name === pastNames[0]) : meta[pastNames[0]];
    if (m && m.shape) { kvHeads = Number(m.shape[1]); headDim = Number(m.shape[3]); }
  }
  if (!(kvHeads > 0 && headDim > 0))
    throw new Error(model + ': cannot read the past tensors\' static dims');
  let past = {};
  for (const n of pastNames) past[n] = new ort.Tensor('float32', new Float32Array(0), [1, kvHeads, 0, headDim]);
  let pastLen = 0;
  const step = async (ids) => {
    const s = ids.length;
    const feeds = Object.assign({}, past);
    feeds.input_ids = new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, s]);
    feeds.attention_mask = new ort.Tensor('int64', new BigInt64Array(pastLen + s).fill(1n), [1, pastLen + s]);
    feeds.position_ids = new ort.Tensor('int64', BigInt64Array.from(ids.map((_, i) => BigInt(pastLen + i))), [1, s]);
    const out = await session.run(feeds);
    past = {};
    pastNames.forEach((n, i) => { past[n] = out[presentNames[i]]; });
    pastLen += s;
    const logits = out.logits.data, vocab = out.logits.dims[2];
    let best = 0;
    for (let v = 1; v < vocab; ++v) if (logits[(s - 1) * vocab + v] > logits[(s - 1) * vocab + best]) best = v;
    return best;
  };
  const t0 = process.hrtime.bigint();
  let next = await step(prompt);
  const t1 = process.hrtime.bigint();
  const generated = [next];
  for (let i = 1; i < steps; ++i) {
    next = await step([next]);
    generated.push(next);
  }
  const t2 = process.hrtime.bigint();
  const prefill = Number(t1 - t0) / 1e9, decode = Number(t2 - t1) / 1e9;
  console.log(JSON.stringify({prompt_tokens: prompt.length, new_tokens: generated.length, generated,
                              prefill_s: prefill, decode_s: decode,
                              decode_tokens_per_s: steps > 1 ? (steps - 1) / decode : 0}));
}

main().catch((e) => {
  console.error('ort_decode: ' + (e && e.message ? e.message : e));
  process.exit(1);
});
