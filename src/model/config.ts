/**
 * The model configuration of a Qwen2-family PRM, read from and written to a Hugging Face
 * `config.json`. Reads both the transformers 4.x layout (top-level `rope_theta`) and the 5.x
 * layout (`rope_parameters`), for causal-LM checkpoints (Qwen2ForCausalLM, Qwen2Model) and PRM
 * checkpoints (Qwen2ForProcessRewardModel).
 */

import { HF_AUTO_MAP } from './hf-modeling.js';

export interface Qwen2Config {
  vocabSize: number;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  intermediateSize: number;
  ropeTheta: number;
  rmsNormEps: number;
  tieWordEmbeddings: boolean;
  maxPositionEmbeddings: number;
  numLabels: number;
  stepToken?: string;
  stepTokenId?: number;
  padTokenId?: number;
  bosTokenId?: number;
  eosTokenId?: number;
  /** Std of the normal initialiser for new weights (HF `initializer_range`, default 0.02). */
  initializerRange?: number;
  /** `architectures[0]` of the source config; decides whether a missing PRM head is an error. */
  architecture?: string;
}

export const PRM_ARCHITECTURE = 'Qwen2ForProcessRewardModel';

/**
 * Upper bounds of the sizes in a config.json, far above any real Qwen2 model (Qwen2.5-1M has a
 * context of 1,010,000; Qwen2.5-72B a hidden size of 8192). A value past them comes from a
 * damaged or hostile file: it is refused with the file and key instead of being trusted.
 * max_position_embeddings is only ever a limit on sequence length (nothing is allocated by it),
 * but an absurd one would let a single long input grow attention memory without bound.
 */
export const SIZE_LIMITS: Readonly<Record<string, number>> = {
  max_position_embeddings: 1 << 22,
  vocab_size: 1 << 24,
  hidden_size: 1 << 16,
  intermediate_size: 1 << 20,
  num_hidden_layers: 1024,
  num_attention_heads: 1024,
  num_key_value_heads: 1024,
  head_dim: 4096,
};
const KNOWN_ARCHITECTURES = new Set([PRM_ARCHITECTURE, 'Qwen2ForCausalLM', 'Qwen2Model', 'Qwen2ForTokenClassification']);

