import { isAbsolute, resolve } from 'node:path';
import type { Qwen2Config } from '../model/config.js';
import { loadPrm } from '../model/checkpoint.js';
import { initPrm, type PrmModel } from '../model/prm.js';
import { PrmTokenizer } from '../model/tokenizer.js';
import { buildWordLevelTokenizer } from '../model/word-tokenizer.js';
import type { ModelConfig, TokenizerConfig } from '../recipes/schema.js';

/**
 * Tokenizer and model for a run: a word-level tokenizer built from the training corpus, or the
 * tokenizer of a directory; a model from scratch (recipe config) or from a checkpoint / causal
 * LM directory, its embedding grown when the step token had to be added.
 */
export interface TokenizerFiles {
  tokenizerJson: string;
  tokenizerConfigJson: string;
}

export async function buildTokenizer(
  cfg: TokenizerConfig,
  corpus: () => Iterable<string>,
  baseDir: string,
): Promise<{ tokenizer: PrmTokenizer; files: TokenizerFiles }> {
  if (cfg.kind === 'word-level') {
    const files = buildWordLevelTokenizer(corpus(), { maxVocab: cfg.max_vocab, stepToken: cfg.step_token });
    const tokenizer = PrmTokenizer.fromFiles(files.tokenizerJson, files.tokenizerConfigJson, { stepToken: cfg.step_token });
    return { tokenizer, files: tokenizer.toFiles() as TokenizerFiles };
  }
  if (!cfg.path) throw new Error('tokenizer.path is required when tokenizer.kind is file');
  const dir = isAbsolute(cfg.path) ? cfg.path : resolve(baseDir, cfg.path);
  const tokenizer = await PrmTokenizer.fromDir(dir, { stepToken: cfg.step_token });
  return { tokenizer, files: tokenizer.toFiles() as TokenizerFiles };
}

/** A Qwen2 config for a model trained from scratch with `tokenizer`. */
export function scratchConfig(c: ModelConfig['config'], tokenizer: PrmTokenizer): Qwen2Config {
  if (c.hidden_size % c.num_attention_heads !== 0) {
    throw new Error(`model.config.hidden_size ${c.hidden_size} is not divisible by num_attention_heads ${c.num_attention_heads}`);
  }
  if (c.num_attention_heads % c.num_key_value_heads !== 0) {
    throw new Error(`model.config.num_key_value_heads ${c.num_key_value_heads} does not divide num_attention_heads ${c.num_attention_heads}`);
  }
  const headDim = c.hidden_size / c.num_attention_heads;
  if (headDim % 2 !== 0) throw new Error(`model.config: head dimension ${headDim} must be even (rotary embeddings)`);
  return {
    vocabSize: tokenizer.vocabSize,
    hiddenSize: c.hidden_size,
    numHiddenLayers: c.num_hidden_layers,
    numAttentionHeads: c.num_attention_heads,
    numKeyValueHeads: c.num_key_value_heads,
    headDim,
    intermediateSize: c.intermediate_size,
    ropeTheta: c.rope_theta,
    rmsNormEps: c.rms_norm_eps,
    tieWordEmbeddings: c.tie_word_embeddings,
    maxPositionEmbeddings: c.max_position_embeddings,
    initializerRange: c.initializer_range,
    numLabels: 2,
    stepToken: tokenizer.stepToken,
    stepTokenId: tokenizer.stepTokenId,
    padTokenId: tokenizer.padTokenId,
    eosTokenId: tokenizer.eosTokenId,
  };
}

/**
 * The model of a run. Pretrained directories bring their own tokenizer files (returned) unless
 * the recipe names another tokenizer.
 */
export async function createModel(
  cfg: ModelConfig,
  tokenizer: PrmTokenizer,
  seed: number,
  baseDir: string,
): Promise<PrmModel> {
  if (cfg.init === 'scratch') return initPrm(scratchConfig(cfg.config, tokenizer), seed);
  if (!cfg.path) throw new Error('model.path is required when model.init is pretrained');
  const dir = isAbsolute(cfg.path) ? cfg.path : resolve(baseDir, cfg.path);
  const { model } = await loadPrm(dir, { seed });
  if (model.config.vocabSize < tokenizer.vocabSize) model.resizeTokenEmbeddings(tokenizer.vocabSize, seed);
  model.setTokens({ stepToken: tokenizer.stepToken, stepTokenId: tokenizer.stepTokenId, padTokenId: tokenizer.padTokenId });
  return model;
}
