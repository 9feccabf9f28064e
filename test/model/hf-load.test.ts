import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { selectBackend } from '../../src/backend/backend.js';
import { loadPrm, savePrmCheckpoint } from '../../src/model/checkpoint.js';
import { encodeSample, DEFAULT_SYSTEM_PROMPT } from '../../src/model/encode.js';
import { loadScoringModel, scoreSamples } from '../../src/eval/score.js';
import { problems } from '../support/tiny-prm.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const GQA = fileURLToPath(new URL('../fixtures/model/qwen2-gqa', import.meta.url));

function pythonWithTransformers(): boolean {
  return spawnSync('python3', ['-c', 'import torch, transformers, safetensors'], { stdio: 'ignore' }).status === 0;
}

describe('model: a saved PRM loads in transformers as a PRM (AutoModel, trust_remote_code)', function () {
  this.timeout(180_000);
  let dir: string;
  before(async function () {
    if (!pythonWithTransformers()) {
      console.warn('    skipped: python3 with torch, transformers and safetensors is not available');
      this.skip();
    }
    await selectBackend('cpu', { log: () => {} });
    dir = mkdtempSync(join(tmpdir(), 'prmkit-hf-load-'));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("config.json carries auto_map and the modeling file; transformers' step scores equal prmkit's within 1e-4", async () => {
    // A small Qwen2 PRM (GQA, BPE tokenizer) saved the way training saves every checkpoint.
    const source = await loadPrm(GQA);
    const out = join(dir, 'prm');
    try {
      await savePrmCheckpoint(source.model, out, source.files);
    } finally {
      source.model.dispose();
    }
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config.architectures).to.deep.equal(['Qwen2ForProcessRewardModel']);
    expect(config.auto_map).to.deep.equal({ AutoModel: 'modeling_prmkit_prm.Qwen2ForProcessRewardModel' });

    const { model, tokenizer } = await loadScoringModel(out);
    let expected: number[][];
    const ids: number[][] = [];
    const texts: string[] = [];
    try {
      expected = (await scoreSamples(model, tokenizer, problems)).stepScores as number[][];
      for (const p of problems) {
        ids.push(encodeSample(tokenizer, p).inputIds);
        texts.push(tokenizer.renderChat(DEFAULT_SYSTEM_PROMPT, p.problem, p.steps.map((s) => s + tokenizer.stepToken).join('')));
      }
    } finally {
      model.dispose();
    }
    const idsFile = join(dir, 'ids.json');
    writeFileSync(idsFile, JSON.stringify({ ids, texts }));
    const r = spawnSync('python3', ['scripts/reference/hf_prm_scores.py', out, idsFile], { cwd: repoRoot, encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    const got = JSON.parse(r.stdout) as { class: string; missing: string[]; unexpected: string[]; single: number[][]; batched: number[][]; tokenizer_ids: number[][] };
    expect(got.class).to.equal('Qwen2ForProcessRewardModel');
    expect(got.missing, 'weights transformers did not find').to.deep.equal([]);
    expect(got.unexpected, 'weights transformers did not use').to.deep.equal([]);
    expect(got.tokenizer_ids).to.deep.equal(ids);
    let worst = 0;
    for (const run of [got.single, got.batched]) {
      expect(run.map((s) => s.length)).to.deep.equal(expected.map((s) => s.length));
      run.forEach((row, i) => row.forEach((x, k) => (worst = Math.max(worst, Math.abs(x - expected[i][k])))));
    }
    expect(worst).to.be.below(1e-4);
  });
});
