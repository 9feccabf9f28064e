import * as tf from '@tensorflow/tfjs';
import { loadPrm, savePrmCheckpoint, type CheckpointFiles } from '../model/checkpoint.js';
import type { PrmModel } from '../model/prm.js';
import type { ModelIo } from './trainer.js';

/**
 * Checkpoint I/O of a PrmModel for the trainer: save writes the HF layout (config.json,
 * model.safetensors, tokenizer files); restore reads a checkpoint and copies its weights into
 * the live variables, so the optimizer keeps pointing at the same tf.Variables.
 */
export function prmModelIo(model: PrmModel, files: CheckpointFiles): ModelIo {
  return {
    save: (dir) => savePrmCheckpoint(model, dir, files),
    async restore(dir) {
      const { model: loaded } = await loadPrm(dir);
      try {
        for (const [name, target] of model.variables) {
          const source = loaded.variables.get(name);
          if (!source) throw new Error(`${dir}: checkpoint lacks ${name}`);
          if (source.shape.join('x') !== target.shape.join('x')) {
            throw new Error(`${dir}: ${name} has shape [${source.shape}], the model has [${target.shape}]`);
          }
          tf.tidy(() => target.assign(source));
        }
      } finally {
        loaded.dispose();
      }
    },
  };
}
