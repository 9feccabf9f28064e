import { access, mkdir, rm } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, normalize, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ConfigError, parseHfConfig, toHfConfig, type Qwen2Config } from './config.js';
import { buildPrm, DEFAULT_READ_CHUNK_BYTES, readDeviceTensor, readerSource } from './build.js';
import { prmParamSpecs, shapesEqual, toInternalLayout, type PrmModel } from './prm.js';
import { HF_MODELING_FILE, HF_MODELING_SOURCE } from './hf-modeling.js';
import { SafetensorsReader, writeSafetensorsSharded } from './safetensors.js';
import { fsyncPath, replaceDirectory, writeFileSynced } from '../util/durable-fs.js';
import { progressBar } from '../util/progress.js';
import { InputFileError, readInputText } from '../util/input-file.js';

/**
 * A checkpoint directory: config.json + model.safetensors (or a sharded
 * model.safetensors.index.json) + tokenizer.json + tokenizer_config.json (+ the modeling file
 * that lets transformers' AutoModel load it as a PRM, hf-modeling.ts), the layout of a
 * Hugging Face model repo, so Qwen2.5-Math-PRM and causal-LM repos load as they are and our
 * checkpoints load in PyTorch.
 */

export interface CheckpointFiles {
  tokenizerJson?: string;
  tokenizerConfigJson?: string;
}

export interface LoadedPrm {
  model: PrmModel;
  files: CheckpointFiles;
}

export interface LoadPrmOptions {
  /** Seed for the head when the directory holds a causal LM (no score.* tensors). */
  seed?: number;
  /** Show a progress bar while reading large weights (default: when weights exceed 200 MB). */
  progress?: boolean;
  /** Largest host chunk of one tensor while reading (tests set it small). */
  chunkBytes?: number;
  /** Load a PEFT adapter directory (adapter_config.json) over its base (default true). */
  adapter?: boolean;
  /** The base model directory of an adapter, instead of its base_model_name_or_path. */
  base?: string;
}

/** Whether a path exists (any kind of file). */
export async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

async function readOptional(path: string): Promise<string | undefined> {
  return (await exists(path)) ? readInputText(path) : undefined;
}

/** The weights file of a checkpoint directory: single file first, then a sharded index. */
export async function findWeights(dir: string): Promise<string> {
  for (const name of ['model.safetensors', 'model.safetensors.index.json']) {
    const path = join(dir, name);
    if (await exists(path)) return path;
  }
  const hasBin = (await exists(join(dir, 'pytorch_model.bin'))) || (await exists(join(dir, 'pytorch_model.bin.index.json')));
  throw new Error(
    `${dir}: no model.safetensors or model.safetensors.index.json` +
      (hasBin ? ' (found pytorch_model.bin: only safetensors weights are supported; convert them with the safetensors library)' : ''),
  );
}

export async function readConfigFile(dir: string): Promise<Qwen2Config> {
  return readConfigJson(join(dir, 'config.json'));
}

