import * as tf from '@tensorflow/tfjs';
import { PRM_ARCHITECTURE, type Qwen2Config } from './config.js';
import {
  checkDecoderOptions,
  decoderContext,
  decoderHiddenStates,
  decoderLayer,
  decoderParamSpecs,
  decoderWeightsFrom,
  DEFAULT_DECODER_OPTIONS,
  disposeDecoderContext,
  embedTokens,
  finalNorm,
  internalShape,
  layerParamNames,
  layerPrefix,
  type DecoderOptions,
  type DecoderWeights,
  type ParamSpec,
} from './qwen2.js';
import { rowChunks } from './tensor-chunks.js';
import { checkLoraConfig, initialLoraValue, loraParamSpecs, loraScale, type LoraConfig, type LoraParamSpec } from './lora.js';
import { Rng } from '../util/rng.js';

/**
 * A process reward model: the Qwen2 decoder plus the head of Qwen2.5-Math-PRM,
 * `score.0 Linear(h,h) -> ReLU -> score.2 Linear(h,2)`. The step score of a step is
 * softmax(logits)[1] at its step-token position.
 */

export function headParamSpecs(cfg: Qwen2Config): ParamSpec[] {
  const h = cfg.hiddenSize;
  return [
    { name: 'score.0.weight', hfShape: [h, h], kind: 'linear' },
    { name: 'score.0.bias', hfShape: [h], kind: 'bias' },
    { name: 'score.2.weight', hfShape: [cfg.numLabels, h], kind: 'linear' },
    { name: 'score.2.bias', hfShape: [cfg.numLabels], kind: 'bias' },
  ];
}

/** Every parameter of the PRM in canonical (save) order. */
export function prmParamSpecs(cfg: Qwen2Config): ParamSpec[] {
  return [...decoderParamSpecs(cfg), ...headParamSpecs(cfg)];
}

export interface FreezeOptions {
  /** Train only the PRM head (score.*). */
  headOnly?: boolean;
  /** Train the last N decoder layers, the final norm and the head; N = 0 is the head alone. */
  trainLastLayers?: number;
}

export interface PrmLoadInfo {
  /** True when the head was initialised here (model built from a causal LM or from scratch). */
  newHead: boolean;
  /** Source tensors not used by the PRM (e.g. lm_head.weight of a causal LM). */
  ignoredTensors: string[];
}

/**
 * The decoder as a chain of stages for activation recomputation (src/train/recompute.ts): the
 * embedding lookup, one stage per layer, and the final norm for the caller's loss to apply.
 * Holds the batch's RoPE factors and attention masks until dispose().
 */
export interface DecoderChain {
  first: { variables: tf.Variable[]; run(): tf.Tensor2D };
  stages: { variables: tf.Variable[]; run(h: tf.Tensor): tf.Tensor2D }[];
  finalNorm: { variables: tf.Variable[]; run(h: tf.Tensor): tf.Tensor2D };
  dispose(): void;
}

export class PrmModel {
  private cfg: Qwen2Config;
  private decoder: DecoderWeights;
  private forwardOptions: DecoderOptions = { ...DEFAULT_DECODER_OPTIONS };
  /** The LoRA adapter when there is one (its variables are in `variables` under PEFT's module names). */
  private loraConfig: LoraConfig | null = null;
  /** Seed of LoRA dropout while a training micro-batch runs; null: no dropout (evaluation). */
  private dropoutSeed: string | null = null;

