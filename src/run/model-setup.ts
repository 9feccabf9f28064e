import { isAbsolute, resolve } from 'node:path';
import { parseHfConfig, type Qwen2Config } from '../model/config.js';
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
    const files = buildWordLevelTokenizer(corpus(), { maxVocab: cfg.max_vocab, stepToken: cfg.step_token, spaces: cfg.spaces });
    const tokenizer = PrmTokenizer.fromFiles(files.tokenizerJson, files.tokenizerConfigJson, { stepToken: cfg.step_token });
    return { tokenizer, files: tokenizer.toFiles() as TokenizerFiles };
  }
  if (!cfg.path) throw new Error('tokenizer.path is required when tokenizer.kind is file');
  const dir = isAbsolute(cfg.path) ? cfg.path : resolve(baseDir, cfg.path);
  const tokenizer = await PrmTokenizer.fromDir(dir, { stepToken: cfg.step_token });
  return { tokenizer, files: tokenizer.toFiles() as TokenizerFiles };
}

/**
 * A Qwen2 config for a model trained from scratch with `tokenizer`, checked by the same parser
 * as a checkpoint's config.json (errors name `model.config` and the key).
 */
export function scratchConfig(c: ModelConfig['config'], tokenizer: PrmTokenizer): Qwen2Config {
  return parseHfConfig(
    {
      model_type: 'qwen2',
      ...c,
      vocab_size: tokenizer.vocabSize,
      num_labels: 2,
      step_token: tokenizer.stepToken,
      step_token_id: tokenizer.stepTokenId,
      pad_token_id: tokenizer.padTokenId,
      eos_token_id: tokenizer.eosTokenId,
    },
    'model.config',
  );
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
  opts: { progress?: boolean } = {},
): Promise<PrmModel> {
  if (cfg.init === 'scratch') return initPrm(scratchConfig(cfg.config, tokenizer), seed);
  const dir = pretrainedDir(cfg, baseDir);
  // A progress bar only where the run shows them (loadPrm's own default is on for large weights).
  const { model } = await loadPrm(dir, { seed, progress: opts.progress === false ? false : undefined });
  try {
    if (model.config.vocabSize < tokenizer.vocabSize) {
      // An adapter leaves the embedding as the base has it, so the base must hold the step token already.
      if (cfg.lora) throw new Error(`model.lora: the tokenizer has ${tokenizer.vocabSize} tokens but ${dir} embeds ${model.config.vocabSize}; LoRA keeps the base's embedding, so use a tokenizer the base covers`);
      model.resizeTokenEmbeddings(tokenizer.vocabSize, seed);
    }
    model.setTokens({ stepToken: tokenizer.stepToken, stepTokenId: tokenizer.stepTokenId, padTokenId: tokenizer.padTokenId });
    if (cfg.lora) {
      if (model.lora) throw new Error(`model.lora: ${dir} is already a LoRA adapter; merge it first (prmkit export --merge) or train from its base`);
      model.addLora({ r: cfg.lora.r, alpha: cfg.lora.alpha, dropout: cfg.lora.dropout, targetModules: cfg.lora.target_modules }, seed);
    }
    return model;
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** The directory of a pretrained model (model.path resolved against the recipe's directory). */
export function pretrainedDir(cfg: ModelConfig, baseDir: string): string {
  if (!cfg.path) throw new Error('model.path is required when model.init is pretrained');
  return isAbsolute(cfg.path) ? cfg.path : resolve(baseDir, cfg.path);
}
