import { expect } from 'chai';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { deepMerge, loadRecipe, recipeToYaml, resolveRecipe, RecipeError } from '../../src/recipes/load.js';
import { parseOverride } from '../../src/recipes/overrides.js';

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
      expect(msg).to.match(/labels: unknown key "rollout"/);
      expect(msg).to.match(/\(top level\): unknown key "dataa"/);
    }
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

  it('the resolved YAML round-trips to the same recipe', () => {
    const r = resolveRecipe({ name: 'rt', data: { source: 'sim', problems: 10 }, train: { epochs: 2 } });
    expect(resolveRecipe(YAML.parse(recipeToYaml(r)) as Record<string, unknown>)).to.deep.equal(r);
  });
});
