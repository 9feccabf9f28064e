import { CHATML_TEMPLATE, DEFAULT_STEP_TOKEN } from './tokenizer.js';
import { DEFAULT_SYSTEM_PROMPT } from './encode.js';
import type { WordSpaces } from './word-spaces.js';

export { WORD_SPACES_MODES, type WordSpaces } from './word-spaces.js';

/**
 * Pieces of the word-level tokenizer: single whitespace characters (a run of them is never
 * [UNK]), single digits (so "47" is "4" "7" and
 * arithmetic generalises across numbers), letter runs (words) and single other characters.
 * Written once and used both in tokenizer.json (Oniguruma in Python, translated by
 * @huggingface/tokenizers in JS) and below to count the vocabulary, so both agree.
 */
export const WORD_PIECE_PATTERN = String.raw`\s|\p{N}|\p{L}+|[^\s\p{L}\p{N}]`;

/**
 * The same pieces with a single space joined to the piece after it (" has", " 4"), as GPT-2-style
 * BPE does. Sequences are about half as long as with separate spaces, so a step is half as far
 * from the numbers it checks and a training step costs half as much.
 */
export const WORD_PIECE_PATTERN_PREFIX_SPACE = String.raw` ?\p{N}| ?\p{L}+| ?[^\s\p{L}\p{N}]|\s`;

/**
 * A space joined to the word or sign after it but never to a digit, as Qwen2's pre-tokenizer
 * does: " 47" is " " "4" "7", so a digit is the same token wherever it stands in a number (with
 * `prefix`, the first digit " 4" and an inner "4" are two different tokens to learn as one).
 */
export const WORD_PIECE_PATTERN_PREFIX_WORDS = String.raw` ?\p{L}+| ?[^\s\p{L}\p{N}]|\p{N}|\s`;

/**
 * The same pieces with whitespace as a delimiter only, never a token: a digit is one token
 * wherever it stands and a sequence is as short as with `prefix`. Decoding joins the pieces
 * without spaces, so it reads back the tokens, not the text.
 */
export const WORD_PIECE_PATTERN_DROP_SPACE = String.raw`\p{N}|\p{L}+|[^\s\p{L}\p{N}]`;

const PATTERNS: Record<WordSpaces, string> = {
  separate: WORD_PIECE_PATTERN,
  prefix: WORD_PIECE_PATTERN_PREFIX_SPACE,
  'prefix-words': WORD_PIECE_PATTERN_PREFIX_WORDS,
  drop: WORD_PIECE_PATTERN_DROP_SPACE,
};

/** tokenizer.json's pre_tokenizer: the pieces, after whitespace is cut out when spaces are dropped. */
function preTokenizerFor(spaces: WordSpaces, pattern: string): Record<string, unknown> {
  const split = { type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false };
  return spaces === 'drop' ? { type: 'Sequence', pretokenizers: [{ type: 'WhitespaceSplit' }, split] } : split;
}

export const WORD_UNK_TOKEN = '[UNK]';

export interface WordTokenizerOptions {
  /** Upper bound on the vocabulary, special and base tokens included. Default 4096. */
  maxVocab?: number;
  /** Default '<extra_0>'. */
  stepToken?: string;
  /** Default 'separate'. */
  spaces?: WordSpaces;
}

/**
 * A tiny word-level tokenizer for the sim world, so a small PRM trains from scratch on CPU:
 * ids 0.. are the special tokens (<|endoftext|> pad, <|im_start|>, <|im_end|> eos, the step
 * token, [UNK]), then digits, printable ASCII punctuation and the chat template's own words,
 * then the corpus' most frequent pieces (ties alphabetical, so the result is deterministic).
 * The decoder concatenates pieces, so decoding gives the text back (except [UNK] pieces).
 */
export function buildWordLevelTokenizer(
  corpus: Iterable<string>,
  opts: WordTokenizerOptions = {},
): { tokenizerJson: string; tokenizerConfigJson: string } {
  const stepToken = opts.stepToken ?? DEFAULT_STEP_TOKEN;
  const spaces = opts.spaces ?? 'separate';
  const pattern = PATTERNS[spaces];
  const pieces = (text: string): string[] => text.match(new RegExp(pattern, 'gu')) ?? [];
  const specials = ['<|endoftext|>', '<|im_start|>', '<|im_end|>', stepToken, WORD_UNK_TOKEN];
  if (new Set(specials).size !== specials.length) throw new Error(`step token ${stepToken} collides with another special token`);

  const base: string[] = [];
  for (let c = 0; c < 10; c++) base.push(String(c));
  for (let c = 0x21; c < 0x7f; c++) {
    const ch = String.fromCharCode(c);
    if (!/[0-9A-Za-z]/.test(ch)) base.push(ch);
  }
  // The template's fixed text (roles, newlines, the default system prompt) must never be [UNK].
  // Each role word on its own: the template writes it straight after <|im_start|>, with no space
  // before it, which is a different piece from ' user' when spaces are joined to the next word.
  for (const text of ['system', 'user', 'assistant', ' \n\t\r', DEFAULT_SYSTEM_PROMPT]) base.push(...pieces(text));
  // With spaces joined, a sign (or, with `prefix`, a digit) after a space is one piece: never [UNK] either.
  const joinsSpaceTo = spaces === 'prefix' ? /\S/ : spaces === 'prefix-words' ? /[^\s0-9]/ : null;
  if (joinsSpaceTo) base.push(...base.filter((t) => t.length === 1 && joinsSpaceTo.test(t)).map((t) => ` ${t}`));

  const maxVocab = opts.maxVocab ?? 4096;
  const vocab = new Map<string, number>();
  const add = (token: string) => {
    if (!vocab.has(token)) vocab.set(token, vocab.size);
  };
  for (const t of specials) add(t);
  for (const t of base) add(t);
  if (vocab.size > maxVocab) throw new Error(`maxVocab ${maxVocab} is below the ${vocab.size} special and base tokens`);

  const counts = new Map<string, number>();
  for (const text of corpus) {
    for (const piece of pieces(text)) if (!vocab.has(piece)) counts.set(piece, (counts.get(piece) ?? 0) + 1);
  }
  const ranked = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  for (const [piece] of ranked) {
    if (vocab.size >= maxVocab) break;
    add(piece);
  }

  const addedTokens = specials.map((content) => ({
    id: vocab.get(content)!,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: preTokenizerFor(spaces, pattern),
    post_processor: null,
    decoder: { type: 'Fuse' },
    model: { type: 'WordLevel', vocab: Object.fromEntries(vocab), unk_token: WORD_UNK_TOKEN },
  };
  const config = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: null,
    eos_token: '<|im_end|>',
    pad_token: '<|endoftext|>',
    unk_token: WORD_UNK_TOKEN,
    additional_special_tokens: ['<|im_start|>', '<|im_end|>', stepToken],
    added_tokens_decoder: Object.fromEntries(
      addedTokens.map(({ id, ...rest }) => [String(id), rest]),
    ),
    clean_up_tokenization_spaces: false,
    split_special_tokens: false,
    model_max_length: 1_000_000,
    chat_template: CHATML_TEMPLATE,
  };
  return { tokenizerJson: JSON.stringify(tokenizer, null, 1), tokenizerConfigJson: JSON.stringify(config, null, 2) };
}
