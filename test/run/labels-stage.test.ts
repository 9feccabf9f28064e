import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { ConfigError, parseHfConfig, toHfConfig } from '../../src/model/config.js';
import { ModelSchema, TokenizerSchema } from '../../src/recipes/schema.js';
import { readStageMarker } from '../../src/run/context.js';
import type { LabelsSummary } from '../../src/run/labels-stage.js';
import { buildTokenizer, scratchConfig } from '../../src/run/model-setup.js';
import { runRecipe } from '../../src/run/run.js';

describe('run: the labels stage per method', function () {
  this.timeout(120_000);
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'prmkit-labels-stage-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('judge: labels through the sim judge only, hands its file to training, and records only judge options', async () => {
    const recipe = join(dir, 'judge.yaml');
    // The MC options are the base recipe's; method judge leaves them out.
    writeFileSync(recipe, YAML.stringify({ name: 'judge', seed: 2, data: { source: 'sim', problems: 16 }, labels: { method: 'judge', rollouts: 4, mc_labels: 'soft', concurrency: 4 } }));
    const out = join(dir, 'run');
    await runRecipe({ recipePath: recipe, out, log: () => {}, progress: false });
    const labels = readStageMarker<LabelsSummary>(out, 'labels')!.summary;
    expect(labels.method).to.equal('judge');
    expect(Object.keys(labels.sources)).to.deep.equal(['judge']);
    expect(labels.train_file).to.equal(labels.sources.judge.file);
    expect(labels.sources.judge.input).to.equal(16);
    expect(labels.sources.judge.requests).to.be.greaterThan(0);
    const resolved = YAML.parse(readFileSync(join(out, 'recipe.resolved.yaml'), 'utf8')) as { labels: Record<string, unknown> };
    expect(Object.keys(resolved.labels).sort()).to.deep.equal(['concurrency', 'endpoint', 'judge_model', 'method']);
  });
});

describe('run: scratch model configs', () => {
  async function tokenizer() {
    const cfg = TokenizerSchema.parse({});
    return (await buildTokenizer(cfg, () => ['one plus two is three', 'two times two is four'], '.')).tokenizer;
  }

  it('are checked by the config.json parser, naming model.config and the key', async () => {
    const tok = await tokenizer();
    const config = (c: Record<string, unknown>) => ModelSchema.parse({ config: c }).config;
    const error = (c: Record<string, unknown>) => {
      try {
        scratchConfig(config(c), tok);
      } catch (e) {
        expect(e).to.be.instanceOf(ConfigError);
        return (e as ConfigError).message;
      }
      throw new Error('expected a ConfigError');
    };
    expect(error({ hidden_size: 66, num_attention_heads: 4 })).to.match(/^model\.config: key "head_dim": missing, and hidden_size 66 is not divisible by num_attention_heads 4/);
    expect(error({ num_attention_heads: 4, num_key_value_heads: 3 })).to.match(/^model\.config: key "num_key_value_heads": 3 does not divide num_attention_heads 4/);
    expect(error({ hidden_size: 24, num_attention_heads: 8, num_key_value_heads: 8 })).to.match(/^model\.config: key "head_dim": must be even/);
  });

  it('describe the model a checkpoint of it would describe', async () => {
    const tok = await tokenizer();
    const cfg = scratchConfig(ModelSchema.parse({ config: { hidden_size: 32, initializer_range: 0.1, rope_theta: 5000 } }).config, tok);
    expect(cfg).to.include({ vocabSize: tok.vocabSize, hiddenSize: 32, headDim: 8, ropeTheta: 5000, initializerRange: 0.1, numLabels: 2, stepTokenId: tok.stepTokenId, padTokenId: tok.padTokenId });
    const reread = parseHfConfig(JSON.parse(JSON.stringify(toHfConfig(cfg))), 'config.json');
    expect({ ...reread, architecture: undefined }).to.deep.equal({ ...cfg, architecture: undefined });
  });
});
