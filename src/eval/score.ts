import * as tf from '@tensorflow/tfjs';
import type { PrmModel } from '../model/prm.js';
import { PrmTokenizer } from '../model/tokenizer.js';
import { loadPrm } from '../model/checkpoint.js';
import { bucketByLength, collateBatch, encodeSample, EncodeError, type EncodedSample } from '../model/encode.js';
import { progressBar, type Progress } from '../util/progress.js';

export interface ScoreOptions {
  /** Padded tokens per forward batch (batch size x longest sequence). Default 8192. */
  maxTokensPerBatch?: number;
  /** Longest sequence scored; default the model's max_position_embeddings. */
  maxLength?: number;
  /** System prompt of the encoding (default: encode's, Qwen2.5-Math-PRM's). */
  systemPrompt?: string | null;
  /** Called after each forward batch with sequences done and in total. */
  onProgress?: (done: number, total: number) => void;
  /** Shows a progress bar on stderr with this label. */
  progressLabel?: string;
}

export interface ScoreResult {
  /** One list per sample, one score per step; null for a sample listed in tooLong. */
  stepScores: (number[] | null)[];
  /** Indices of samples longer than maxLength: reported, never cut. */
  tooLong: number[];
}

export type ScoreInput = { problem: string; steps: readonly string[] };

export const DEFAULT_MAX_TOKENS_PER_BATCH = 8192;

/** A sample that cannot be encoded; index is its position in the input list. */
export class SampleError extends Error {
  override name = 'SampleError';
  constructor(
    readonly index: number,
    readonly field: string | undefined,
    readonly reason: string,
  ) {
    super(`sample ${index}: ${field ? `field "${field}": ` : ''}${reason}`);
  }
}

/**
 * Step scores with every step of a response read from ONE forward pass (the step tokens of a
 * causal model see exactly their prefix), sequences batched by length. Samples longer than
 * maxLength get null and are listed in tooLong.
 */
export async function scoreSamples(
  model: PrmModel,
  tok: PrmTokenizer,
  samples: readonly ScoreInput[],
  opts: ScoreOptions = {},
): Promise<ScoreResult> {
  const maxLength = opts.maxLength ?? model.config.maxPositionEmbeddings;
  const stepScores: (number[] | null)[] = new Array(samples.length).fill(null);
  const tooLong: number[] = [];
  const sequences: EncodedSample[] = [];
  const owner: number[] = [];
  samples.forEach((sample, i) => {
    const enc = encodeOrThrow(tok, sample, i, maxLength, opts.systemPrompt);
    if (enc.truncated) tooLong.push(i);
    else if (enc.nSteps === 0) stepScores[i] = [];
    else {
      sequences.push(enc);
      owner.push(i);
    }
  });
  await forwardInBatches(model, tok, sequences, opts, (seq, scores) => {
    stepScores[owner[seq]] = requireFinite(scores, owner[seq]);
  });
  return { stepScores, tooLong };
}

/**
 * The naive baseline: one sequence per step prefix (problem + steps 1..k), the score of step k
 * read at its last step token; batched the same way as scoreSamples so that the ratio of the
 * two measures the redundant forward work only. Scores equal scoreSamples' up to float error.
 */
export async function scoreByPrefixes(
  model: PrmModel,
  tok: PrmTokenizer,
  samples: readonly ScoreInput[],
  opts: ScoreOptions = {},
): Promise<ScoreResult> {
  const maxLength = opts.maxLength ?? model.config.maxPositionEmbeddings;
  const stepScores: (number[] | null)[] = new Array(samples.length).fill(null);
  const tooLong: number[] = [];
  const sequences: EncodedSample[] = [];
  const owner: { sample: number; step: number }[] = [];
  samples.forEach((sample, i) => {
    const full = encodeOrThrow(tok, sample, i, maxLength, opts.systemPrompt);
    if (full.truncated) {
      tooLong.push(i);
      return;
    }
    stepScores[i] = new Array<number>(sample.steps.length);
    for (let k = 1; k <= sample.steps.length; k++) {
      const prefix = encodeOrThrow(tok, { problem: sample.problem, steps: sample.steps.slice(0, k) }, i, maxLength, opts.systemPrompt);
      sequences.push({ ...prefix, stepPositions: [prefix.stepPositions[k - 1]], nSteps: 1 });
      owner.push({ sample: i, step: k - 1 });
    }
  });
  await forwardInBatches(model, tok, sequences, opts, (seq, scores) => {
    const { sample, step } = owner[seq];
    stepScores[sample]![step] = requireFinite(scores, sample)[0];
  });
  return { stepScores, tooLong };
}

