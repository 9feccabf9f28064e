import * as tf from '@tensorflow/tfjs';
import { collateBatch, type EncodedSample } from '../model/encode.js';
import type { PrmModel } from '../model/prm.js';
import { HttpError } from './errors.js';

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
    const scores = await model.stepScoresAsync(inputIds, mask, collated.stepPositions);
    // JSON has no NaN: it would reach the client as null, a score that is not there.
    if (scores.some((row) => row.some((x) => !Number.isFinite(x)))) {
      throw new HttpError(500, "the model gave a score that is not a finite number (are the checkpoint's weights finite?)");
    }
    return scores;
  } finally {
    inputIds.dispose();
    mask.dispose();
  }
}