  /**
   * @param variables HF name -> variable, linear weights in the internal [in, out] layout
   *   (see qwen2.ts); build models with initPrm / prmFromTensors / loadPrm instead.
   */
  constructor(
    config: Qwen2Config,
    readonly variables: Map<string, tf.Variable>,
    readonly loadInfo: PrmLoadInfo = { newHead: false, ignoredTensors: [] },
  ) {
    if (config.numLabels !== 2) throw new Error(`PRM head needs num_labels = 2, config has ${config.numLabels}`);
    this.cfg = { ...config };
    for (const spec of prmParamSpecs(this.cfg)) {
      const v = variables.get(spec.name);
      if (!v) throw new Error(`PrmModel: variable "${spec.name}" is missing`);
      const want = internalShape(spec);
      if (!shapesEqual(v.shape, want)) throw new Error(`PrmModel: variable "${spec.name}" has shape [${v.shape}], expected [${want}]`);
    }
    this.decoder = decoderWeightsFrom(this.cfg, variables);
  }

  /** The LoRA config when the model carries an adapter. */
  get lora(): Readonly<LoraConfig> | null {
    return this.loraConfig;
  }

  /** The adapter's tensors (names, HF shapes); empty without an adapter. */
  loraSpecs(): LoraParamSpec[] {
    return this.loraConfig ? loraParamSpecs(this.cfg, this.loraConfig) : [];
  }

  /**
   * Adds a LoRA adapter: new variables A (PEFT's init) and B = 0 per target projection, so the
   * model scores as before until trained. `values` (HF layout, by name) replaces the initial
   * values, e.g. an adapter read from disk.
   */
  addLora(config: LoraConfig, seed: number, values?: (spec: LoraParamSpec) => tf.Tensor | undefined): void {
    if (this.loraConfig) throw new Error('the model already has a LoRA adapter');
    checkLoraConfig(config, 'model.lora');
    const specs = loraParamSpecs(this.cfg, config);
    const added: string[] = [];
    try {
      for (const spec of specs) {
        const given = values?.(spec);
        if (given && !shapesEqual(given.shape, spec.hfShape)) throw new Error(`LoRA tensor ${spec.name} has shape [${given.shape}], expected [${spec.hfShape}]`);
        const hf = given ?? tf.tensor(initialLoraValue(spec, seed), spec.hfShape, 'float32');
        const value = toInternalLayout(spec, hf);
        this.variables.set(spec.name, tf.variable(value, true));
        value.dispose();
        added.push(spec.name);
      }
    } catch (e) {
      for (const name of added) {
        this.variables.get(name)?.dispose();
        this.variables.delete(name);
      }
      throw e;
    }
    this.loraConfig = { ...config, targetModules: [...config.targetModules] };
    this.attachAdapters();
  }

  /**
   * Folds the adapter into the base weights (W += (alpha / r) A B) and drops it: the result is a
   * plain model that scores as the adapted one did.
   */
  mergeLora(): void {
    const config = this.loraConfig;
    if (!config) throw new Error('the model has no LoRA adapter to merge');
    const scale = loraScale(config);
    const specs = loraParamSpecs(this.cfg, config);
    for (let k = 0; k < specs.length; k += 2) {
      const [a, b] = [this.variables.get(specs[k].name)!, this.variables.get(specs[k + 1].name)!];
      const base = this.variables.get(specs[k].name.replace(/\.lora_A\.weight$/, '.weight'))!;
      tf.tidy(() => base.assign(tf.add(base, tf.mul(tf.matMul(a, b), scale))));
    }
    for (const spec of specs) {
      this.variables.get(spec.name)!.dispose();
      this.variables.delete(spec.name);
    }
    this.loraConfig = null;
    this.decoder = decoderWeightsFrom(this.cfg, this.variables);
  }

  /**
   * Runs fn with LoRA dropout on, its masks drawn from `seed` (each projection its own stream), so
   * a forward pass recomputed in the backward draws the masks of the first one.
   */
  withLoraDropout<T>(seed: string, fn: () => T): T {
    const previous = this.dropoutSeed;
    this.dropoutSeed = seed;
    try {
      return fn();
    } finally {
      this.dropoutSeed = previous;
    }
  }