/**
 * A score that is not a finite number (NaN from NaN weights, or an overflow) would be written
 * as null and read as "unscored": it is an error naming the sample instead.
 */
function requireFinite(scores: number[], index: number): number[] {
  const bad = scores.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0) {
    throw new SampleError(index, undefined, `the model gave step ${bad + 1} the score ${scores[bad]}, not a finite number (are the checkpoint's weights finite?)`);
  }
  return scores;
}

function encodeOrThrow(tok: PrmTokenizer, sample: ScoreInput, index: number, maxLength: number, systemPrompt: string | null | undefined): EncodedSample {
  try {
    return encodeSample(tok, sample, systemPrompt === undefined ? { maxLength } : { maxLength, systemPrompt });
  } catch (e) {
    if (e instanceof EncodeError) throw new SampleError(index, e.field, e.reason);
    throw new SampleError(index, undefined, (e as Error).message);
  }
}

async function forwardInBatches(
  model: PrmModel,
  tok: PrmTokenizer,
  sequences: readonly EncodedSample[],
  opts: ScoreOptions,
  deliver: (sequence: number, scores: number[]) => void,
): Promise<void> {
  const batches = bucketByLength(sequences, opts.maxTokensPerBatch ?? DEFAULT_MAX_TOKENS_PER_BATCH);
  const total = sequences.length;
  const bar: Progress | undefined = opts.progressLabel !== undefined ? progressBar(opts.progressLabel, total) : undefined;
  let done = 0;
  try {
    for (const batch of batches) {
      const collated = collateBatch(
        batch.map((j) => sequences[j]),
        { padTokenId: tok.padTokenId },
      );
      const shape: [number, number] = [collated.batchSize, collated.seqLen];
      const inputIds = tf.tensor2d(collated.inputIds, shape, 'int32');
      const mask = tf.tensor2d(collated.attentionMask, shape, 'int32');
      let scores: number[][];
      try {
        scores = await model.stepScoresAsync(inputIds, mask, collated.stepPositions);
      } finally {
        inputIds.dispose();
        mask.dispose();
      }
      batch.forEach((j, row) => deliver(j, scores[row]));
      done += batch.length;
      bar?.tick(batch.length);
      opts.onProgress?.(done, total);
    }
  } finally {
    bar?.stop();
  }
}

/**
 * A checkpoint directory ready to score: weights, its tokenizer with the step token named in
 * config.json, and the checks that the two agree (a tokenizer id beyond the embedding, or a step
 * token id other than the one the model was trained on, would give garbage scores silently).
 */
export async function loadScoringModel(dir: string): Promise<{ model: PrmModel; tokenizer: PrmTokenizer }> {
  const { model, files } = await loadPrm(dir);
  try {
    if (files.tokenizerJson === undefined) throw new Error(`${dir}: no tokenizer.json (a PRM checkpoint needs its tokenizer)`);
    let tokenizer: PrmTokenizer;
    try {
      tokenizer = PrmTokenizer.fromFiles(files.tokenizerJson, files.tokenizerConfigJson, { stepToken: model.config.stepToken });
    } catch (e) {
      throw new Error(`${dir}: tokenizer: ${(e as Error).message}`);
    }
    if (tokenizer.vocabSize > model.config.vocabSize) {
      throw new Error(`${dir}: the tokenizer has ${tokenizer.vocabSize} ids but the model's embedding only ${model.config.vocabSize} rows`);
    }
    const expected = model.config.stepTokenId;
    if (expected !== undefined && expected !== tokenizer.stepTokenId) {
      throw new Error(`${dir}: config.json says step_token_id ${expected}, but the tokenizer gives ${tokenizer.stepToken} the id ${tokenizer.stepTokenId}`);
    }
    return { model, tokenizer };
  } catch (e) {
    model.dispose();
    throw e;
  }
}
