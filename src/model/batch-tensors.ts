import * as tf from '@tensorflow/tfjs';
import type { CollatedBatch } from './encode.js';

// Kept apart from encode.ts so that tokenizing (server worker threads) does not load TensorFlow.js.

/** The ids and attention mask of a collated batch as [batchSize, seqLen] int32 tensors. */
export function batchTensors(collated: CollatedBatch): { ids: tf.Tensor2D; mask: tf.Tensor2D } {
  const shape: [number, number] = [collated.batchSize, collated.seqLen];
  return { ids: tf.tensor2d(collated.inputIds, shape, 'int32'), mask: tf.tensor2d(collated.attentionMask, shape, 'int32') };
}
