import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { selectBackend } from '../../src/backend/backend.js';
import { PrmTokenizer } from '../../src/model/tokenizer.js';
import { collateBatch, encodeSample } from '../../src/model/encode.js';
import { loadScoringModel, scoreByPrefixes, scoreSamples } from '../../src/eval/score.js';

/**
 * The golden checkpoints of scripts/fixtures/make_golden_qwen2.py: Python transformers rendered and
 * tokenized the samples and computed the step scores; our encode and batched scoring must agree.
 */
interface Reference {
  samples: { problem: string; steps: string[]; messages: { role: string; content: string }[]; text: string; input_ids: number[]; step_positions: number[]; step_scores: number[] }[];
  batches: { padding: 'left' | 'right'; input_ids: number[][]; attention_mask: number[][]; step_positions: number[][] }[];
}

for (const name of ['qwen2-gqa', 'qwen2-tied']) {
  const dir = fileURLToPath(new URL(`../fixtures/model/${name}`, import.meta.url));
  const ref = JSON.parse(readFileSync(`${dir}/reference.json`, 'utf8')) as Reference;

  describe(`eval/score against the Python golden checkpoint ${name}`, () => {
    it('encodes each sample to the ids and step positions transformers produced', async () => {
      const tok = await PrmTokenizer.fromDir(dir);
      expect(tok.addedStepToken).to.equal(false);
      for (const s of ref.samples) {
        const system = s.messages[0].content;
        expect(tok.renderChat(system, s.problem, s.messages[2].content)).to.equal(s.text);
        const e = encodeSample(tok, s, { systemPrompt: system });
        expect(e.inputIds).to.deep.equal(s.input_ids);
        expect(e.stepPositions).to.deep.equal(s.step_positions);
      }
    });

    it('collates the batches exactly as the reference (left and right padding)', async () => {
      const tok = await PrmTokenizer.fromDir(dir);
      const encoded = ref.samples.map((s) => encodeSample(tok, s, { systemPrompt: s.messages[0].content }));
      for (const b of ref.batches) {
        const c = collateBatch(encoded, { padSide: b.padding, padTokenId: tok.padTokenId });
        expect([...c.inputIds]).to.deep.equal(b.input_ids.flat());
        expect([...c.attentionMask]).to.deep.equal(b.attention_mask.flat());
        expect(c.stepPositions).to.deep.equal(b.step_positions);
      }
    });

    it('scores every step in one batched pass to the reference step scores (cpu, 1e-4)', async () => {
      await selectBackend('cpu', { log: () => {} });
      const { model, tokenizer } = await loadScoringModel(dir);
      try {
        const system = ref.samples[0].messages[0].content;
        const once = await scoreSamples(model, tokenizer, ref.samples, { systemPrompt: system });
        const prefixes = await scoreByPrefixes(model, tokenizer, ref.samples, { systemPrompt: system });
        ref.samples.forEach((s, i) => {
          s.step_scores.forEach((want, k) => {
            expect(once.stepScores[i]![k], `sample ${i} step ${k}`).to.be.closeTo(want, 1e-4);
            expect(prefixes.stepScores[i]![k], `prefix ${i} step ${k}`).to.be.closeTo(want, 1e-4);
          });
        });
      } finally {
        model.dispose();
      }
    });
  });
}
