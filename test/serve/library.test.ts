import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import * as prmkit from '../../src/index.js';
import { problems, tinyCheckpoint } from '../support/tiny-prm.js';

describe('serve: prmkit as a library', function () {
  this.timeout(60_000);
  let dir: string;

  before(async () => {
    await prmkit.selectBackend('wasm', { log: () => {} });
    dir = await tinyCheckpoint();
  });

  it('exports the public API from src/index.ts, and package.json points the package there', () => {
    const functions = [
      'loadPrm', 'loadScoringModel', 'savePrmCheckpoint', 'scoreSteps', 'scoreSamples', 'gradeAnswer', 'extractAnswer', 'isEquivalent',
      'evaluateProcessBench', 'bonMetrics', 'readStepSamples', 'readAllStepSamples', 'encodeSample', 'collateBatch', 'selectBackend',
      'startRewardServer', 'PrmModel', 'PrmTokenizer', 'initPrm', 'parseHfConfig',
    ] as const;
    for (const name of functions) expect(prmkit[name], name).to.be.a('function');
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { exports: Record<string, { import: string; types: string }> };
    expect(pkg.exports['.']).to.deep.equal({ types: './dist/src/index.d.ts', import: './dist/src/index.js' });
  });

  it('scoreSteps gives scoreSamples\' scores, from a directory or a loaded model, without leaking tensors', async () => {
    const loaded = await prmkit.loadScoringModel(dir);
    try {
      const reference = (await prmkit.scoreSamples(loaded.model, loaded.tokenizer, problems)).stepScores;
      const start = tf.memory().numTensors;
      const fromModel = await prmkit.scoreSteps(loaded, problems);
      expect(tf.memory().numTensors).to.equal(start);
      expect(fromModel).to.deep.equal(reference);
      const fromDir = await prmkit.scoreSteps(dir, problems, { backend: 'wasm' });
      expect(tf.memory().numTensors).to.equal(start);
      fromDir.forEach((scores, i) => scores.forEach((s, j) => expect(s).to.be.closeTo(reference[i]![j], 1e-6)));
      expect(fromDir.map((s) => s.length)).to.deep.equal(problems.map((p) => p.steps.length));
    } finally {
      loaded.model.dispose();
    }
  });

  it('scoreSteps refuses a sample longer than the context instead of cutting it', async () => {
    const loaded = await prmkit.loadScoringModel(dir);
    try {
      let err: unknown;
      try {
        await prmkit.scoreSteps(loaded, [problems[0], problems[1]], { maxLength: 40 });
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(prmkit.SampleError);
      expect((err as prmkit.SampleError).message).to.match(/^sample 0: more tokens than maxLength 40 \(and 1 more samples\)$/);
    } finally {
      loaded.model.dispose();
    }
  });

  it('grades answers through the same entry', () => {
    expect(prmkit.gradeAnswer('so the answer is \\boxed{\\frac{1}{2}}', '0.5').correct).to.equal(true);
    expect(prmkit.extractAnswer('The answer is \\boxed{42}.')).to.equal('42');
    expect(prmkit.isEquivalent('2/4', '1/2')).to.equal(true);
  });
});
