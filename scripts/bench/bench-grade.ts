/**
 * Grading speed: the numeric fast path (GSM8K model solutions), the CAS path (the math-verify
 * pairs fixture), worker start-up and the cost of a timed-out check.
 * Usage: node --import tsx scripts/bench/bench-grade.ts [--data ../shared/data]
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { casStats, ensureCasReady, gradeAnswer, isEquivalent, resetCasStats, shutdownCas } from '../../src/math/index.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const dataArg = process.argv.indexOf('--data');
const data = dataArg > 0 ? process.argv[dataArg + 1] : `${repo}/../shared/data`;

function jsonl<T>(path: string): T[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);
}

const startup = ensureCasReady();
console.log(`CAS worker start-up: ${startup.toFixed(0)} ms`);

const solutionsPath = `${data}/gsm8k/example_model_solutions.jsonl`;
if (existsSync(solutionsPath)) {
  const gold = new Map(jsonl<{ question: string; answer: string }>(`${data}/gsm8k/test.jsonl`).map((r) => [r.question, r.answer.split('####')[1].trim()]));
  const items: [string, string][] = [];
  for (const row of jsonl<Record<string, { solution: string }> & { question: string }>(solutionsPath)) {
    for (const model of ['6b_finetuning', '6b_verification', '175b_finetuning', '175b_verification']) items.push([row[model].solution, gold.get(row.question)!]);
  }
  for (let rep = 0; rep < 3; rep++) {
    resetCasStats();
    const t = performance.now();
    let correct = 0;
    for (const [response, answer] of items) if (gradeAnswer(response, answer).correct) correct++;
    const s = (performance.now() - t) / 1000;
    console.log(`GSM8K numeric path: ${items.length} solutions in ${s.toFixed(3)} s = ${Math.round(items.length / s)}/s (${correct} correct, CAS checks ${casStats().calls})`);
  }
} else {
  console.log(`skipped GSM8K: ${solutionsPath} is absent`);
}

const pairs = jsonl<{ gold: string; response: string }>(`${repo}/test/fixtures/math/grader_pairs.jsonl`);
for (const label of ['cold cache', 'warm cache']) {
  resetCasStats();
  const t = performance.now();
  for (const p of pairs) gradeAnswer(p.response, p.gold);
  const ms = performance.now() - t;
  const st = casStats();
  console.log(
    `grader pairs (${label}): ${pairs.length} in ${(ms / 1000).toFixed(2)} s = ${(ms / pairs.length).toFixed(2)} ms/pair; ` +
      `CAS checks ${st.calls} (${st.calls ? (st.waitMs / st.calls).toFixed(2) : '0'} ms each), cache hits ${st.cacheHits}`,
  );
}

resetCasStats();
const t = performance.now();
isEquivalent('\\sum_{n=1}^{10^{8}}\\frac{1}{n}', '5', { timeoutMs: 2000 });
console.log(`pathological check with the default 2 s deadline: ${(performance.now() - t).toFixed(0)} ms, timeouts ${casStats().timeouts}`);
const restart = ensureCasReady();
console.log(`worker restart after the timeout: ${restart.toFixed(0)} ms`);
shutdownCas();
