import * as tf from '@tensorflow/tfjs';
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { parseHfConfig, toHfConfig } from './config.js';
import { exists, loadPrm, writeDirectoryAtomically, writeExtraFiles, type LoadedPrm, type LoadPrmOptions, type SaveExtras } from './checkpoint.js';
import { DEFAULT_READ_CHUNK_BYTES, readDeviceTensor } from './build.js';
import { LORA_TARGETS, loraParamSpecs, type LoraConfig, type LoraTarget } from './lora.js';
import { headParamSpecs, shapesEqual, toInternalLayout, type PrmModel } from './prm.js';
import type { ParamSpec } from './qwen2.js';
import { SafetensorsReader, writeSafetensorsStreaming } from './safetensors.js';
import { writeFileSynced } from '../util/durable-fs.js';

/**
 * LoRA adapters on disk in PEFT's format, so `PeftModel.from_pretrained(base, dir)` loads what
 * prmkit trains and prmkit loads what PEFT trains:
 * - adapter_config.json: peft_type LORA, r, lora_alpha, lora_dropout, target_modules, and the
 *   head as `modules_to_save: ["score"]` (trained fully, saved whole);
 * - adapter_model.safetensors: every tensor under PEFT's `base_model.model.` prefix, HF layout
 *   (`...q_proj.lora_A.weight` [r, in], `...lora_B.weight` [out, r], `score.0.weight`, ...).
 * Beside them prmkit writes the tokenizer files and prm_config.json (the PRM's config.json: the
 * step token the run added to the base's config), which PEFT ignores.
 */

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
/** The PRM config the adapter was trained with (step and pad tokens); PEFT ignores the file. */
export const PRM_CONFIG_FILE = 'prm_config.json';
/** PEFT's prefix of every saved name (PeftModel -> LoraModel -> the base model). */
const PEFT_PREFIX = 'base_model.model.';
/** The module PEFT saves whole (modules_to_save): the PRM head. */
const HEAD_MODULE = 'score';

/** True when dir holds a PEFT adapter (adapter_config.json). */
export function isAdapterDir(dir: string): Promise<boolean> {
  return exists(join(dir, ADAPTER_CONFIG_FILE));
}

export interface AdapterInfo {
  lora: LoraConfig;
  /** base_model_name_or_path as written. */
  baseModel: string | null;
}

/**
 * Reads and checks adapter_config.json: LoRA with PEFT's plain scaling on prmkit's target
 * projections. Variants prmkit does not compute (DoRA, rsLoRA, trained biases, per-module ranks,
 * regular-expression targets) are refused with the key that asks for them.
 */
