import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/backend/backend.js';
import { scoreSamples, scoreByPrefixes, SampleError } from '../../src/eval/score.js';
import { encodeSample, collateBatch } from '../../src/model/encode.js';
import type { PrmModel } from '../../src/model/prm.js';
import type { PrmTokenizer } from '../../src/model/tokenizer.js';
import { problems, tinyPrm } from '../support/tiny-prm.js';
import { testBackend } from '../support/backend.js';

function expectClose(actual: (number[] | null)[], expected: (number[] | null)[], tol: number): void {
  expect(actual.length).to.equal(expected.length);
  actual.forEach((row, i) => {
    if (expected[i] === null) return expect(row, `sample ${i}`).to.equal(null);
    expect(row, `sample ${i}`).to.have.length(expected[i]!.length);
    row!.forEach((v, k) => expect(v, `sample ${i} step ${k}`).to.be.closeTo(expected[i]![k], tol));
  });
}

describe(`eval/score scoreSamples (tiny PRM, ${testBackend()} backend)`, () => {
  let model: PrmModel;
  let tok: PrmTokenizer;

  before(async () => {
    await selectBackend(testBackend(), { log: () => {} });
    ({ model, tokenizer: tok } = tinyPrm());
  });
  after(() => model?.dispose());

  it('gives one score in (0, 1) per step, equal to scoring each sample alone', async () => {
    const { stepScores, tooLong } = await scoreSamples(model, tok, problems);
    expect(tooLong).to.deep.equal([]);
    const alone = problems.map((p) => {
      const e = encodeSample(tok, p);
      const b = collateBatch([e], { padTokenId: tok.padTokenId });
      const ids = tf.tensor2d(b.inputIds, [1, b.seqLen], 'int32');
      const mask = tf.tensor2d(b.attentionMask, [1, b.seqLen], 'int32');
      try {
        return model.stepScores(ids, mask, b.stepPositions)[0];
      } finally {
        ids.dispose();
        mask.dispose();
      }
    });
    expectClose(stepScores, alone, 1e-5);
    for (const row of stepScores) for (const v of row!) expect(v).to.be.greaterThan(0).and.lessThan(1);
    // The random model must tell steps apart, or the comparisons above prove little.
    const flat = stepScores.flat() as number[];
    expect(Math.max(...flat) - Math.min(...flat)).to.be.greaterThan(0.01);
  });

  it('does not depend on how the samples are batched and padded', async () => {
    const one = await scoreSamples(model, tok, problems, { maxTokensPerBatch: 1 });
    const all = await scoreSamples(model, tok, problems, { maxTokensPerBatch: 1e6 });
    expectClose(one.stepScores, all.stepScores, 1e-5);
  });

  it('matches one forward per step prefix (the naive baseline)', async () => {
    const once = await scoreSamples(model, tok, problems);
    const prefixes = await scoreByPrefixes(model, tok, problems, { maxTokensPerBatch: 300 });
    expectClose(prefixes.stepScores, once.stepScores, 1e-5);
  });

  it('reports samples longer than maxLength with null scores, never cut', async () => {
    const lengths = problems.map((p) => encodeSample(tok, p).inputIds.length);
    const maxLength = [...lengths].sort((a, b) => a - b)[2];
    const { stepScores, tooLong } = await scoreSamples(model, tok, problems, { maxLength });
    const expectedTooLong = lengths.map((n, i) => (n > maxLength ? i : -1)).filter((i) => i >= 0);
    expect(expectedTooLong).to.not.be.empty;
    expect(tooLong).to.deep.equal(expectedTooLong);
    const full = await scoreSamples(model, tok, problems);
    expectClose(stepScores, full.stepScores.map((s, i) => (tooLong.includes(i) ? null : s)), 1e-5);
    const prefixes = await scoreByPrefixes(model, tok, problems, { maxLength });
    expect(prefixes.tooLong).to.deep.equal(expectedTooLong);
  });

  it('returns [] for a sample without steps and reports progress to the total', async () => {
    const calls: [number, number][] = [];
    const { stepScores } = await scoreSamples(model, tok, [{ problem: 'Nothing to say?', steps: [] }, problems[0]], {
      onProgress: (done, total) => calls.push([done, total]),
    });
    expect(stepScores[0]).to.deep.equal([]);
    expect(stepScores[1]).to.have.length(3);
    expect(calls.at(-1)).to.deep.equal([1, 1]);
  });

  it('names the sample and field that cannot be encoded', async () => {
    const bad = [problems[0], { problem: 'p', steps: ['fine', 'has <extra_0> inside'] }];
    try {
      await scoreSamples(model, tok, bad);
      expect.fail('should have thrown');
    } catch (e) {
      expect(e).to.be.instanceOf(SampleError);
      expect((e as SampleError).index).to.equal(1);
      expect((e as SampleError).field).to.equal('steps[1]');
    }
  });

  it('leaks no tensors across repeated scoring calls', async () => {
    await scoreSamples(model, tok, problems, { maxTokensPerBatch: 100 });
    const before = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) {
      await scoreSamples(model, tok, problems, { maxTokensPerBatch: 100 });
      await scoreByPrefixes(model, tok, problems, { maxTokensPerBatch: 100 });
    }
    expect(tf.memory().numTensors).to.equal(before);
  });
});
