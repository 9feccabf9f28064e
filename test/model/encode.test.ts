import { expect } from 'chai';
import { encodeSample, collateBatch, bucketByLength, DEFAULT_SYSTEM_PROMPT, type EncodedSample } from '../../src/model/encode.js';
import { qwenTokenizer, encodedProcessBench, type BenchSample } from '../support/tokenizer.js';

describe('model/encode encodeSample on all of ProcessBench (real Qwen tokenizer)', function () {
  let samples: BenchSample[] = [];
  let encoded: EncodedSample[] = [];

  before(function () {
    const bench = encodedProcessBench();
    if (!bench) this.skip();
    ({ samples, encoded } = bench!);
    const tokens = encoded.reduce((n, e) => n + e.inputIds.length, 0);
    console.log(`      encoded ${samples.length} samples, ${tokens} tokens in ${bench!.ms.toFixed(0)} ms`);
  });

  it('covers the 3,400 samples', () => {
    expect(samples).to.have.length(3400);
  });

  it('gives exactly one step-token position per step, in order, each holding the step token id', () => {
    const tok = qwenTokenizer();
    encoded.forEach((e, i) => {
      const n = samples[i].steps.length;
      expect(e.nSteps, samples[i].id).to.equal(n);
      expect(e.stepPositions, samples[i].id).to.have.length(n);
      expect(e.truncated).to.equal(undefined);
      let count = 0;
      for (const id of e.inputIds) if (id === tok.stepTokenId) count++;
      expect(count, samples[i].id).to.equal(n);
      for (let k = 0; k < n; k++) {
        expect(e.inputIds[e.stepPositions[k]], samples[i].id).to.equal(tok.stepTokenId);
        if (k > 0) expect(e.stepPositions[k]).to.be.greaterThan(e.stepPositions[k - 1]);
      }
      // The conversation closes after the last step: <|im_end|> then '\n'.
      expect(e.inputIds.slice(e.stepPositions[n - 1] + 1)).to.deep.equal([tok.tokenToId('<|im_end|>'), ...tok.encodeText('\n')]);
    });
  });

  it('decodes the ids between consecutive step tokens back to exactly the step text', () => {
    const tok = qwenTokenizer();
    const head = (problem: string) =>
      `<|im_start|>system\n${DEFAULT_SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n${problem}<|im_end|>\n<|im_start|>assistant\n`;
    encoded.forEach((e, i) => {
      const { steps, problem, id } = samples[i];
      // The tokenizer normalises to NFC, so that is the text it can give back.
      expect(tok.decode(e.inputIds.slice(0, e.stepPositions[0])), id).to.equal((head(problem) + steps[0]).normalize('NFC'));
      for (let k = 1; k < steps.length; k++) {
        expect(tok.decode(e.inputIds.slice(e.stepPositions[k - 1] + 1, e.stepPositions[k])), `${id} step ${k}`).to.equal(steps[k].normalize('NFC'));
      }
    });
  });
});

