import { loadWeightsInto, savePrmCheckpoint, type CheckpointFiles } from '../model/checkpoint.js';
import type { PrmModel } from '../model/prm.js';
import type { ModelIo } from './trainer.js';

/**
 * Checkpoint I/O of a PrmModel for the trainer: save writes the HF layout (config.json,
 * model.safetensors or shards with an index, tokenizer files); restore streams a checkpoint's
 * weights into the live variables tensor by tensor, so no second model is built and the
 * optimizer keeps pointing at the same tf.Variables.
 */
export function prmModelIo(model: PrmModel, files: CheckpointFiles, opts: { maxShardBytes?: number; chunkBytes?: number } = {}): ModelIo {
  return {
    save: (dir) => savePrmCheckpoint(model, dir, { ...files, ...opts }),
    restore: (dir) => loadWeightsInto(model, dir, opts),
  };
}
