import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { deepMerge, loadRecipe, recipeToYaml, resolveRecipe, RecipeError } from '../../src/recipes/load.js';
import { parseOverride } from '../../src/recipes/overrides.js';
import type { ConsensusLabelsConfig } from '../../src/recipes/schema.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'prmkit-recipe-'));
}

describe('recipes/load', () => {
  it('fills defaults and keeps absent stages absent', () => {
    const r = resolveRecipe({ name: 'x', train: { lr: 0.01 } });
    expect(r.train?.lr).to.equal(0.01);
    expect(r.train?.loss).to.deep.equal({ kind: 'ce', class_weights: [1, 1] });
    expect(r.train?.freeze.head_only).to.equal(false);
    expect(r.data).to.equal(undefined);
    expect(r.seed).to.equal(0);
  });

  it('names the key path and what was expected', () => {
    const bad = () => resolveRecipe({ train: { lr: 'fast', loss: { kind: 'hinge' } }, labels: { method: 'mc', rollout: 4 }, dataa: {} }, [], 'r.yaml');
    expect(bad).to.throw(RecipeError);
    try {
      bad();
    } catch (err) {
      const msg = (err as Error).message;
      expect(msg).to.contain('r.yaml: invalid recipe');
      expect(msg).to.match(/train\.lr: expected number, received string/);
      expect(msg).to.match(/train\.loss\.kind: Invalid option: expected one of "ce"\|"bce"\|"mse"/);
      expect(msg).to.match(/labels: unknown key "rollout" \(did you mean rollouts\?\)/);
      expect(msg).to.match(/\(top level\): unknown key "dataa" \(did you mean data\?\)/);
    }
    // The suggestion comes from the schema at that place; a key far from every valid one gets none.
    expect(() => resolveRecipe({ train: { gradient_accumulation: 2 } })).to.throw(/train: unknown key "gradient_accumulation" \(did you mean grad_accumulation\?\)/);
    expect(() => resolveRecipe({ train: { eval: { sim: 1 } } })).to.throw(/train: unknown key "eval"$/m);
    expect(() => resolveRecipe({ eval: { processbench: { path: 'x', threshhold: 'dev' } } })).to.throw(/did you mean threshold\?/);
    expect(() => resolveRecipe({ data: { source: 'file' } })).to.throw(/data\.path: required when source is file/);
  });

  it('extends: deep merge with relative paths, lists replaced, null removes a stage', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'base'));
    writeFileSync(join(dir, 'base', 'root.yaml'), 'name: root\nseed: 3\ntrain:\n  lr: 0.002\n  epochs: 4\n  no_decay: [a, b]\neval:\n  sim_bon: {problems: 10}\n');
    writeFileSync(join(dir, 'child.yaml'), 'extends: base/root.yaml\nname: child\ntrain:\n  epochs: 2\n  no_decay: [c]\neval: null\n');
    const { recipe, files } = loadRecipe(join(dir, 'child.yaml'));
    expect(recipe.name).to.equal('child');
    expect(recipe.seed).to.equal(3);
    expect(recipe.train?.lr).to.equal(0.002);
    expect(recipe.train?.epochs).to.equal(2);
    expect(recipe.train?.no_decay).to.deep.equal(['c']);
    expect(recipe.eval).to.equal(undefined);
    expect(files).to.deep.equal([join(dir, 'child.yaml'), join(dir, 'base', 'root.yaml')]);
    expect(deepMerge({ a: { b: 1, c: 2 } }, { a: { c: 3 } })).to.deep.equal({ a: { b: 1, c: 3 } });
  });

  it('extends: relative paths in a parent resolve against the parent, from any folder', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'shared'));
    mkdirSync(join(dir, 'deep', 'er'), { recursive: true });
    writeFileSync(
      join(dir, 'shared', 'base.yaml'),
      'name: base\ntokenizer: {kind: file, path: ../models/lm}\nmodel: {init: pretrained, path: ../models/lm}\n' +
        'eval:\n  bon: {candidates: [../bon/a.jsonl, /abs/b.jsonl]}\n',
    );
    writeFileSync(join(dir, 'deep', 'er', 'child.yaml'), 'extends: ../../shared/base.yaml\nname: child\ndata: {source: file, path: local.jsonl}\n');
    const { recipe, baseDir } = loadRecipe(join(dir, 'deep', 'er', 'child.yaml'));
    const at = (p: string) => resolve(baseDir, p);
    expect(at(recipe.model!.path!)).to.equal(join(dir, 'models', 'lm'));
    expect(at(recipe.tokenizer!.path!)).to.equal(join(dir, 'models', 'lm'));
    expect(recipe.eval!.bon!.candidates.map(at)).to.deep.equal([join(dir, 'bon', 'a.jsonl'), '/abs/b.jsonl']);
    // The child's own paths stay as written (relative to its folder).
    expect(recipe.data!.path).to.equal('local.jsonl');
  });

  it('detects extends cycles and names the chain', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.yaml'), 'extends: b.yaml\n');
    writeFileSync(join(dir, 'b.yaml'), 'extends: ./a.yaml\n');
    expect(() => loadRecipe(join(dir, 'a.yaml'))).to.throw(/extends cycle: .*a\.yaml -> .*b\.yaml -> .*a\.yaml/);
  });

  it('reports YAML syntax errors with file:line', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'bad.yaml'), 'name: x\ntrain:\n  lr: [1, 2\n');
    expect(() => loadRecipe(join(dir, 'bad.yaml'))).to.throw(/bad\.yaml:\d+:\d+: YAML syntax error/);
  });

  it('--set overrides are typed by the schema', () => {
    const r = resolveRecipe({ train: {} }, [
      'train.lr=3e-4',
      'train.freeze.head_only=true',
      'train.no_decay=bias,norm',
      'train.loss.class_weights=2,1',
      'eval.processbench.path=/x',
      'eval.processbench.threshold=auto',
      'data.source=sim',
      'name=123',
    ]);
    expect(r.train?.lr).to.equal(3e-4);
    expect(r.train?.freeze.head_only).to.equal(true);
    expect(r.train?.no_decay).to.deep.equal(['bias', 'norm']);
    expect(r.train?.loss.class_weights).to.deep.equal([2, 1]);
    expect(r.eval?.processbench?.threshold).to.equal('auto');
    expect(resolveRecipe({}, ['eval.processbench.path=/x', 'eval.processbench.threshold=0.3']).eval?.processbench?.threshold).to.equal(0.3);
    expect(r.name).to.equal('123');
    expect(() => resolveRecipe({}, ['train.lr=fast'])).to.throw(/--set train\.lr=fast: expected a number/);
    expect(() => resolveRecipe({}, ['train.lrr=1'])).to.throw(/unknown key train\.lrr \(keys under train: dev_fraction, epochs, max_steps, lr/);
    expect(() => parseOverride('novalue')).to.throw(/expected key\.path=value/);
    expect(parseOverride('a.b=c=d')).to.deep.equal({ path: ['a', 'b'], value: 'c=d' });
  });

  it('labels: each method owns its options, and the resolved recipe shows only those', () => {
    const all = { endpoint: 'sim', rollouts: 4, threshold: 0.25, mc_labels: 'soft', policy_model: 'p', judge_model: 'j', concurrency: 2 };
    expect(resolveRecipe({ labels: { method: 'truth', ...all } }).labels).to.deep.equal({ method: 'truth' });
    const judge = resolveRecipe({ labels: { method: 'judge', ...all } }).labels;
    expect(judge).to.deep.equal({ method: 'judge', endpoint: 'sim', concurrency: 2, judge_model: 'j' });
    const consensus = resolveRecipe({ labels: { method: 'consensus', ...all } });
    expect(consensus.labels).to.include({ method: 'consensus', rollouts: 4, threshold: 0.25, mc_labels: 'soft', policy_model: 'p', judge_model: 'j' });
    const mc = recipeToYaml(resolveRecipe({ labels: { method: 'mc' } }));
    expect(mc).to.match(/rollouts:/).and.not.match(/judge_model/);
    expect(recipeToYaml(resolveRecipe({ labels: { method: 'given', ...all } }))).to.not.match(/rollouts|policy_model|endpoint/);
    expect(resolveRecipe(YAML.parse(recipeToYaml(consensus)) as Record<string, unknown>)).to.deep.equal(consensus);
    // A key no method has is still a typo, whatever the method.
    expect(() => resolveRecipe({ labels: { method: 'truth', rollout: 4 } })).to.throw(/labels: unknown key "rollout"/);
    expect(() => resolveRecipe({ labels: { method: 'vote' } })).to.throw(/labels\.method: Invalid discriminator value/);
    expect(() => resolveRecipe({ labels: { method: 'mc', rollouts: 0 } })).to.throw(/labels\.rollouts: Too small/);
  });

  it('--set reaches every labels option and can switch the method', () => {
    const base = { labels: { method: 'consensus', rollouts: 4 } };
    expect(resolveRecipe(base, ['labels.method=truth']).labels).to.deep.equal({ method: 'truth' });
    expect(resolveRecipe(base, ['labels.method=mc', 'labels.rollouts=3']).labels).to.include({ method: 'mc', rollouts: 3 });
    expect(resolveRecipe(base, ['labels.judge_endpoint=http://127.0.0.1:9/v1']).labels).to.include({ judge_endpoint: 'http://127.0.0.1:9/v1' });
    expect(() => resolveRecipe(base, ['labels.rollouts=many'])).to.throw(/--set labels\.rollouts=many: expected a number/);
    expect(() => resolveRecipe(base, ['labels.rolouts=3'])).to.throw(/unknown key labels\.rolouts \(keys under labels: .*rollouts/);
  });

  it('the MC and client defaults of a recipe are the ones `prmkit label mc` shows', () => {
    const labels = resolveRecipe({ labels: { method: 'consensus' } }).labels as ConsensusLabelsConfig;
    const help = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', 'label', 'mc', '--help'], { cwd: repoRoot, encoding: 'utf8' });
    expect(help.status, help.stderr).to.equal(0);
    const shown = (flag: string) => new RegExp(`--${flag} [^\\n]*\\n?[^-]*\\[default: "?([^"\\]]+)"?\\]`).exec(help.stdout)?.[1];
    expect(shown('rollouts')).to.equal(String(labels.rollouts));
    expect(shown('threshold')).to.equal(String(labels.threshold));
    expect(shown('search')).to.equal(labels.search);
    expect(shown('labels')).to.equal(labels.mc_labels);
    expect(shown('concurrency')).to.equal(String(labels.concurrency));
  });

  it('the quickstart and the paper ablations extend one shared sim setting', () => {
    const base = join(repoRoot, 'recipes', 'sim-base.yaml');
    const quickstart = loadRecipe(join(repoRoot, 'recipes', 'quickstart.yaml'));
    const paper = loadRecipe(join(repoRoot, 'recipes', 'paper', 'base.yaml'));
    expect(quickstart.files).to.include(base);
    expect(paper.files).to.include(base);
    expect(quickstart.recipe.data?.source).to.equal('sim');
    expect(quickstart.recipe.labels?.method).to.equal('consensus');
    // Both start from the shipped sim base LM, named once in sim-base.yaml, from their own folders.
    const shipped = join(repoRoot, 'checkpoints', 'sim-base-lm');
    for (const loaded of [quickstart, paper]) {
      expect(loaded.recipe.model?.init).to.equal('pretrained');
      expect(resolve(loaded.baseDir, loaded.recipe.model!.path!)).to.equal(shipped);
      expect(resolve(loaded.baseDir, loaded.recipe.tokenizer!.path!)).to.equal(shipped);
      expect(loaded.recipe.train?.lm_loss_weight).to.be.above(0);
    }
  });

  it('the resolved YAML round-trips to the same recipe', () => {
    const r = resolveRecipe({ name: 'rt', data: { source: 'sim', problems: 10 }, train: { epochs: 2 } });
    expect(resolveRecipe(YAML.parse(recipeToYaml(r)) as Record<string, unknown>)).to.deep.equal(r);
  });
});