  /** Points the decoder's layers at the adapter's variables. */
  private attachAdapters(): void {
    const config = this.loraConfig;
    this.decoder = decoderWeightsFrom(this.cfg, this.variables);
    if (!config) return;
    const scale = loraScale(config);
    const specs = loraParamSpecs(this.cfg, config);
    for (let k = 0; k < specs.length; k += 2) {
      const { layer, target, name } = specs[k];
      const module = name.replace(/\.lora_A\.weight$/, '');
      const dropout = () => (this.dropoutSeed !== null && config.dropout > 0 ? { rate: config.dropout, seed: `${this.dropoutSeed}:${module}` } : null);
      const adapters = (this.decoder.layers[layer].adapters ??= {});
      adapters[target] = { a: this.variables.get(name)! as tf.Tensor2D, b: this.variables.get(specs[k + 1].name)! as tf.Tensor2D, scale, dropout };
    }
  }

  get config(): Readonly<Qwen2Config> {
    return this.cfg;
  }

  /** Options of the forward pass (attention block size, kernels); see DecoderOptions. */
  get decoderOptions(): Readonly<DecoderOptions> {
    return this.forwardOptions;
  }

  setDecoderOptions(options: Partial<DecoderOptions>): void {
    this.forwardOptions = checkDecoderOptions({ ...this.forwardOptions, ...options });
  }

  /** Sets the step/pad token fields of the config (after the tokenizer gained a token). */
  setTokens(tokens: { stepToken?: string; stepTokenId?: number; padTokenId?: number }): void {
    for (const [key, id] of [['stepTokenId', tokens.stepTokenId], ['padTokenId', tokens.padTokenId]] as const) {
      if (id !== undefined && (!Number.isInteger(id) || id < 0 || id >= this.cfg.vocabSize)) {
        throw new Error(`${key} ${id} is outside the vocabulary (${this.cfg.vocabSize}); resize the embeddings first`);
      }
    }
    this.cfg = { ...this.cfg, ...definedOnly(tokens) };
  }

  /** Final hidden states [B*T, hidden]. */
  hiddenStates(inputIds: tf.Tensor2D, attentionMask: tf.Tensor2D): tf.Tensor2D {
    this.checkIds(inputIds);
    return decoderHiddenStates(this.cfg, this.decoder, inputIds, attentionMask, this.forwardOptions);
  }

  /**
   * Final hidden states [N, hidden] at the given flat rows (from stepRows) only: the last layer
   * computes no other row (see decoderLayer in qwen2.ts).
   */
  hiddenStatesAt(inputIds: tf.Tensor2D, attentionMask: tf.Tensor2D, rows: readonly number[]): tf.Tensor2D {
    this.checkIds(inputIds);
    return tf.tidy(() => decoderHiddenStates(this.cfg, this.decoder, inputIds, attentionMask, this.forwardOptions, tf.tensor1d(rows as number[], 'int32')));
  }

  /**
   * The decoder as a chain of stages, for activation recomputation (see DecoderChain). With
   * `rows` (flat indices from stepRows) the last stage outputs those rows only.
   */
  decoderChain(inputIds: tf.Tensor2D, attentionMask: tf.Tensor2D, rows?: readonly number[]): DecoderChain {
    this.checkIds(inputIds);
    const ctx = decoderContext(this.cfg, attentionMask, this.forwardOptions);
    const rowsTensor = rows ? tf.tensor1d(rows as number[], 'int32') : undefined;
    const v = (name: string) => this.variables.get(name)!;
    const last = this.decoder.layers.length - 1;
    return {
      first: { variables: [v('model.embed_tokens.weight')], run: () => embedTokens(this.decoder, inputIds) },
      stages: this.decoder.layers.map((layer, i) => ({
        variables: [...layerParamNames(i), ...this.loraSpecs().filter((s) => s.layer === i).map((s) => s.name)].map(v),
        run: (h: tf.Tensor) => decoderLayer(this.cfg, layer, h as tf.Tensor2D, ctx, i === last ? rowsTensor : undefined),
      })),
      finalNorm: {
        variables: [v('model.norm.weight')],
        run: (h: tf.Tensor) => finalNorm(this.cfg, this.decoder, (last < 0 && rowsTensor ? tf.gather(h, rowsTensor) : h) as tf.Tensor2D, ctx.fused !== null),
      },
      dispose: () => {
        disposeDecoderContext(ctx);
        rowsTensor?.dispose();
      },
    };
  }

