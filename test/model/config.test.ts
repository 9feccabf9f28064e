import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { ConfigError, parseHfConfig, toHfConfig, type Qwen2Config } from '../../src/model/config.js';

const fixtures = new URL('../fixtures/model/', import.meta.url);
const readJson = (rel: string): Record<string, unknown> => JSON.parse(readFileSync(new URL(rel, fixtures), 'utf8'));

/** A transformers 4.x style Qwen2 config (top-level rope_theta, no head_dim). */
function legacyConfig(): Record<string, unknown> {
  return {
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    vocab_size: 151936,
    hidden_size: 1536,
    intermediate_size: 8960,
    num_hidden_layers: 28,
    num_attention_heads: 12,
    num_key_value_heads: 2,
    max_position_embeddings: 4096,
    rms_norm_eps: 1e-6,
    rope_theta: 10000.0,
    rope_scaling: null,
    tie_word_embeddings: true,
    use_sliding_window: false,
    sliding_window: 4096,
    hidden_act: 'silu',
    bos_token_id: 151643,
    eos_token_id: 151645,
  };
}

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('model config', () => {
  it('parses a prmkit PRM config.json', () => {
    const cfg = parseHfConfig(readJson('qwen2-gqa/config.json'), 'qwen2-gqa/config.json');
    expect(cfg).to.include({
      vocabSize: 300,
      hiddenSize: 64,
      numHiddenLayers: 2,
      numAttentionHeads: 4,
      numKeyValueHeads: 2,
      headDim: 16,
      intermediateSize: 128,
      ropeTheta: 10000,
      rmsNormEps: 1e-6,
      tieWordEmbeddings: false,
      maxPositionEmbeddings: 256,
      numLabels: 2,
      stepToken: '<extra_0>',
      architecture: 'Qwen2ForProcessRewardModel',
    });
    expect(cfg.stepTokenId).to.be.a('number');
  });

  it('parses the causal-LM config that transformers 5 writes (rope_parameters, layer_types)', () => {
    const cfg = parseHfConfig(readJson('qwen2-tied/hf_causal_config.json'), 'hf_causal_config.json');
    expect(cfg).to.include({ architecture: 'Qwen2ForCausalLM', numAttentionHeads: 8, numKeyValueHeads: 8, headDim: 16, tieWordEmbeddings: true, ropeTheta: 10000, numLabels: 2 });
    expect(cfg.stepTokenId).to.equal(undefined);
  });

  it('parses a transformers 4.x config; head_dim defaults to hidden / heads', () => {
    const cfg = parseHfConfig(legacyConfig(), 'legacy.json');
    expect(cfg).to.include({ headDim: 128, numKeyValueHeads: 2, tieWordEmbeddings: true, eosTokenId: 151645, bosTokenId: 151643 });
    const noKv = legacyConfig();
    delete noKv.num_key_value_heads;
    expect(parseHfConfig(noKv, 'x').numKeyValueHeads).to.equal(12);
  });

  it('round-trips through toHfConfig', () => {
    const cfg: Qwen2Config = { ...parseHfConfig(legacyConfig(), 'legacy.json'), stepToken: '<extra_0>', stepTokenId: 151651, padTokenId: 151643 };
    const hf = toHfConfig(cfg);
    expect(hf).to.include({ model_type: 'qwen2', num_labels: 2, torch_dtype: 'float32', step_token: '<extra_0>', step_token_id: 151651 });
    expect(hf.architectures).to.deep.equal(['Qwen2ForProcessRewardModel']);
    const back = parseHfConfig(JSON.parse(JSON.stringify(hf)), 'saved.json');
    expect({ ...back, architecture: undefined, initializerRange: undefined }).to.deep.equal({ ...cfg, architecture: undefined, initializerRange: undefined });
  });

  it('names the file and the key in errors', () => {
    const missing = legacyConfig();
    delete missing.hidden_size;
    const e1 = errorOf(() => parseHfConfig(missing, '/ckpt/config.json'));
    expect(e1.message).to.equal('/ckpt/config.json: key "hidden_size": missing (required)');

    const cases: Array<[Record<string, unknown>, string, RegExp]> = [
      [{ hidden_size: '64' }, 'hidden_size', /positive integer/],
      [{ model_type: 'llama' }, 'model_type', /qwen2/],
      [{ architectures: ['LlamaForCausalLM'] }, 'architectures', /unsupported architecture/],
      [{ num_key_value_heads: 5 }, 'num_key_value_heads', /does not divide/],
      [{ hidden_act: 'gelu' }, 'hidden_act', /silu/],
      [{ use_sliding_window: true }, 'use_sliding_window', /not supported/],
      [{ rope_scaling: { type: 'yarn', factor: 4 } }, 'rope_scaling', /default/],
      [{ rope_parameters: { rope_type: 'linear', rope_theta: 1e6 } }, 'rope_parameters.rope_type', /default/],
      [{ rope_theta: -1 }, 'rope_theta', /positive number/],
      [{ tie_word_embeddings: 'yes' }, 'tie_word_embeddings', /boolean/],
      [{ step_token_id: 999999 }, 'step_token_id', /outside the vocabulary/],
      [{ head_dim: 7 }, 'head_dim', /even/],
    ];
    for (const [patch, key, reason] of cases) {
      const e = errorOf(() => parseHfConfig({ ...legacyConfig(), ...patch }, 'c.json'));
      expect(e.key, JSON.stringify(patch)).to.equal(key);
      expect(e.message).to.match(reason).and.to.match(/^c\.json: key "/);
    }
    expect(errorOf(() => parseHfConfig([1, 2], 'arr.json')).message).to.equal('arr.json: expected a JSON object');
  });

  it('refuses absurd sizes (max_position_embeddings is a limit on length, not a size to trust)', () => {
    const cases: Array<[string, number]> = [
      ['max_position_embeddings', 1e12],
      ['vocab_size', 2 ** 30],
      ['hidden_size', 1 << 20],
      ['num_hidden_layers', 100_000],
    ];
    for (const [key, value] of cases) {
      const e = errorOf(() => parseHfConfig({ ...legacyConfig(), [key]: value }, '/ckpt/config.json'));
      expect(e.key).to.equal(key);
      expect(e.message).to.match(new RegExp(`^/ckpt/config\\.json: key "${key}": ${value} is beyond any model this code can run \\(at most \\d+\\)`));
    }
    // Real long-context configs stay accepted (Qwen2.5-7B-Instruct-1M: 1,010,000 positions).
    expect(parseHfConfig({ ...legacyConfig(), max_position_embeddings: 1_010_000 }, 'c.json').maxPositionEmbeddings).to.equal(1_010_000);
  });
});