export async function readAdapterConfig(dir: string): Promise<AdapterInfo> {
  const path = join(dir, ADAPTER_CONFIG_FILE);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as Error).message})`);
  }
  const bad = (key: string, why: string): never => {
    throw new Error(`${path}: "${key}" ${why}`);
  };
  if (raw.peft_type !== 'LORA') bad('peft_type', `is ${JSON.stringify(raw.peft_type)}; only LORA adapters are supported`);
  for (const key of ['use_dora', 'use_rslora', 'fan_in_fan_out', 'use_qalora', 'lora_bias']) if (raw[key]) bad(key, 'is set; prmkit computes plain LoRA only');
  if (raw.bias !== undefined && raw.bias !== 'none') bad('bias', `is ${JSON.stringify(raw.bias)}; only "none" is supported`);
  for (const key of ['rank_pattern', 'alpha_pattern']) {
    const v = raw[key];
    if (v && typeof v === 'object' && Object.keys(v).length > 0) bad(key, 'is not empty; per-module ranks are not supported');
  }
  for (const key of ['layers_to_transform', 'layer_replication', 'target_parameters', 'trainable_token_indices']) if (raw[key] !== undefined && raw[key] !== null) bad(key, 'is set; not supported');
  const targets = raw.target_modules;
  if (!Array.isArray(targets)) bad('target_modules', 'must be a list of module names (a regular expression is not supported)');
  for (const t of targets as unknown[]) {
    if (!(LORA_TARGETS as readonly unknown[]).includes(t)) bad('target_modules', `names ${JSON.stringify(t)}; prmkit adapts ${LORA_TARGETS.join(', ')}`);
  }
  const saved = raw.modules_to_save;
  if (saved !== undefined && saved !== null) {
    if (!Array.isArray(saved) || saved.some((m) => m !== HEAD_MODULE)) bad('modules_to_save', `is ${JSON.stringify(saved)}; only ["${HEAD_MODULE}"] (the PRM head) is supported`);
  }
  const r = raw.r;
  const alpha = raw.lora_alpha ?? 8;
  const dropout = raw.lora_dropout ?? 0;
  if (!Number.isInteger(r) || (r as number) < 1) bad('r', 'must be a positive integer');
  if (typeof alpha !== 'number' || !(alpha > 0)) bad('lora_alpha', 'must be a positive number');
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) bad('lora_dropout', 'must be a number in [0, 1)');
  return {
    // PEFT writes target_modules in set order: keep prmkit's canonical order.
    lora: { r: r as number, alpha: alpha as number, dropout: dropout as number, targetModules: LORA_TARGETS.filter((t) => (targets as string[]).includes(t)) as LoraTarget[] },
    baseModel: typeof raw.base_model_name_or_path === 'string' ? raw.base_model_name_or_path : null,
  };
}

/** adapter_config.json for a LoRA config, with the keys PEFT reads (it fills the rest with its defaults). */
function adapterConfigJson(lora: LoraConfig, baseModel: string): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: null,
    base_model_name_or_path: baseModel,
    r: lora.r,
    lora_alpha: lora.alpha,
    lora_dropout: lora.dropout,
    target_modules: [...lora.targetModules],
    modules_to_save: [HEAD_MODULE],
    bias: 'none',
    fan_in_fan_out: false,
    use_rslora: false,
    use_dora: false,
    init_lora_weights: true,
    inference_mode: true,
    rank_pattern: {},
    alpha_pattern: {},
    layers_to_transform: null,
    layers_pattern: null,
    revision: null,
    created_by: 'prmkit',
  };
}

/** The tensors an adapter file holds for a model: the adapter's, then the head's (HF names, no prefix). */
function adapterSpecs(model: PrmModel): ParamSpec[] {
  return [...model.loraSpecs(), ...headParamSpecs(model.config)];
}

export interface AdapterSaveOptions extends SaveExtras {
  /** base_model_name_or_path: the directory of the base model the adapter applies to. */
  baseModel: string;
}

/** Writes the model's adapter and head as a PEFT adapter directory, atomically. */
export async function saveLoraAdapter(model: PrmModel, dir: string, opts: AdapterSaveOptions): Promise<void> {
  const lora = model.lora;
  if (!lora) throw new Error('the model has no LoRA adapter to save');
  const chunkBytes = opts.chunkBytes ?? DEFAULT_READ_CHUNK_BYTES;
  const specs = adapterSpecs(model);
  await writeDirectoryAtomically(dir, async (tmp) => {
    await writeFileSynced(join(tmp, ADAPTER_CONFIG_FILE), `${JSON.stringify(adapterConfigJson(lora, opts.baseModel), null, 2)}\n`);
    await writeSafetensorsStreaming(
      join(tmp, ADAPTER_WEIGHTS_FILE),
      specs.map((s) => ({ name: PEFT_PREFIX + s.name, shape: s.hfShape })),
      (_spec, i) => model.hfTensorChunks(specs[i], chunkBytes),
      { fsync: true, metadata: { format: 'pt' } },
    );
    await writeFileSynced(join(tmp, PRM_CONFIG_FILE), `${JSON.stringify(toHfConfig(model.config), null, 2)}\n`);
    await writeExtraFiles(tmp, opts);
  });
}

/**
 * The tensors of adapter_model.safetensors by name without PEFT's prefix (HF layout, on the
 * device; the caller disposes them). A name outside the prefix, or one the model would not use,
 * is an error naming it.
 */
async function readAdapterTensors(dir: string, allowed: ReadonlySet<string>): Promise<Map<string, tf.Tensor>> {
  const path = join(dir, ADAPTER_WEIGHTS_FILE);
  const reader = await SafetensorsReader.open(path);
  const out = new Map<string, tf.Tensor>();
  try {
    for (const full of reader.names()) {
      const name = full.startsWith(PEFT_PREFIX) ? full.slice(PEFT_PREFIX.length) : null;
      if (name === null || !allowed.has(name)) {
        throw new Error(`${path}: tensor "${full}" is not part of this adapter (expected ${PEFT_PREFIX}<LoRA or score tensor> for the config in ${ADAPTER_CONFIG_FILE})`);
      }
      out.set(name, await readDeviceTensor(reader, full));
    }
    return out;
  } catch (e) {
    tf.dispose([...out.values()]);
    throw e;
  } finally {
    await reader.close();
  }
}

/** base_model_name_or_path as a directory: absolute, else relative to the adapter, else to the working directory. */
async function resolveBase(dir: string, info: AdapterInfo, base?: string): Promise<string> {
  const named = base ?? info.baseModel;
  if (!named) throw new Error(`${join(dir, ADAPTER_CONFIG_FILE)}: no base_model_name_or_path; name the base model directory`);
  const candidates = isAbsolute(named) ? [named] : [resolve(dir, named), resolve(named)];
  for (const c of candidates) if (await exists(join(c, 'config.json'))) return c;
  throw new Error(
    `${join(dir, ADAPTER_CONFIG_FILE)}: base model "${named}" is not a model directory here (looked in ${candidates.join(', ')}); ` +
      'download it and name its directory (a hub id is not fetched)',
  );
}

/** Copies tensors (HF layout, by name) into the model's variables, checking shapes; disposes them. */
function assignHf(model: PrmModel, specs: readonly ParamSpec[], tensors: Map<string, tf.Tensor>, source: string): void {
  for (const spec of specs) {
    const hf = tensors.get(spec.name);
    if (!hf) continue;
    tensors.delete(spec.name);
    if (!shapesEqual(hf.shape, spec.hfShape)) {
      hf.dispose();
      throw new Error(`${source}: ${spec.name} has shape [${hf.shape}], the model needs [${spec.hfShape}]`);
    }
    const value = toInternalLayout(spec, hf);
    model.variables.get(spec.name)!.assign(value);
    value.dispose();
  }
}

/**
 * Loads a PEFT LoRA adapter directory over its base model: the base from `opts.base` or the
 * adapter's base_model_name_or_path, then the adapter's tensors and head. An adapter without
 * the head (score.*) needs a base that has one.
 */
export async function loadLoraAdapter(dir: string, opts: LoadPrmOptions & { base?: string } = {}): Promise<LoadedPrm> {
  const info = await readAdapterConfig(dir);
  const baseDir = await resolveBase(dir, info, opts.base);
  const loaded = await loadPrm(baseDir, { ...opts, adapter: false });
  const model = loaded.model;
  const weightsPath = join(dir, ADAPTER_WEIGHTS_FILE);
  try {
    if (await exists(join(dir, PRM_CONFIG_FILE))) {
      const prm = parseHfConfig(JSON.parse(await readFile(join(dir, PRM_CONFIG_FILE), 'utf8')), join(dir, PRM_CONFIG_FILE));
      if (prm.vocabSize !== model.config.vocabSize || prm.hiddenSize !== model.config.hiddenSize || prm.numHiddenLayers !== model.config.numHiddenLayers) {
        throw new Error(`${join(dir, PRM_CONFIG_FILE)}: the adapter was trained on another base (vocabulary, width or depth differ from ${baseDir})`);
      }
      model.setTokens({ stepToken: prm.stepToken, stepTokenId: prm.stepTokenId, padTokenId: prm.padTokenId });
    }
    const head = headParamSpecs(model.config);
    const loraNames = new Set(loraParamSpecs(model.config, info.lora).map((s) => s.name));
    const tensors = await readAdapterTensors(dir, new Set([...loraNames, ...head.map((s) => s.name)]));
    try {
      const missing = [...loraNames].find((n) => !tensors.has(n));
      if (missing) throw new Error(`${weightsPath}: missing tensor "${PEFT_PREFIX}${missing}"`);
      const headCount = head.filter((s) => tensors.has(s.name)).length;
      if (headCount > 0 && headCount < head.length) throw new Error(`${weightsPath}: the head (score.*) is incomplete`);
      if (headCount === 0 && model.loadInfo.newHead) throw new Error(`${weightsPath}: the adapter has no head (score.*) and the base ${baseDir} has none either`);
      model.addLora(info.lora, 0, (spec) => {
        const t = tensors.get(spec.name);
        tensors.delete(spec.name);
        return t;
      });
      assignHf(model, head, tensors, weightsPath);
    } finally {
      tf.dispose([...tensors.values()]);
    }
    const files = { ...loaded.files };
    for (const [key, file] of [['tokenizerJson', 'tokenizer.json'], ['tokenizerConfigJson', 'tokenizer_config.json']] as const) {
      if (await exists(join(dir, file))) files[key] = await readFile(join(dir, file), 'utf8');
    }
    return { model, files };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/**
 * Copies an adapter directory's tensors (adapter and head) into a model that carries the same
 * adapter, in place: how a LoRA run resumes (the optimizer keeps its variables).
 */
export async function loadAdapterWeightsInto(model: PrmModel, dir: string): Promise<void> {
  const specs = adapterSpecs(model);
  const tensors = await readAdapterTensors(dir, new Set(specs.map((s) => s.name)));
  try {
    const missing = specs.find((s) => !tensors.has(s.name));
    if (missing) throw new Error(`${join(dir, ADAPTER_WEIGHTS_FILE)}: missing tensor "${PEFT_PREFIX}${missing.name}"`);
    assignHf(model, specs, tensors, join(dir, ADAPTER_WEIGHTS_FILE));
  } finally {
    tf.dispose([...tensors.values()]);
  }
}