/** A Hugging Face config.json at `path` (a checkpoint's, or one given with --model-config). */
export async function readConfigJson(path: string): Promise<Qwen2Config> {
  let text: string;
  try {
    text = await readInputText(path);
  } catch (e) {
    throw new ConfigError(path, undefined, `cannot read (${e instanceof InputFileError ? e.message.slice(path.length + 2) : (e as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(path, undefined, `invalid JSON (${(e as Error).message})`);
  }
  return parseHfConfig(json, path);
}

/**
 * Loads a PRM (or a causal LM, with a new head) from a checkpoint directory, or a PEFT LoRA
 * adapter directory over its base model (src/model/peft-adapter.ts).
 */
export async function loadPrm(dir: string, opts: LoadPrmOptions = {}): Promise<LoadedPrm> {
  if (opts.adapter !== false && (await exists(join(dir, 'adapter_config.json')))) {
    // Imported here: the adapter module builds on this one.
    const { loadLoraAdapter } = await import('./peft-adapter.js');
    return loadLoraAdapter(dir, opts);
  }
  const config = await readConfigFile(dir);
  const weightsPath = await findWeights(dir);
  const reader = await SafetensorsReader.open(weightsPath);
  try {
    let bytes = 0;
    for (const name of reader.names()) bytes += reader.entry(name)!.byteLength;
    const showProgress = opts.progress ?? bytes > 200 * 2 ** 20;
    const bar = showProgress ? progressBar(`load ${basename(dir)}`, prmParamSpecs(config).length) : undefined;
    try {
      const model = await buildPrm(config, readerSource(reader, opts.chunkBytes ?? DEFAULT_READ_CHUNK_BYTES), {
        seed: opts.seed,
        onTensor: bar ? () => bar.tick() : undefined,
      });
      const files: CheckpointFiles = {};
      const tokenizerJson = await readOptional(join(dir, 'tokenizer.json'));
      if (tokenizerJson !== undefined) files.tokenizerJson = tokenizerJson;
      const tokenizerConfigJson = await readOptional(join(dir, 'tokenizer_config.json'));
      if (tokenizerConfigJson !== undefined) files.tokenizerConfigJson = tokenizerConfigJson;
      return { model, files };
    } finally {
      bar?.stop();
    }
  } finally {
    await reader.close();
  }
}

export interface SaveExtras extends CheckpointFiles {
  /** More files to place in the directory (relative paths, e.g. "trainer_state.json"). */
  extraFiles?: Record<string, string | Buffer>;
  /** Largest weights file (Hugging Face's 5 GB by default); more weights go into shards with an index. */
  maxShardBytes?: number;
  /** Largest host chunk of one tensor while writing (tests set it small). */
  chunkBytes?: number;
}

/** Hugging Face's default shard size (save_pretrained max_shard_size="5GB"). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

/**
 * Copies the weights of a checkpoint directory into the live variables of `model`, one tensor
 * (in row chunks) at a time: resuming holds no second model, and the optimizer keeps pointing at
 * the same variables.
 */
export async function loadWeightsInto(model: PrmModel, dir: string, opts: { chunkBytes?: number } = {}): Promise<void> {
  const reader = await SafetensorsReader.open(await findWeights(dir));
  try {
    for (const spec of prmParamSpecs(model.config)) {
      const target = model.variables.get(spec.name);
      if (!target) throw new Error(`the model has no parameter ${spec.name}`);
      if (!reader.has(spec.name)) throw new Error(`${dir}: checkpoint lacks ${spec.name}`);
      const hf = await readDeviceTensor(reader, spec.name, opts.chunkBytes ?? DEFAULT_READ_CHUNK_BYTES);
      if (!shapesEqual(hf.shape, spec.hfShape)) {
        hf.dispose();
        throw new Error(`${dir}: ${spec.name} has shape [${spec.hfShape}] in the model but [${hf.shape}] in the checkpoint`);
      }
      const value = toInternalLayout(spec, hf);
      target.assign(value);
      value.dispose();
    }
  } finally {
    await reader.close();
  }
}

function checkRelative(name: string): string {
  const rel = normalize(name);
  if (rel === '' || rel === '.' || isAbsolute(rel) || rel.startsWith('..')) throw new Error(`extra file name ${JSON.stringify(name)} must be a relative path inside the checkpoint`);
  return rel;
}

/** Writes a checkpoint atomically (see writeDirectoryAtomically). */
export async function savePrmCheckpoint(model: PrmModel, dir: string, extra: SaveExtras = {}): Promise<void> {
  if (model.lora) throw new Error('the model carries a LoRA adapter: save it with saveLoraAdapter, or merge it first (mergeLora)');
  const chunkBytes = extra.chunkBytes ?? DEFAULT_READ_CHUNK_BYTES;
  await writeDirectoryAtomically(dir, async (tmp) => {
    await writeFileSynced(join(tmp, 'config.json'), `${JSON.stringify(toHfConfig(model.config), null, 2)}\n`);
    await writeFileSynced(join(tmp, HF_MODELING_FILE), HF_MODELING_SOURCE);
    const specs = prmParamSpecs(model.config);
    await writeSafetensorsSharded(
      tmp,
      'model',
      specs.map((s) => ({ name: s.name, shape: s.hfShape })),
      (_spec, i) => model.hfTensorChunks(specs[i], chunkBytes),
      { fsync: true, maxShardBytes: extra.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES },
    );
    await writeExtraFiles(tmp, extra);
  });
}

/** The tokenizer files and `extraFiles` of a save, written into the directory being filled. */
export async function writeExtraFiles(tmp: string, extra: SaveExtras): Promise<void> {
  if (extra.tokenizerJson !== undefined) await writeFileSynced(join(tmp, 'tokenizer.json'), extra.tokenizerJson);
  if (extra.tokenizerConfigJson !== undefined) await writeFileSynced(join(tmp, 'tokenizer_config.json'), extra.tokenizerConfigJson);
  for (const [file, data] of Object.entries(extra.extraFiles ?? {})) {
    const rel = checkRelative(file);
    await mkdir(dirname(join(tmp, rel)), { recursive: true });
    await writeFileSynced(join(tmp, rel), data);
    if (dirname(rel) !== '.') await fsyncPath(dirname(join(tmp, rel)));
  }
}

/**
 * Fills a directory atomically: `fill` writes into a temporary sibling directory, which is
 * fsynced and renamed into place. An existing directory is first renamed aside and removed only
 * after the new one is in place, so a crash leaves either the old or the new one whole (in the
 * worst case under the `.<name>.old-*` sibling).
 */
export async function writeDirectoryAtomically(dir: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const target = resolve(dir);
  const parent = dirname(target);
  const name = basename(target);
  await mkdir(parent, { recursive: true });
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmp = join(parent, `.${name}.tmp-${tag}`);
  await mkdir(tmp);
  try {
    await fill(tmp);
    await fsyncPath(tmp);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  await replaceDirectory(tmp, target, join(parent, `.${name}.old-${tag}`), parent);
}
