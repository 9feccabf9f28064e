import { loadWeightsInto, savePrmCheckpoint, type CheckpointFiles } from '../model/checkpoint.js';
import { loadAdapterWeightsInto, saveLoraAdapter } from '../model/peft-adapter.js';
import type { PrmModel } from '../model/prm.js';
import type { ModelIo } from './trainer.js';

/**
 * Checkpoint I/O of a PrmModel for the trainer: save writes the HF layout (config.json,
 * model.safetensors or shards with an index, tokenizer files); restore streams a checkpoint's
 * weights into the live variables tensor by tensor, so no second model is built and the
 * optimizer keeps pointing at the same tf.Variables. A model with a LoRA adapter saves and
 * restores the adapter and head only, as a PEFT adapter directory over `adapterBase`.
 */
export function prmModelIo(
  model: PrmModel,
  files: CheckpointFiles,
  opts: { maxShardBytes?: number; chunkBytes?: number; adapterBase?: string } = {},
): ModelIo {
  if (model.lora) {
    const baseModel = opts.adapterBase;
    if (!baseModel) throw new Error('a LoRA model needs the directory of its base model to save adapters');
    return {
      save: (dir) => saveLoraAdapter(model, dir, { ...files, chunkBytes: opts.chunkBytes, baseModel }),
      restore: (dir) => loadAdapterWeightsInto(model, dir),
    };
  }
  return {
    save: (dir) => savePrmCheckpoint(model, dir, { ...files, ...opts }),
    restore: (dir) => loadWeightsInto(model, dir, opts),
  };
}