/** A config.json that cannot describe a model we can run; the message names the file and key. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly source: string,
    readonly key: string | undefined,
    readonly reason: string,
  ) {
    super(`${source}: ${key ? `key "${key}": ` : ''}${reason}`);
  }
}

export function parseHfConfig(json: unknown, source: string): Qwen2Config {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new ConfigError(source, undefined, 'expected a JSON object');
  }
  const raw = json as Record<string, unknown>;
  const fail = (key: string, reason: string): never => {
    throw new ConfigError(source, key, reason);
  };
  const positiveInt = (key: string, fallback?: number): number => {
    const v = raw[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      return fail(key, 'missing (required)');
    }
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) return fail(key, `expected a positive integer, got ${JSON.stringify(v)}`);
    const max = SIZE_LIMITS[key];
    if (max !== undefined && v > max) return fail(key, `${v} is beyond any model this code can run (at most ${max}); the file is damaged or not a Qwen2 config`);
    return v;
  };
  const positiveNumber = (key: string, value: unknown, fallback?: number): number => {
    if (value === undefined || value === null) {
      if (fallback !== undefined) return fallback;
      return fail(key, 'missing (required)');
    }
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) return fail(key, `expected a positive number, got ${JSON.stringify(value)}`);
    return value;
  };
  const optionalTokenId = (key: string): number | undefined => {
    let v = raw[key];
    // Some configs list several eos ids; the first is the canonical one.
    if (Array.isArray(v)) v = v[0];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) return fail(key, `expected a token id (integer >= 0), got ${JSON.stringify(raw[key])}`);
    return v;
  };

  const modelType = raw.model_type;
  if (modelType !== undefined && modelType !== 'qwen2') {
    fail('model_type', `expected "qwen2", got ${JSON.stringify(modelType)} (only the Qwen2 family is supported)`);
  }
  let architecture: string | undefined;
  if (raw.architectures !== undefined && raw.architectures !== null) {
    if (!Array.isArray(raw.architectures) || raw.architectures.some((a) => typeof a !== 'string')) {
      fail('architectures', 'expected a list of strings');
    }
    const archs = raw.architectures as string[];
    architecture = archs[0];
    if (architecture !== undefined && !KNOWN_ARCHITECTURES.has(architecture)) {
      fail('architectures', `unsupported architecture ${JSON.stringify(architecture)}; expected one of ${[...KNOWN_ARCHITECTURES].join(', ')}`);
    }
  }
  if (modelType === undefined && architecture === undefined) {
    fail('model_type', 'missing, and no "architectures" to tell the model family');
  }
  const hiddenAct = raw.hidden_act ?? 'silu';
  if (hiddenAct !== 'silu') fail('hidden_act', `expected "silu", got ${JSON.stringify(hiddenAct)}`);
  if (raw.use_sliding_window === true) fail('use_sliding_window', 'sliding-window attention is not supported');
  if (raw.layer_types !== undefined && raw.layer_types !== null) {
    if (!Array.isArray(raw.layer_types) || raw.layer_types.some((t) => t !== 'full_attention')) {
      fail('layer_types', 'only "full_attention" layers are supported');
    }
  }

  const hiddenSize = positiveInt('hidden_size');
  const numAttentionHeads = positiveInt('num_attention_heads');
  const numKeyValueHeads = positiveInt('num_key_value_heads', numAttentionHeads);
  if (numAttentionHeads % numKeyValueHeads !== 0) {
    fail('num_key_value_heads', `${numKeyValueHeads} does not divide num_attention_heads ${numAttentionHeads}`);
  }
  if (raw.head_dim === undefined || raw.head_dim === null) {
    if (hiddenSize % numAttentionHeads !== 0) fail('head_dim', `missing, and hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numAttentionHeads}`);
  }
  const headDim = positiveInt('head_dim', hiddenSize / numAttentionHeads);
  if (headDim % 2 !== 0) fail('head_dim', `must be even for rotary embeddings, got ${headDim}`);

  const ropeTheta = parseRopeTheta(raw, fail, positiveNumber);

  if (raw.tie_word_embeddings !== undefined && typeof raw.tie_word_embeddings !== 'boolean') {
    fail('tie_word_embeddings', `expected a boolean, got ${JSON.stringify(raw.tie_word_embeddings)}`);
  }
  const numLabels = parseNumLabels(raw, fail);

  let stepToken: string | undefined;
  if (raw.step_token !== undefined && raw.step_token !== null) {
    if (typeof raw.step_token !== 'string' || raw.step_token === '') fail('step_token', 'expected a non-empty string');
    stepToken = raw.step_token as string;
  }
  const vocabSize = positiveInt('vocab_size');
  const stepTokenId = optionalTokenId('step_token_id');
  if (stepTokenId !== undefined && stepTokenId >= vocabSize) fail('step_token_id', `${stepTokenId} is outside the vocabulary (vocab_size ${vocabSize})`);

  const cfg: Qwen2Config = {
    vocabSize,
    hiddenSize,
    numHiddenLayers: positiveInt('num_hidden_layers'),
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    intermediateSize: positiveInt('intermediate_size'),
    ropeTheta,
    rmsNormEps: positiveNumber('rms_norm_eps', raw.rms_norm_eps, 1e-6),
    tieWordEmbeddings: (raw.tie_word_embeddings as boolean | undefined) ?? false,
    maxPositionEmbeddings: positiveInt('max_position_embeddings', 32768),
    numLabels,
  };
  if (stepToken !== undefined) cfg.stepToken = stepToken;
  if (stepTokenId !== undefined) cfg.stepTokenId = stepTokenId;
  const padTokenId = optionalTokenId('pad_token_id');
  if (padTokenId !== undefined) cfg.padTokenId = padTokenId;
  const bosTokenId = optionalTokenId('bos_token_id');
  if (bosTokenId !== undefined) cfg.bosTokenId = bosTokenId;
  const eosTokenId = optionalTokenId('eos_token_id');
  if (eosTokenId !== undefined) cfg.eosTokenId = eosTokenId;
  if (raw.initializer_range !== undefined && raw.initializer_range !== null) {
    cfg.initializerRange = positiveNumber('initializer_range', raw.initializer_range);
  }
  if (architecture !== undefined) cfg.architecture = architecture;
  return cfg;
}

type Fail = (key: string, reason: string) => never;

function parseRopeTheta(
  raw: Record<string, unknown>,
  fail: Fail,
  positiveNumber: (key: string, value: unknown, fallback?: number) => number,
): number {
  // transformers 5 nests rope settings in rope_parameters; 4.x has rope_theta + rope_scaling.
  const params = raw.rope_parameters;
  if (params !== undefined && params !== null) {
    if (typeof params !== 'object' || Array.isArray(params)) fail('rope_parameters', 'expected an object');
    const p = params as Record<string, unknown>;
    const type = p.rope_type ?? p.type ?? 'default';
    if (type !== 'default') fail('rope_parameters.rope_type', `only "default" rotary embeddings are supported, got ${JSON.stringify(type)}`);
    if (p.rope_theta !== undefined) return positiveNumber('rope_parameters.rope_theta', p.rope_theta);
  }
  const scaling = raw.rope_scaling;
  if (scaling !== undefined && scaling !== null) {
    if (typeof scaling !== 'object' || Array.isArray(scaling)) fail('rope_scaling', 'expected an object or null');
    const s = scaling as Record<string, unknown>;
    const type = s.rope_type ?? s.type ?? 'default';
    if (type !== 'default') fail('rope_scaling', `only "default" rotary embeddings are supported, got ${JSON.stringify(type)}`);
  }
  return positiveNumber('rope_theta', raw.rope_theta, 10000);
}

function parseNumLabels(raw: Record<string, unknown>, fail: Fail): number {
  if (raw.num_labels !== undefined && raw.num_labels !== null) {
    const n = raw.num_labels;
    if (typeof n !== 'number' || !Number.isInteger(n) || n <= 0) return fail('num_labels', `expected a positive integer, got ${JSON.stringify(n)}`);
    return n;
  }
  if (raw.id2label !== undefined && raw.id2label !== null) {
    if (typeof raw.id2label !== 'object' || Array.isArray(raw.id2label)) return fail('id2label', 'expected an object');
    return Object.keys(raw.id2label as object).length;
  }
  return 2;
}

/**
 * The config.json of a prmkit checkpoint: a Qwen2 config that transformers loads with
 * Qwen2Config / Qwen2Model.from_pretrained, marked as a PRM with the step token, and with the
 * auto_map that makes AutoModel (trust_remote_code) build the whole PRM. The rope
 * theta is written both ways so transformers 4.x and 5.x read it.
 */
