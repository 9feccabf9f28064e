import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initPrm } from '../../src/model/prm.js';
import { savePrmCheckpoint } from '../../src/model/checkpoint.js';
import { PrmTokenizer } from '../../src/model/tokenizer.js';
import { buildWordLevelTokenizer } from '../../src/model/word-tokenizer.js';
import type { Qwen2Config } from '../../src/model/config.js';

export const problems = [
  { problem: 'Ann has 3 apples and buys 4 more. How many apples does she have?', steps: ['She starts with 3 apples.', 'She buys 4, so 3 + 4 = 7.', 'The answer is 7.'] },
  { problem: 'A box has 12 pens. Half are red. How many are red?', steps: ['Half of 12 is 12 / 2 = 6.', 'So 6 pens are red.'] },
  { problem: 'What is 9 * 8?', steps: ['9 * 8 = 72.'] },
  { problem: 'Tom reads 15 pages a day for 6 days. How many pages?', steps: ['Each day he reads 15 pages.', 'Over 6 days: 15 * 6 = 90.', 'Check: 90 / 6 = 15.', 'He reads 90 pages.'] },
  { problem: 'Sam had 20 coins and lost 8. How many are left?', steps: ['20 - 8 = 12.', 'Sam has 12 coins left.'] },
];

/** A tiny random PRM over a word-level tokenizer, as the sim world trains one. */
export function tinyPrm(seed = 7) {
  const corpus = problems.flatMap((p) => [p.problem, ...p.steps]);
  const files = buildWordLevelTokenizer(corpus);
  const tokenizer = PrmTokenizer.fromFiles(files.tokenizerJson, files.tokenizerConfigJson);
  const config: Qwen2Config = {
    vocabSize: tokenizer.vocabSize,
    hiddenSize: 32,
    numHiddenLayers: 2,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    headDim: 8,
    intermediateSize: 64,
    ropeTheta: 10000,
    rmsNormEps: 1e-6,
    tieWordEmbeddings: false,
    maxPositionEmbeddings: 512,
    numLabels: 2,
    stepToken: tokenizer.stepToken,
    stepTokenId: tokenizer.stepTokenId,
    padTokenId: tokenizer.padTokenId,
    initializerRange: 0.5,
  };
  return { model: initPrm(config, seed), tokenizer, files };
}

/** Saves tinyPrm() as a checkpoint directory in a fresh temp dir. */
export async function tinyCheckpoint(): Promise<string> {
  const dir = join(mkdtempSync(join(tmpdir(), 'prmkit-score-')), 'prm');
  const { model, files } = tinyPrm();
  try {
    await savePrmCheckpoint(model, dir, files);
  } finally {
    model.dispose();
  }
  return dir;
}
