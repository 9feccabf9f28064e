import * as tf from '@tensorflow/tfjs';
import { PRM_ARCHITECTURE, type Qwen2Config } from './config.js';
import { decoderHiddenStates, decoderParamSpecs, decoderWeightsFrom, internalShape, layerPrefix, type DecoderWeights, type ParamSpec } from './qwen2.js';
import type { HostTensor } from './safetensors.js';
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

export class PrmModel {
  private cfg: Qwen2Config;
  private decoder: DecoderWeights;

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

  get config(): Readonly<Qwen2Config> {
    return this.cfg;
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
    // An id past the embedding is not an error on every backend (wasm gathers garbage), so
    // check here: a step token added to the tokenizer without resizing the model lands here.
    const ids = inputIds.dataSync();
    for (let i = 0; i < ids.length; i++) {
      if (!(ids[i] >= 0 && ids[i] < this.cfg.vocabSize)) {
        throw new Error(`token id ${ids[i]} (batch row ${Math.floor(i / inputIds.shape[1])}) is outside the model vocabulary [0, ${this.cfg.vocabSize}); resize the token embeddings`);
      }
    }
    return decoderHiddenStates(this.cfg, this.decoder, inputIds, attentionMask);
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
    const flat = flatPositions(inputIds.shape, attentionMask, stepPositions);
    return tf.tidy(() => {
      const hidden = this.hiddenStates(inputIds, attentionMask);
      return this.head(tf.gather(hidden, tf.tensor1d(flat, 'int32')));
    });
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
    this.decoder = decoderWeightsFrom(this.cfg, this.variables);
  }

  numParameters(): number {
    let n = 0;
    for (const v of this.variables.values()) n += v.size;
    return n;
  }

  /** A parameter in HF layout ([out, in] for linear weights), e.g. for saving. */
  async hfTensor(spec: ParamSpec): Promise<Float32Array> {
    const v = this.variables.get(spec.name);
    if (!v) throw new Error(`no parameter "${spec.name}"`);
    if (spec.kind !== 'linear') return (await v.data()) as Float32Array;
    const t = tf.transpose(v);
    try {
      return (await t.data()) as Float32Array;
    } finally {
      t.dispose();
    }
  }

  dispose(): void {
    for (const v of this.variables.values()) v.dispose();
    this.variables.clear();
  }
}