  /** The head's variables (score.*), in canonical order. */
  headVariables(): tf.Variable[] {
    return headParamSpecs(this.cfg).map((s) => this.variables.get(s.name)!);
  }

  // An id past the embedding is not an error on every backend (wasm gathers garbage), so check
  // here: a step token added to the tokenizer without resizing the model lands here.
  private checkIds(inputIds: tf.Tensor2D): void {
    const ids = inputIds.dataSync();
    for (let i = 0; i < ids.length; i++) {
      if (!(ids[i] >= 0 && ids[i] < this.cfg.vocabSize)) {
        throw new Error(`token id ${ids[i]} (batch row ${Math.floor(i / inputIds.shape[1])}) is outside the model vocabulary [0, ${this.cfg.vocabSize}); resize the token embeddings`);
      }
    }
  }

  /** The head applied to hidden states [N, hidden] -> logits [N, 2]. */
  head(hidden: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const v = this.variables;
      const inner = tf.fused.matMul({ a: hidden, b: v.get('score.0.weight')!, bias: v.get('score.0.bias')!, activation: 'relu' });
      return tf.fused.matMul({ a: inner, b: v.get('score.2.weight')!, bias: v.get('score.2.bias')! }) as tf.Tensor2D;
    });
  }

  /** Logits [B, T, 2] at every position (differentiable). */
  logits(inputIds: tf.Tensor2D, attentionMask: tf.Tensor2D): tf.Tensor3D {
    const [b, t] = inputIds.shape;
    return tf.tidy(() => this.head(this.hiddenStates(inputIds, attentionMask)).reshape([b, t, this.cfg.numLabels]));
  }

  /**
   * Logits [N, 2] at the given positions only, rows in order (batch row, then position):
   * the head runs on N rows instead of B*T. Differentiable; what the trainer's loss uses.
   */
  logitsAt(inputIds: tf.Tensor2D, attentionMask: tf.Tensor2D, stepPositions: number[][]): tf.Tensor2D {
    const rows = stepRows(inputIds.shape, attentionMask, stepPositions);
    return tf.tidy(() => this.head(this.hiddenStatesAt(inputIds, attentionMask, rows)));
  }

  /** The head on the given rows of final hidden states [B*T, hidden] (rows from stepRows). */
  headAt(hidden: tf.Tensor2D, rows: readonly number[]): tf.Tensor2D {
    return tf.tidy(() => this.head(tf.gather(hidden, tf.tensor1d(rows as number[], 'int32'))));
  }

  private scoreTensor(inputIds: tf.Tensor2D, attentionMask: tf.Tensor2D, stepPositions: number[][]): tf.Tensor1D {
    return tf.tidy(() => {
      const logits = this.logitsAt(inputIds, attentionMask, stepPositions);
      return tf.softmax(logits).slice([0, 1], [-1, 1]).reshape([-1]) as tf.Tensor1D;
    });
  }

  /** softmax(logits)[1] at each step position, grouped per batch row. */
  stepScores(inputIds: tf.Tensor2D, attentionMask: tf.Tensor2D, stepPositions: number[][]): number[][] {
    const scores = this.scoreTensor(inputIds, attentionMask, stepPositions);
    try {
      return regroup(scores.dataSync(), stepPositions);
    } finally {
      scores.dispose();
    }
  }

  /** As stepScores, reading the result without blocking (preferred on native/GPU backends). */
  async stepScoresAsync(inputIds: tf.Tensor2D, attentionMask: tf.Tensor2D, stepPositions: number[][]): Promise<number[][]> {
    const scores = this.scoreTensor(inputIds, attentionMask, stepPositions);
    try {
      return regroup(await scores.data(), stepPositions);
    } finally {
      scores.dispose();
    }
  }

  /** The variables to train, in canonical order. */
  trainableVariables(freeze: FreezeOptions = {}): tf.Variable[] {
    if (this.loraConfig) {
      // LoRA trains the adapter and the head (PEFT's modules_to_save); the base stays frozen.
      if (freeze.headOnly || freeze.trainLastLayers !== undefined) throw new Error('train.freeze does not combine with model.lora (LoRA already freezes the base)');
      return [...this.loraSpecs(), ...headParamSpecs(this.cfg)].map((s) => this.variables.get(s.name)!);
    }
    const layers = this.cfg.numHiddenLayers;
    let lastLayers: number | undefined;
    if (freeze.headOnly) lastLayers = 0;
    else if (freeze.trainLastLayers !== undefined) {
      const n = freeze.trainLastLayers;
      if (!Number.isInteger(n) || n < 0 || n > layers) throw new Error(`trainLastLayers must be an integer in [0, ${layers}], got ${n}`);
      lastLayers = n;
    }
    const names = prmParamSpecs(this.cfg).map((s) => s.name);
    if (lastLayers === undefined) return names.map((n) => this.variables.get(n)!);
    const keep = (name: string): boolean => {
      if (name.startsWith('score.')) return true;
      if (lastLayers === 0) return false;
      if (name === 'model.norm.weight') return true;
      for (let i = layers - lastLayers!; i < layers; i++) if (name.startsWith(`${layerPrefix(i)}.`)) return true;
      return false;
    };
    return names.filter(keep).map((n) => this.variables.get(n)!);
  }

  /**
   * Grows (or shrinks) the token embedding to newVocab rows. New rows are the mean of the
   * old rows plus N(0, initializer_range) noise, so a new token starts near the typical
   * embedding yet distinct. The embedding variable is replaced: re-read trainableVariables().
   */
  resizeTokenEmbeddings(newVocab: number, seed = 0): void {
    if (!Number.isInteger(newVocab) || newVocab <= 0) throw new Error(`new vocabulary size must be a positive integer, got ${newVocab}`);
    const name = 'model.embed_tokens.weight';
    const old = this.variables.get(name)!;
    const [vocab, hidden] = old.shape;
    if (newVocab === vocab) return;
    for (const [key, id] of [['stepTokenId', this.cfg.stepTokenId], ['padTokenId', this.cfg.padTokenId]] as const) {
      if (id !== undefined && id >= newVocab) throw new Error(`cannot shrink the vocabulary to ${newVocab}: ${key} is ${id}`);
    }
    const grown = tf.tidy(() => {
      if (newVocab < vocab) return old.slice([0, 0], [newVocab, hidden]);
      const rng = new Rng(seed).fork('resize_token_embeddings');
      const std = this.cfg.initializerRange ?? 0.02;
      const noise = new Float32Array((newVocab - vocab) * hidden);
      for (let i = 0; i < noise.length; i++) noise[i] = rng.normal() * std;
      const rows = tf.add(tf.mean(old, 0, true), tf.tensor2d(noise, [newVocab - vocab, hidden]));
      return tf.concat([old, rows], 0);
    });
    const replacement = tf.variable(grown, true);
    grown.dispose();
    old.dispose();
    this.variables.set(name, replacement);
    this.cfg = { ...this.cfg, vocabSize: newVocab };
    this.attachAdapters();
  }

  numParameters(): number {
    let n = 0;
    for (const v of this.variables.values()) n += v.size;
    return n;
  }

  /** A parameter in HF layout ([out, in] for linear weights), whole (small tensors and tests). */
  async hfTensor(spec: ParamSpec): Promise<Float32Array> {
    const parts: Float32Array[] = [];
    for await (const part of this.hfTensorChunks(spec, Infinity)) parts.push(part);
    if (parts.length === 1) return parts[0];
    const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  /**
   * A parameter in HF layout as chunks of whole HF rows of at most maxBytes each (at least one
   * row), read from the device one chunk at a time: saving never holds a whole large tensor
   * (a 2 GB embedding) on the host.
   */
  async *hfTensorChunks(spec: ParamSpec, maxBytes: number): AsyncGenerator<Float32Array> {
    const v = this.variables.get(spec.name);
    if (!v) throw new Error(`no parameter "${spec.name}"`);
    // Internal linear weights are [in, out]: HF rows are internal columns.
    yield* rowChunks(v, maxBytes, spec.kind === 'linear');
  }

  dispose(): void {
    for (const v of this.variables.values()) v.dispose();
    this.variables.clear();
  }
}

