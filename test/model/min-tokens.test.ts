import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SYSTEM_PROMPT, encodeSample, fittingBound } from '../../src/model/encode.js';
import { PrmTokenizer } from '../../src/model/tokenizer.js';
import { buildWordLevelTokenizer } from '../../src/model/word-tokenizer.js';
import { Rng } from '../../src/util/rng.js';
import { loadProcessBench, qwenTokenizer } from '../support/tokenizer.js';

const fixtureDir = fileURLToPath(new URL('../fixtures/model/qwen2-gqa/', import.meta.url));

/** Text from pieces that stress the bound: long letter runs, digits, space runs, accents (also decomposed), special-token text. */
function randomText(rng: Rng): string {
  const pieces = ['a', 'Zz', '0123', ' ', '    ', '\n\n', '===', 'é', 'e\u0301', '한', '\u1112\u1161\u11ab', '𝔸', '<|im_start|>', 'latesAutoresizingMaskIntoConstraints', '\\frac{1}{2}'];
  let text = '';
  const n = rng.int(1, 40);
  for (let i = 0; i < n; i++) text += pieces[rng.int(0, pieces.length - 1)].repeat(rng.int(1, rng.bernoulli(0.2) ? 300 : 5));
  return text;
}

/** The reference cut: the most leading steps whose whole encoding fits, found by encoding each prefix. */
function referenceKept(tok: PrmTokenizer, sample: { problem: string; steps: string[] }, maxLength: number): number {
  let kept = 0;
  for (let k = 1; k <= sample.steps.length; k++) {
    if (encodeSample(tok, { problem: sample.problem, steps: sample.steps.slice(0, k) }).inputIds.length <= maxLength) kept = k;
    else break;
  }
  return kept;
}

describe('tokenizer: a lower bound on token counts from characters alone', function () {
  this.timeout(120_000);
  const qwen = qwenTokenizer();
  const fixture = PrmTokenizer.fromFiles(readFileSync(`${fixtureDir}tokenizer.json`, 'utf8'), readFileSync(`${fixtureDir}tokenizer_config.json`, 'utf8'));

  it('never exceeds the real count (random stress texts, both byte-level BPE vocabularies)', () => {
    const rng = new Rng(18);
    for (const tok of [qwen, fixture]) {
      for (let i = 0; i < 300; i++) {
        const text = randomText(rng);
        expect(tok.minTokens(text), JSON.stringify(text.slice(0, 60))).to.be.at.most(tok.encodeText(text).length);
      }
    }
    // Tight where it matters: a long word of letters or digits.
    expect(qwen.minTokens('a'.repeat(1_000_000))).to.be.above(20_000);
    expect(qwen.minTokens('7'.repeat(5_000))).to.equal(5_000);
  });

  it('never exceeds the real count on ProcessBench problems and steps', function () {
    const bench = loadProcessBench();
    if (!bench) this.skip();
    for (const s of bench!.slice(0, 400)) {
      for (const text of [s.problem, ...s.steps]) expect(qwen.minTokens(text)).to.be.at.most(qwen.encodeText(text).length);
    }
  });

  it('gives no bound for a word-level vocabulary (any word is one token)', () => {
    const files = buildWordLevelTokenizer(['one two three']);
    const words = PrmTokenizer.fromFiles(files.tokenizerJson, files.tokenizerConfigJson);
    expect(words.minTokens('x'.repeat(10_000))).to.equal(0);
  });

  it('encodeSample cuts a sample that cannot fit to the same steps as encoding every prefix would', () => {
    const rng = new Rng(5);
    let cheapPaths = 0;
    for (let i = 0; i < 40; i++) {
      const steps = Array.from({ length: rng.int(1, 6) }, () => (rng.bernoulli(0.3) ? 'x'.repeat(rng.int(200, 3_000)) : `Step: ${'3 + 4 = 7. '.repeat(rng.int(1, 30))}`));
      const sample = { problem: `What is ${rng.int(1, 99)} + 4?`, steps };
      const maxLength = rng.int(60, 400);
      if (fittingBound(qwen, sample, DEFAULT_SYSTEM_PROMPT, maxLength).steps < steps.length) cheapPaths++;
      const enc = encodeSample(qwen, sample, { maxLength });
      const kept = referenceKept(qwen, sample, maxLength);
      if (kept === steps.length) {
        expect(enc.truncated).to.equal(undefined);
        continue;
      }
      expect(enc.truncated?.keptSteps, `maxLength ${maxLength}`).to.equal(kept);
      const reference = kept > 0 ? encodeSample(qwen, { problem: sample.problem, steps: steps.slice(0, kept) }).inputIds : [];
      expect(enc.inputIds).to.deep.equal(reference);
      expect(enc.truncated!.fullLength).to.be.at.most(encodeSample(qwen, sample).inputIds.length);
    }
    expect(cheapPaths, 'samples cut by the character bound').to.be.above(5);
  });

  it('cuts a step of five million letters in well under a second, without tokenizing it', () => {
    const started = performance.now();
    const enc = encodeSample(qwen, { problem: 'p', steps: ['First step.', 'a'.repeat(5_000_000), 'Last.'] }, { maxLength: 4096 });
    expect(performance.now() - started).to.be.below(1_000);
    expect(enc.truncated).to.include({ keptSteps: 1, totalSteps: 3, estimated: true });
    expect(enc.truncated!.fullLength).to.be.above(100_000);
    expect(enc.truncated!.reason).to.match(/^at least \d+ tokens > maxLength 4096/);
    expect(enc.stepPositions).to.have.length(1);
  });
});
