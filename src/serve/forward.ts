import * as tf from '@tensorflow/tfjs';
import { collateBatch, type EncodedSample } from '../model/encode.js';
import type { PrmModel } from '../model/prm.js';

/**
 * Step scores of encoded sequences in ONE forward pass: the batcher has already chosen the
 * rows and bounded their padded size, so unlike scoreSamples nothing is re-bucketed here.
 */
export async function forwardOnce(model: PrmModel, padTokenId: number, sequences: readonly EncodedSample[]): Promise<number[][]> {
  const collated = collateBatch(sequences, { padTokenId });
  const shape: [number, number] = [collated.batchSize, collated.seqLen];
  const inputIds = tf.tensor2d(collated.inputIds, shape, 'int32');
  const mask = tf.tensor2d(collated.attentionMask, shape, 'int32');
  try {
    return await model.stepScoresAsync(inputIds, mask, collated.stepPositions);
  } finally {
    inputIds.dispose();
    mask.dispose();
  }
}
