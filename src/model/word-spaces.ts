/**
 * How the word-level tokenizer (word-tokenizer.ts) treats spaces: each its own token, joined to
 * the piece after it, joined to words and signs only, or dropped. Its own module so the recipe
 * schema can name the modes without loading a tokenizer.
 */
export const WORD_SPACES_MODES = ['separate', 'prefix', 'prefix-words', 'drop'] as const;

export type WordSpaces = (typeof WORD_SPACES_MODES)[number];
