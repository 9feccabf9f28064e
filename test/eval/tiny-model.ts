import { parseHfConfig } from '../../src/model/config.js';
import { initPrm } from '../../src/model/prm.js';
import { savePrmCheckpoint } from '../../src/model/checkpoint.js';
import { PrmTokenizer } from '../../src/model/tokenizer.js';
import { buildWordLevelTokenizer } from '../../src/model/word-tokenizer.js';

/**
 * Saves a randomly initialised tiny PRM (word-level tokenizer over `corpus`) to dir: enough to
 * run the --model paths end to end on CPU in well under a second per forward batch.
 */
export async function saveTinyPrm(dir: string, corpus: string[], opts: { maxPositions?: number; seed?: number } = {}): Promise<void> {
  const files = buildWordLevelTokenizer(corpus, { maxVocab: 512 });
  const tok = PrmTokenizer.fromFiles(files.tokenizerJson, files.tokenizerConfigJson);
  const config = parseHfConfig(
    {
      architectures: ['Qwen2ForProcessRewardModel'],
      model_type: 'qwen2',
      vocab_size: tok.vocabSize,
      hidden_size: 32,
      intermediate_size: 64,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      num_key_value_heads: 1,
      max_position_embeddings: opts.maxPositions ?? 512,
      rms_norm_eps: 1e-6,
      rope_theta: 10000,
      tie_word_embeddings: false,
      num_labels: 2,
    },
    'tiny-config',
  );
  const model = initPrm(config, opts.seed ?? 1);
  try {
    model.setTokens({ stepToken: tok.stepToken, stepTokenId: tok.stepTokenId, padTokenId: tok.padTokenId });
    await savePrmCheckpoint(model, dir, tok.toFiles());
  } finally {
    model.dispose();
  }
}
