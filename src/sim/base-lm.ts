import { savePrmCheckpoint } from '../model/checkpoint.js';
import { encodeSample } from '../model/encode.js';
import { initPrm } from '../model/prm.js';
import { PrmTokenizer } from '../model/tokenizer.js';
import { buildWordLevelTokenizer, type WordSpaces } from '../model/word-tokenizer.js';
import type { ModelConfig } from '../recipes/schema.js';
import { scratchConfig } from '../run/model-setup.js';
import { pretrainCausalLm, type LmPretrainConfig, type LmPretrainResult } from '../train/lm-pretrain.js';
import { DEFAULT_POLICY_OPTIONS } from './policy.js';
import { goldSteps } from './steps.js';
import { simProblems, simSolutions, type SimWorldOptions } from './world.js';

/**
 * A sim base model: a small causal LM pretrained on the gold solutions of a sim world, the
 * stand-in for the instruct LM a real PRM starts from. Trained from scratch on step labels
 * alone, a small PRM learns a range check and a position prior but not to compare a written
 * result with the computed one; an LM that has learned to write the solutions computes every
 * result and operand, and a PRM fine-tuned from it only has to notice where the text departs
 * from what it would have written. The result is a model directory (config.json,
 * model.safetensors, tokenizer files, base-lm.json) that recipes load with
 * `model.init: pretrained` and `tokenizer.kind: file`.
 */
export interface SimBaseLmOptions {
  /** The world whose gold solutions the LM reads (its policy only adds words to the vocabulary). */
  world: SimWorldOptions;
  /** Gold solutions in the corpus: one per generated problem. */
  problems: number;
  /**
   * Solutions by the world's own policy, slips and rechecks included (other problems than the
   * gold ones), as a pretraining corpus holds wrong solutions beside right ones. An LM that has
   * read them has seen every kind of slip in context; measured, it is what lets a PRM
   * fine-tuned from it (with train.lm_loss_weight) learn to check in-range results.
   */
  policy?: number;
  /**
   * Solutions (of other problems) by a policy that notices each slip at the next step and says so
   * ("Wait, let me recheck ..."), as instruct models do: the LM learns to expect that sentence
   * after a wrong step, which is the feature a PRM reads at the step token. No labels are used.
   */
  reflective?: number;
  /** Problems, policy text and initial weights are functions of it. */
  seed: number;
  /** The word-level tokenizer's spaces (model/word-tokenizer.ts); default 'separate'. */
  spaces?: WordSpaces;
  /** Decoder size, as a recipe's model.config (vocabulary and special tokens come from the tokenizer built here). */
  model: ModelConfig['config'];
  lm: LmPretrainConfig;
  log?: (line: string) => void;
  progress?: boolean;
}

export interface SimBaseLmResult extends LmPretrainResult {
  parameters: number;
  vocab_size: number;
  sequences: number;
}

/** Policy solutions whose words join the vocabulary (rechecks and slips use words gold text lacks). */
const VOCAB_POLICY_SOLUTIONS = 5000;

/** The world's policy, made to notice every slip at the next step with an explicit recheck. */
export function reflectiveWorld(world: SimWorldOptions): SimWorldOptions {
  const always = { arithmetic: 1, wrong_operand: 1, skipped_step: 1, repeated_step: 1, other: 1 };
  // Recovery odds are rates x 2 x strength x recoveryScale: a scale of 1/(2 x strength) makes them 1.
  const strength = world.policy?.strength ?? DEFAULT_POLICY_OPTIONS.strength;
  return { ...world, policy: { ...world.policy, recoveryRates: always, recoveryScale: 1 / (2 * Math.max(strength, 1e-3)), compensateShare: 0 } };
}

export async function pretrainSimBaseLm(out: string, opts: SimBaseLmOptions): Promise<SimBaseLmResult> {
  const log = opts.log ?? (() => {});
  const problems = simProblems(opts.problems, opts.seed, opts.world, 'base');
  const gold = problems.map((p) => ({ problem: p.text, steps: goldSteps(p) }));
  const policy = simSolutions(problems.slice(0, VOCAB_POLICY_SOLUTIONS), 1, opts.seed, opts.world);
  const policyCorpus = opts.policy ? simSolutions(simProblems(opts.policy, opts.seed + 2, opts.world, 'policy'), 1, opts.seed + 2, opts.world) : [];
  const reflective = opts.reflective ? simSolutions(simProblems(opts.reflective, opts.seed + 1, opts.world, 'reflect'), 1, opts.seed + 1, reflectiveWorld(opts.world)) : [];
  const files = buildWordLevelTokenizer([...gold, ...policy, ...policyCorpus, ...reflective].flatMap((s) => [s.problem, ...s.steps]), { spaces: opts.spaces });
  const tokenizer = PrmTokenizer.fromFiles(files.tokenizerJson, files.tokenizerConfigJson);
  const config = scratchConfig(opts.model, tokenizer);
  const model = initPrm(config, opts.seed);
  try {
    // The PRM's own encoding (chat template, step tokens), so fine-tuning reads familiar text.
    const sequences = [...gold, ...policyCorpus, ...reflective].map((s) => Int32Array.from(encodeSample(tokenizer, s, { maxLength: config.maxPositionEmbeddings }).inputIds));
    log(`base LM: ${gold.length} gold, ${policyCorpus.length} policy and ${reflective.length} reflective solutions, vocabulary ${tokenizer.vocabSize}, ${model.numParameters()} parameters`);
    const result = await pretrainCausalLm({ model, sequences, config: opts.lm, padTokenId: tokenizer.padTokenId, seed: opts.seed, log, progress: opts.progress });
    const summary: SimBaseLmResult = { ...result, parameters: model.numParameters(), vocab_size: tokenizer.vocabSize, sequences: sequences.length };
    const provenance = { kind: 'prmkit sim base LM', world: opts.world, problems: opts.problems, policy: opts.policy ?? 0, reflective: opts.reflective ?? 0, spaces: opts.spaces ?? 'separate', seed: opts.seed, lm: opts.lm, result: summary };
    await savePrmCheckpoint(model, out, { ...tokenizer.toFiles(), extraFiles: { 'base-lm.json': `${JSON.stringify(provenance, null, 2)}\n` } });
    log(`base LM: next-token loss ${result.first_loss.toFixed(3)} -> ${result.last_loss.toFixed(3)} in ${result.seconds.toFixed(0)} s; saved ${out}`);
    return summary;
  } finally {
    model.dispose();
  }
}