export function toHfConfig(cfg: Qwen2Config): Record<string, unknown> {
  const out: Record<string, unknown> = {
    architectures: [PRM_ARCHITECTURE],
    // transformers loads the PRM through the modeling file every checkpoint carries (hf-modeling.ts).
    auto_map: { ...HF_AUTO_MAP },
    model_type: 'qwen2',
    vocab_size: cfg.vocabSize,
    hidden_size: cfg.hiddenSize,
    intermediate_size: cfg.intermediateSize,
    num_hidden_layers: cfg.numHiddenLayers,
    num_attention_heads: cfg.numAttentionHeads,
    num_key_value_heads: cfg.numKeyValueHeads,
    head_dim: cfg.headDim,
    hidden_act: 'silu',
    max_position_embeddings: cfg.maxPositionEmbeddings,
    rms_norm_eps: cfg.rmsNormEps,
    rope_theta: cfg.ropeTheta,
    rope_parameters: { rope_type: 'default', rope_theta: cfg.ropeTheta },
    rope_scaling: null,
    tie_word_embeddings: cfg.tieWordEmbeddings,
    use_sliding_window: false,
    sliding_window: null,
    attention_dropout: 0.0,
    initializer_range: cfg.initializerRange ?? 0.02,
    use_cache: false,
    num_labels: cfg.numLabels,
    id2label: Object.fromEntries(Array.from({ length: cfg.numLabels }, (_, i) => [String(i), `LABEL_${i}`])),
    label2id: Object.fromEntries(Array.from({ length: cfg.numLabels }, (_, i) => [`LABEL_${i}`, i])),
    torch_dtype: 'float32',
  };
  if (cfg.bosTokenId !== undefined) out.bos_token_id = cfg.bosTokenId;
  if (cfg.eosTokenId !== undefined) out.eos_token_id = cfg.eosTokenId;
  if (cfg.padTokenId !== undefined) out.pad_token_id = cfg.padTokenId;
  if (cfg.stepToken !== undefined) out.step_token = cfg.stepToken;
  if (cfg.stepTokenId !== undefined) out.step_token_id = cfg.stepTokenId;
  return out;
}