describe('model/encode truncation', () => {
  const tok = qwenTokenizer();
  const sample = {
    problem: 'A farmer has 17 sheep and buys 3 times as many goats. How many animals does he have?',
    steps: [
      'The farmer buys 3 x 17 = 51 goats.',
      'Together with the sheep that makes 17 + 51 = 68 animals.',
      'Checking: 51 / 3 = 17, so the number of goats is right.',
      'The answer is $\\boxed{68}$.',
    ],
  };
  const full = encodeSample(tok, sample);
  const lengthWith = (k: number) => encodeSample(tok, { problem: sample.problem, steps: sample.steps.slice(0, k) }).inputIds.length;

  it('leaves a sample within maxLength untouched', () => {
    expect(encodeSample(tok, sample, { maxLength: full.inputIds.length })).to.deep.equal(full);
  });

  it('reports how many steps fit and returns exactly the encoding of those steps', () => {
    for (let maxLength = lengthWith(1); maxLength < full.inputIds.length; maxLength += 3) {
      const e = encodeSample(tok, sample, { maxLength });
      let fits = 0;
      while (fits < sample.steps.length && lengthWith(fits + 1) <= maxLength) fits++;
      expect(e.truncated?.keptSteps, `maxLength ${maxLength}`).to.equal(fits);
      expect(e.truncated?.totalSteps).to.equal(4);
      expect(e.truncated?.fullLength).to.equal(full.inputIds.length);
      expect(e.truncated?.reason).to.match(new RegExp(`^${full.inputIds.length} tokens > maxLength ${maxLength}; the first ${fits} of 4 steps fit$`));
      expect(e.nSteps).to.equal(fits);
      expect(e.inputIds.length).to.be.at.most(maxLength);
      expect(e).to.deep.include(encodeSample(tok, { problem: sample.problem, steps: sample.steps.slice(0, fits) }));
    }
  });

  it('says when not even one step fits, with nothing encoded', () => {
    const e = encodeSample(tok, sample, { maxLength: lengthWith(1) - 1 });
    expect(e.inputIds).to.deep.equal([]);
    expect(e.stepPositions).to.deep.equal([]);
    expect(e.nSteps).to.equal(0);
    expect(e.truncated).to.include({ keptSteps: 0, totalSteps: 4 });
    expect(e.truncated?.reason).to.match(/not even the first of 4 steps fits/);
  });
});

describe('model/encode collateBatch and bucketByLength', () => {
  const items = [
    { inputIds: [5, 6, 7, 9], stepPositions: [2, 3] },
    { inputIds: [8, 9], stepPositions: [1] },
  ];

  it('right-pads with the pad id and masks the padding', () => {
    const b = collateBatch(items, { padTokenId: 0 });
    expect([b.batchSize, b.seqLen]).to.deep.equal([2, 4]);
    expect([...b.inputIds]).to.deep.equal([5, 6, 7, 9, 8, 9, 0, 0]);
    expect([...b.attentionMask]).to.deep.equal([1, 1, 1, 1, 1, 1, 0, 0]);
    expect(b.stepPositions).to.deep.equal([[2, 3], [1]]);
  });

  it('left-pads and shifts the step positions with it', () => {
    const b = collateBatch(items, { padTokenId: 1, padSide: 'left' });
    expect([...b.inputIds]).to.deep.equal([5, 6, 7, 9, 1, 1, 8, 9]);
    expect([...b.attentionMask]).to.deep.equal([1, 1, 1, 1, 0, 0, 1, 1]);
    expect(b.stepPositions).to.deep.equal([[2, 3], [3]]);
    expect(b.inputIds[b.seqLen + b.stepPositions[1][0]]).to.equal(9);
  });

  it('groups every non-empty item once, by length, within the padded-token budget', () => {
    const lengths = [7, 3, 0, 12, 3, 40, 9, 1, 7, 25, 5];
    const list = lengths.map((n) => ({ inputIds: new Array<number>(n).fill(1) }));
    const budget = 30;
    const groups = bucketByLength(list, budget);
    const flat = groups.flat();
    expect([...flat].sort((a, b) => a - b)).to.deep.equal(lengths.map((_, i) => i).filter((i) => lengths[i] > 0));
    const inOrder = flat.map((i) => lengths[i]);
    expect(inOrder).to.deep.equal([...inOrder].sort((a, b) => a - b));
    for (const g of groups) {
      const padded = g.length * Math.max(...g.map((i) => lengths[i]));
      if (g.length > 1) expect(padded).to.be.at.most(budget);
    }
    expect(groups.find((g) => g.includes(5))).to.deep.equal([5]);
    expect(flat.indexOf(1)).to.be.lessThan(flat.indexOf(4));
    expect(bucketByLength(list, 1000, { maxBatchSize: 2 }).every((g) => g.length <= 2)).to.equal(true);
    expect(() => bucketByLength(list, 0)).to.throw(/maxTokensPerBatch/);
  });
});
