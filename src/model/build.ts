import * as tf from '@tensorflow/tfjs';
import { PRM_ARCHITECTURE, type Qwen2Config } from './config.js';
import { headParamSpecs, initialValue, PrmModel, prmParamSpecs, shapesEqual, toInternalLayout } from './prm.js';
import type { ParamSpec } from './qwen2.js';
import type { HostTensor, SafetensorsReader } from './safetensors.js';

/**
 * Building a PrmModel from named tensors: a map in memory, or a safetensors reader that loads
 * one tensor at a time (in row chunks for tensors too large to hold on the host whole).
 */

/** Where weights come from: names it holds, and each tensor in HF layout on demand. */
export interface TensorSource {
  names(): Iterable<string>;
  /** The tensor in HF layout as a device tensor; the builder takes ownership. */
  tensor(name: string, spec: ParamSpec): tf.Tensor | Promise<tf.Tensor>;
  /** Used in error messages (a file or directory). */
  label: string;
}

export interface BuildOptions {
  /** Seed for a newly initialised head. */
  seed?: number;
  /** Called after each tensor is loaded (progress reporting). */
  onTensor?: (name: string, index: number, total: number) => void;
}

/** Largest host chunk when reading a tensor from disk (a 151,936 x 3,584 f32 embedding is 2.2 GB). */
export const DEFAULT_READ_CHUNK_BYTES = 256 * 2 ** 20;

/**
 * A device tensor from a reader, read in chunks of whole rows: each chunk becomes a small tensor
 * and the chunks are concatenated on the device, so the host never holds the whole tensor.
 */
export async function readDeviceTensor(reader: SafetensorsReader, name: string, chunkBytes = DEFAULT_READ_CHUNK_BYTES): Promise<tf.Tensor> {
  const entry = reader.entry(name);
  if (!entry) throw new Error(`${reader.path}: no tensor "${name}"`);
  const shape = entry.shape;
  const parts: tf.Tensor[] = [];
  try {
    for await (const { rows, data } of reader.readRowChunks(name, chunkBytes)) {
      parts.push(tf.tensor(data, shape.length === 0 ? [] : [rows, ...shape.slice(1)], 'float32'));
    }
    if (parts.length === 1) return parts.pop() as tf.Tensor;
    const whole = tf.concat(parts, 0);
    return whole;
  } finally {
    tf.dispose(parts);
  }
}

/** A source over a safetensors reader. */
export function readerSource(reader: SafetensorsReader, chunkBytes = DEFAULT_READ_CHUNK_BYTES): TensorSource {
  return { label: reader.path, names: () => reader.names(), tensor: (name) => readDeviceTensor(reader, name, chunkBytes) };
}

/**
 * The build as a generator: it yields the spec and source name of each tensor it needs and is
 * sent the tensor back (HF layout), so one body serves the synchronous (in-memory) and the
 * asynchronous (tensor-by-tensor from disk) loaders.
 *
 * Rules: backbone tensors may carry the `model.` prefix (PRM and causal-LM checkpoints) or not
 * (a bare Qwen2Model). A missing backbone tensor is an error; a missing head is initialised
 * unless the config says the source is a PRM. lm_head and other extra tensors are ignored.
 */
function* buildSteps(
  config: Qwen2Config,
  names: Iterable<string>,
  label: string,
  opts: BuildOptions,
): Generator<{ name: string; spec: ParamSpec }, PrmModel, tf.Tensor> {
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
      let hf: tf.Tensor;
      if (newHead && spec.name.startsWith('score.')) {
        hf = tf.tensor(initialValue(spec, seed, config.initializerRange ?? 0.02), spec.hfShape, 'float32');
      } else {
        const name = sourceName(spec.name);
        hf = yield { name, spec };
        if (!shapesEqual(hf.shape, spec.hfShape)) {
          hf.dispose();
          throw new Error(`${label}: tensor "${name}" has shape [${hf.shape}], but config.json implies [${spec.hfShape}]`);
        }
        used.add(name);
      }
      const value = toInternalLayout(spec, hf);
      variables.set(spec.name, tf.variable(value, true));
      value.dispose();
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
    let tensor: tf.Tensor;
    try {
      tensor = await source.tensor(step.value.name, step.value.spec);
    } catch (e) {
      steps.throw(e);
      throw e;
    }
    step = steps.next(tensor);
  }
  return step.value;
}

/** Builds a PRM from HF-named tensors in memory (see buildSteps for the rules). */
export function prmFromTensors(config: Qwen2Config, tensors: ReadonlyMap<string, HostTensor>, opts: BuildOptions = {}): PrmModel {
  const steps = buildSteps(config, tensors.keys(), 'tensors', opts);
  let step = steps.next();
  while (!step.done) {
    const host = tensors.get(step.value.name)!;
    step = steps.next(tf.tensor(host.data, host.shape, 'float32'));
  }
  return step.value;
}
