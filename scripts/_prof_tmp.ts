import { selectBackend } from '../src/model/backend.js';
import { loadScoringModel } from '../src/eval/score.js';
import { encodeSample } from '../src/model/encode.js';
import { forwardOnce } from '../src/serve/forward.js';
import { tinyCheckpoint, problems } from '../test/score/fixture.js';
await selectBackend(process.argv[2] as 'cpu');
const dir = await tinyCheckpoint();
const { model, tokenizer } = await loadScoringModel(dir);
let t = performance.now();
let encs = [];
for (let i = 0; i < 100; i++) encs.push(encodeSample(tokenizer, problems[i % 5], { maxLength: 512 }));
console.log('encode ms/sample', (performance.now() - t) / 100, 'len', encs[0].inputIds.length);
for (const bs of [1, 8, 32]) {
  await forwardOnce(model, tokenizer.padTokenId, encs.slice(0, bs));
  t = performance.now();
  for (let i = 0; i < 10; i++) await forwardOnce(model, tokenizer.padTokenId, encs.slice(0, bs));
  console.log('forward bs', bs, 'ms', (performance.now() - t) / 10);
}