export function shapesEqual(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Flat row indices b*T + t of step positions, checked against the shape and the mask (no padded positions). */
export function stepRows(shape: [number, number], attentionMask: tf.Tensor2D, stepPositions: number[][]): number[] {
  const [batch, seqLen] = shape;
  if (stepPositions.length !== batch) throw new Error(`stepPositions has ${stepPositions.length} rows, the batch has ${batch}`);
  const mask = attentionMask.dataSync();
  const flat: number[] = [];
  stepPositions.forEach((row, b) => {
    for (const t of row) {
      if (!Number.isInteger(t) || t < 0 || t >= seqLen) throw new Error(`step position ${t} in batch row ${b} is outside [0, ${seqLen})`);
      if (mask[b * seqLen + t] === 0) throw new Error(`step position ${t} in batch row ${b} is a padding position`);
      flat.push(b * seqLen + t);
    }
  });
  return flat;
}

function regroup(values: ArrayLike<number>, stepPositions: number[][]): number[][] {
  let k = 0;
  return stepPositions.map((row) => row.map(() => values[k++]));
}

function normalHost(rng: Rng, count: number, std: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = rng.normal() * std;
  return out;
}

/** Initial value of a parameter in HF layout: N(0, std) for matrices, 1 for norms, 0 for biases. */
export function initialValue(spec: ParamSpec, seed: number, std: number): Float32Array {
  const count = spec.hfShape.reduce((a, b) => a * b, 1);
  if (spec.kind === 'norm') return new Float32Array(count).fill(1);
  if (spec.kind === 'bias') return new Float32Array(count);
  return normalHost(new Rng(seed).fork(spec.name), count, std);
}

/** The internal layout of a tensor in HF layout (linear weights transposed); takes ownership of `hf`. */
export function toInternalLayout(spec: ParamSpec, hf: tf.Tensor): tf.Tensor {
  if (spec.kind !== 'linear') return hf;
  const t = tf.transpose(hf);
  hf.dispose();
  return t;
}

/** A variable in the internal layout from a tensor in HF layout. */
function variableFromHf(spec: ParamSpec, data: Float32Array): tf.Variable {
  const value = toInternalLayout(spec, tf.tensor(data, spec.hfShape, 'float32'));
  const v = tf.variable(value, true);
  value.dispose();
  return v;
}

/** A PRM with fresh weights (HF initialisation: N(0, initializer_range), norms 1, biases 0). */
export function initPrm(config: Qwen2Config, seed: number): PrmModel {
  const std = config.initializerRange ?? 0.02;
  const variables = new Map<string, tf.Variable>();
  try {
    for (const spec of prmParamSpecs(config)) variables.set(spec.name, variableFromHf(spec, initialValue(spec, seed, std)));
    return new PrmModel(config, variables, { newHead: true, ignoredTensors: [] });
  } catch (e) {
    for (const v of variables.values()) v.dispose();
    throw e;
  }
}