function shapesEqual(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Flat row indices b*T + t, checked against the shape and the mask (no padded positions). */
function flatPositions(shape: [number, number], attentionMask: tf.Tensor2D, stepPositions: number[][]): number[] {
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
function initialValue(spec: ParamSpec, seed: number, std: number): Float32Array {
  const count = spec.hfShape.reduce((a, b) => a * b, 1);
  if (spec.kind === 'norm') return new Float32Array(count).fill(1);
  if (spec.kind === 'bias') return new Float32Array(count);
  return normalHost(new Rng(seed).fork(spec.name), count, std);
}

/** A variable in the internal layout from a tensor in HF layout. */
function variableFromHf(spec: ParamSpec, data: Float32Array): tf.Variable {
  const value = tf.tidy(() => {
    const t = tf.tensor(data, spec.hfShape, 'float32');
    return spec.kind === 'linear' ? tf.transpose(t) : t;
  });
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

/** Where weights come from: a map in memory, or a reader that loads tensor by tensor. */
export interface TensorSource {
  /** Names the source holds. */
  names(): Iterable<string>;
  get(name: string): HostTensor | Promise<HostTensor>;
  /** Used in error messages (a file or directory). */
  label: string;
}

export interface BuildOptions {
  /** Seed for a newly initialised head. */
  seed?: number;
  /** Called after each tensor is loaded (progress reporting). */
  onTensor?: (name: string, index: number, total: number) => void;
}

/**
 * The build as a generator: it yields the name of each source tensor it needs and is sent
 * the tensor back, so one body serves the synchronous (in-memory) and the asynchronous
 * (tensor-by-tensor from disk) loaders.
 *
 * Rules: backbone tensors may carry the `model.` prefix (PRM and causal-LM checkpoints) or not
 * (a bare Qwen2Model). A missing backbone tensor is an error; a missing head is initialised
 * unless the config says the source is a PRM. lm_head and other extra tensors are ignored.
 */
function* buildSteps(config: Qwen2Config, names: Iterable<string>, label: string, opts: BuildOptions): Generator<string, PrmModel, HostTensor> {
  if (config.numLabels !== 2) throw new Error(`${label}: the PRM head has 2 labels, but config.json says num_labels = ${config.numLabels}`);
  const available = new Set(names);
  const bare = !available.has('model.embed_tokens.weight') && available.has('embed_tokens.weight');
  const sourceName = (name: string): string => (bare && name.startsWith('model.') ? name.slice('model.'.length) : name);
  const headSpecs = headParamSpecs(config);
  const headPresent = headSpecs.filter((s) => available.has(s.name));
  if (headPresent.length > 0 && headPresent.length < headSpecs.length) {
    const missing = headSpecs.find((s) => !available.has(s.name))!;
    throw new Error(`${label}: missing tensor "${missing.name}" (the PRM head is incomplete)`);
  }
  const newHead = headPresent.length === 0;
  if (newHead && config.architecture === PRM_ARCHITECTURE) {
    throw new Error(`${label}: missing tensor "score.0.weight" (config says ${PRM_ARCHITECTURE}, but the head is absent)`);
  }
  const specs = prmParamSpecs(config);
  for (const spec of specs) {
    const isNewHead = newHead && spec.name.startsWith('score.');
    if (!isNewHead && !available.has(sourceName(spec.name))) throw new Error(`${label}: missing tensor "${sourceName(spec.name)}"`);
  }
  const used = new Set<string>();
  const variables = new Map<string, tf.Variable>();
  const seed = opts.seed ?? 0;
  try {
    for (let i = 0; i < specs.length; i++) {
      const spec = specs[i];
      let data: Float32Array;
      if (newHead && spec.name.startsWith('score.')) {
        data = initialValue(spec, seed, config.initializerRange ?? 0.02);
      } else {
        const name = sourceName(spec.name);
        const host: HostTensor = yield name;
        if (!shapesEqual(host.shape, spec.hfShape)) {
          throw new Error(`${label}: tensor "${name}" has shape [${host.shape}], but config.json implies [${spec.hfShape}]`);
        }
        used.add(name);
        data = host.data;
      }
      variables.set(spec.name, variableFromHf(spec, data));
      opts.onTensor?.(spec.name, i, specs.length);
    }
    const ignoredTensors = [...available].filter((n) => !used.has(n));
    return new PrmModel(config, variables, { newHead, ignoredTensors });
  } catch (e) {
    for (const v of variables.values()) v.dispose();
    throw e;
  }
}

/** Builds a PRM from a source that loads tensors one at a time (see buildSteps for the rules). */
export async function buildPrm(config: Qwen2Config, source: TensorSource, opts: BuildOptions = {}): Promise<PrmModel> {
  const steps = buildSteps(config, source.names(), source.label, opts);
  let step = steps.next();
  while (!step.done) {
    let host: HostTensor;
    try {
      host = await source.get(step.value);
    } catch (e) {
      steps.throw(e);
      throw e;
    }
    step = steps.next(host);
  }
  return step.value;
}

/** Builds a PRM from HF-named tensors in memory (see buildSteps for the rules). */
export function prmFromTensors(config: Qwen2Config, tensors: ReadonlyMap<string, HostTensor>, opts: BuildOptions = {}): PrmModel {
  const steps = buildSteps(config, tensors.keys(), 'tensors', opts);
  let step = steps.next();
  while (!step.done) step = steps.next(tensors.get(step.value)!);
  return step.value;
}
