import type { Qwen2Config } from './config.js';
import { layerPrefix, type ParamSpec } from './qwen2.js';
import { Rng } from '../util/rng.js';

/**
 * LoRA (Hu et al. 2021) on the decoder's linear projections, named and shaped as PEFT names
 * them, so adapters move between prmkit and PEFT unchanged: a target `q_proj` of layer i is
 * `model.layers.<i>.self_attn.q_proj` with `lora_A.weight` [r, in] and `lora_B.weight` [out, r]
 * in HF layout (held transposed, [in, r] and [r, out], like every linear weight here), and the
 * projection computes x W + b + (alpha / r) * dropout(x) A B.
 */

import { LORA_TARGETS, type LoraTarget } from './lora-targets.js';

export { LORA_TARGETS, type LoraTarget } from './lora-targets.js';

/** Where each target sits in a decoder layer (its module path under the layer). */
const TARGET_MODULE: Record<LoraTarget, string> = {
  q_proj: 'self_attn.q_proj',
  k_proj: 'self_attn.k_proj',
  v_proj: 'self_attn.v_proj',
  o_proj: 'self_attn.o_proj',
  gate_proj: 'mlp.gate_proj',
  up_proj: 'mlp.up_proj',
  down_proj: 'mlp.down_proj',
};

export interface LoraConfig {
  r: number;
  alpha: number;
  /** Dropout on the adapter's input while training (PEFT's lora_dropout). */
  dropout: number;
  targetModules: LoraTarget[];
}

/** Checks a LoRA config; `where` names its source in errors. */
export function checkLoraConfig(cfg: LoraConfig, where: string): LoraConfig {
  if (!Number.isInteger(cfg.r) || cfg.r < 1) throw new Error(`${where}: LoRA r must be a positive integer, got ${cfg.r}`);
  if (!(cfg.alpha > 0)) throw new Error(`${where}: LoRA alpha must be positive, got ${cfg.alpha}`);
  if (!(cfg.dropout >= 0 && cfg.dropout < 1)) throw new Error(`${where}: LoRA dropout must be in [0, 1), got ${cfg.dropout}`);
  if (cfg.targetModules.length === 0) throw new Error(`${where}: LoRA target_modules is empty`);
  for (const t of cfg.targetModules) {
    if (!(LORA_TARGETS as readonly string[]).includes(t)) throw new Error(`${where}: unknown LoRA target module "${t}" (known: ${LORA_TARGETS.join(', ')})`);
  }
  return cfg;
}

/** PEFT's scaling of the low-rank product (not rsLoRA). */
export function loraScale(cfg: LoraConfig): number {
  return cfg.alpha / cfg.r;
}

/** The module path of a target in layer i, as PEFT and HF name it (without PEFT's `base_model.model.`). */
export function loraModuleName(layer: number, target: LoraTarget): string {
  return `${layerPrefix(layer)}.${TARGET_MODULE[target]}`;
}

/** Input and output width of a target projection. */
function targetDims(cfg: Qwen2Config, target: LoraTarget): { in: number; out: number } {
  const h = cfg.hiddenSize;
  const q = cfg.numAttentionHeads * cfg.headDim;
  const kv = cfg.numKeyValueHeads * cfg.headDim;
  const inter = cfg.intermediateSize;
  const dims: Record<LoraTarget, { in: number; out: number }> = {
    q_proj: { in: h, out: q },
    k_proj: { in: h, out: kv },
    v_proj: { in: h, out: kv },
    o_proj: { in: q, out: h },
    gate_proj: { in: h, out: inter },
    up_proj: { in: h, out: inter },
    down_proj: { in: inter, out: h },
  };
  return dims[target];
}

export interface LoraParamSpec extends ParamSpec {
  layer: number;
  target: LoraTarget;
  part: 'A' | 'B';
}

/** The adapter's tensors in canonical order (layer, then target in LORA_TARGETS order, A then B), HF shapes. */
export function loraParamSpecs(cfg: Qwen2Config, lora: LoraConfig): LoraParamSpec[] {
  const targets = LORA_TARGETS.filter((t) => lora.targetModules.includes(t));
  const specs: LoraParamSpec[] = [];
  for (let layer = 0; layer < cfg.numHiddenLayers; layer++) {
    for (const target of targets) {
      const d = targetDims(cfg, target);
      const module = loraModuleName(layer, target);
      specs.push({ name: `${module}.lora_A.weight`, hfShape: [lora.r, d.in], kind: 'linear', layer, target, part: 'A' });
      specs.push({ name: `${module}.lora_B.weight`, hfShape: [d.out, lora.r], kind: 'linear', layer, target, part: 'B' });
    }
  }
  return specs;
}

/**
 * Initial adapter values in HF layout, as PEFT's default init: A ~ kaiming_uniform(a=sqrt(5)),
 * i.e. U(-1/sqrt(in), 1/sqrt(in)), and B = 0, so a new adapter leaves the model unchanged.
 */
export function initialLoraValue(spec: LoraParamSpec, seed: number): Float32Array {
  const count = spec.hfShape[0] * spec.hfShape[1];
  const out = new Float32Array(count);
  if (spec.part === 'B') return out;
  const bound = 1 / Math.sqrt(spec.hfShape[1]);
  const rng = new Rng(seed).fork(`lora:${spec.name}`);
  for (let i = 0; i < count; i++) out[i] = (2 * rng.next() - 1) * bound;
  return out;
}
