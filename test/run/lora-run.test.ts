import { expect } from 'chai';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { readStageMarker } from '../../src/run/context.js';
import { runRecipe } from '../../src/run/run.js';
import type { TrainSummary } from '../../src/run/train-stage.js';

/**
 * `prmkit run` with model.lora over a pretrained checkpoint (the golden GQA fixture and its
 * tokenizer): the train stage writes PEFT adapter checkpoints over the recipe's model.path, and the
 * eval stage scores ProcessBench with the final adapter loaded over that base.
 */
const BASE = fileURLToPath(new URL('../fixtures/model/qwen2-gqa', import.meta.url));

describe('run: a LoRA recipe end to end', function () {
  this.timeout(300_000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'prmkit-lora-run-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('trains an adapter, publishes it as final, and evaluates with it', async () => {
    const records = Array.from({ length: 8 }, (_, i) => ({
      id: `gsm8k-${i}`,
      problem: `What is ${i} + ${i + 1}?`,
      steps: [`${i} + ${i + 1} = ${2 * i + 1}.`, `The answer is ${2 * i + (i % 3 === 0 ? 2 : 1)}.`],
      label: i % 3 === 0 ? 1 : -1,
      final_answer_correct: i % 3 !== 0,
    }));
    writeFileSync(join(dir, 'gsm8k.json'), JSON.stringify(records));
    const recipe = {
      name: 'lora-run',
      backend: 'tensorflow',
      data: { source: 'file', path: 'gsm8k.json' },
      labels: { method: 'given' },
      tokenizer: { kind: 'file', path: BASE, step_token: '<extra_0>' },
      model: { init: 'pretrained', path: BASE, lora: { r: 4, alpha: 8, dropout: 0.1, target_modules: ['q_proj', 'v_proj', 'down_proj'] } },
      train: { dev_fraction: 0, epochs: 2, batch_size: 4, lr: 1e-3, recompute: true, eval_every: 0, save_every: 0, final: 'last', max_length: 128 },
      eval: { processbench: { path: 'gsm8k.json' } },
    };
    writeFileSync(join(dir, 'lora.yaml'), YAML.stringify(recipe));
    const out = join(dir, 'run');
    await runRecipe({ recipePath: join(dir, 'lora.yaml'), out, log: () => {}, progress: false });
    const train = readStageMarker<TrainSummary>(out, 'train')!.summary;
    expect(train.steps).to.equal(4);
    const final = join(out, 'checkpoints', 'final');
    const files = readdirSync(final);
    expect(files).to.include.members(['adapter_config.json', 'adapter_model.safetensors', 'tokenizer.json']);
    expect(files.some((f) => f.startsWith('model.safetensors'))).to.equal(false);
    expect(readStageMarker(out, 'eval')).to.not.equal(null);
    expect(existsSync(join(out, 'eval'))).to.equal(true);
  });
});
