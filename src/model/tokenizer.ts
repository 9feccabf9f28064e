import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { INPUT_CAPS, InputFileError, readInputText } from '../util/input-file.js';
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';

/** The step token of Qwen2.5-Math-PRM: appended after every step; its logits give the step score. */
export const DEFAULT_STEP_TOKEN = '<extra_0>';

/**
 * ChatML as Qwen2.5 renders it for a system, user and assistant turn (with trim-style whitespace
 * control so Python jinja2 and @huggingface/jinja give the same string). Used when a
 * tokenizer_config.json carries no chat template (our word-level tokenizer, bare tokenizer.json).
 */
export const CHATML_TEMPLATE =
  "{%- for message in messages -%}" +
  "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' -}}" +
  '{%- endfor -%}' +
  "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}";

export interface PrmTokenizerOptions {
  /** Default '<extra_0>'. Added as a special token when the vocabulary lacks it. */
  stepToken?: string;
  /** Overrides the chat template of tokenizer_config.json (e.g. CHATML_TEMPLATE for a Qwen3 file). */
  chatTemplate?: string;
}

interface AddedTokenJson {
  id: number;
  content: string;
  single_word?: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
  normalized?: boolean;
  special?: boolean;
}

interface TokenizerJson {
  added_tokens?: AddedTokenJson[];
  model: { type?: string; vocab: Record<string, number> | Array<[string, number]>; unk_token?: string | null };
  [key: string]: unknown;
}

type TokenizerConfigJson = Record<string, unknown>;

/**
 * The tokenizer of a PRM checkpoint: tokenizer.json through @huggingface/tokenizers, the chat
 * template of tokenizer_config.json through @huggingface/jinja, and the step token.
 *
 * @huggingface/tokenizers 0.2.0 has no API to add tokens after construction, so a missing step
 * token is appended to the tokenizer.json's added_tokens (id = current vocabulary size) before the
 * Tokenizer is built; toFiles() returns those edited files so a saved checkpoint carries it.
 */
export class PrmTokenizer {
  readonly stepToken: string;
  readonly stepTokenId: number;
  readonly padTokenId: number;
  readonly eosTokenId: number;
  /** Largest token id + 1 (model vocabulary plus added tokens); the embedding needs >= this many rows. */
  readonly vocabSize: number;
  /** True when the step token was missing and got a new id (the model must grow its embedding). */
  readonly addedStepToken: boolean;
  readonly chatTemplate: string;

  private readonly tokenizer: Tokenizer;
  private readonly template: Template;
  /** See minTokens: the most characters of each class one token covers, when known. */
  private readonly coverage: ClassCoverage | undefined;
  private readonly specialTokenValues: Record<string, string>;

  private constructor(
    private readonly tokenizerJson: TokenizerJson,
    private readonly tokenizerConfig: TokenizerConfigJson,
    opts: PrmTokenizerOptions,
  ) {
    this.stepToken = opts.stepToken ?? DEFAULT_STEP_TOKEN;
    if (this.stepToken.length === 0) throw new Error('the step token must not be empty');
    if (!tokenizerJson.model || typeof tokenizerJson.model !== 'object' || !tokenizerJson.model.vocab) {
      throw new Error('tokenizer.json: field "model.vocab" is missing');
    }
    tokenizerJson.added_tokens ??= [];

    const vocabIds = modelVocabIds(tokenizerJson);
    let vocabSize = 0;
    for (const id of vocabIds.values()) vocabSize = Math.max(vocabSize, id + 1);
    for (const t of tokenizerJson.added_tokens) vocabSize = Math.max(vocabSize, t.id + 1);

    // A step token that is only a plain vocabulary entry would be split by the pre-tokenizer,
    // so it is registered as an added special token either way; only a missing one grows the vocabulary.
    let stepAdded = tokenizerJson.added_tokens.find((t) => t.content === this.stepToken);
    this.addedStepToken = false;
    if (!stepAdded) {
      const existingId = vocabIds.get(this.stepToken);
      stepAdded = {
        id: existingId ?? vocabSize,
        content: this.stepToken,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      };
      tokenizerJson.added_tokens.push(stepAdded);
      registerInConfig(tokenizerConfig, stepAdded);
      if (existingId === undefined) {
        this.addedStepToken = true;
        vocabSize += 1;
      }
    }
    this.vocabSize = vocabSize;
    this.stepTokenId = stepAdded.id;

    this.tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
    installFastBpeCache(this.tokenizer);
    this.coverage = classCoverage(tokenizerJson);

    const stepIds = this.encodeText(this.stepToken);
    if (stepIds.length !== 1 || stepIds[0] !== this.stepTokenId) {
      throw new Error(`step token ${this.stepToken} does not encode to the single id ${this.stepTokenId} (got [${stepIds.join(', ')}])`);
    }

    const eos = this.idOfConfigToken('eos_token') ?? this.tokenizer.token_to_id('<|im_end|>') ?? this.tokenizer.token_to_id('<|endoftext|>');
    const pad =
      this.idOfConfigToken('pad_token') ?? this.tokenizer.token_to_id('<|endoftext|>') ?? eos ?? this.idOfConfigToken('unk_token');
    if (pad === undefined) throw new Error('tokenizer has no pad, <|endoftext|>, eos or unk token to pad batches with');
    this.padTokenId = pad;
    this.eosTokenId = eos ?? pad;

    this.chatTemplate = opts.chatTemplate ?? configChatTemplate(tokenizerConfig) ?? CHATML_TEMPLATE;
    this.template = new Template(this.chatTemplate);
    this.specialTokenValues = {};
    for (const key of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) {
      const value = tokenContent(tokenizerConfig[key]);
      if (value !== undefined) this.specialTokenValues[key] = value;
    }
  }

  static fromFiles(tokenizerJson: string, tokenizerConfigJson?: string, opts: PrmTokenizerOptions = {}): PrmTokenizer {
    const tj = parseJsonObject(tokenizerJson, 'tokenizer.json') as unknown as TokenizerJson;
    const tc = tokenizerConfigJson === undefined ? {} : parseJsonObject(tokenizerConfigJson, 'tokenizer_config.json');
    return new PrmTokenizer(tj, tc, opts);
  }

  /**
   * Reads DIR/tokenizer.json and, when present, DIR/tokenizer_config.json; the chat template of
   * DIR/chat_template.jinja (where transformers 5 saves it) is used when the config has none.
   */
  static async fromDir(dir: string, opts: PrmTokenizerOptions = {}): Promise<PrmTokenizer> {
    const tokenizerJson = await readInputText(join(dir, 'tokenizer.json'), INPUT_CAPS.tokenizer).catch((e: Error) => {
      throw new Error(e.message.replace(/: no such file$/, ': not found'));
    });
    const configPath = join(dir, 'tokenizer_config.json');
    const hasConfig = await access(configPath).then(
      () => true,
      () => false,
    );
    const configJson = hasConfig ? await readInputText(configPath) : undefined;
    const jinjaPath = join(dir, 'chat_template.jinja');
    const jinja = await readInputText(jinjaPath).catch((e: Error) => {
      if (e instanceof InputFileError && e.message.endsWith('no such file')) return undefined;
      throw e;
    });
    try {
      const hasConfigTemplate = configJson !== undefined && configChatTemplate(parseJsonObject(configJson, 'tokenizer_config.json')) !== undefined;
      const chatTemplate = opts.chatTemplate ?? (hasConfigTemplate ? undefined : jinja);
      return PrmTokenizer.fromFiles(tokenizerJson, configJson, chatTemplate === undefined ? opts : { ...opts, chatTemplate });
    } catch (e) {
      throw new Error(`${dir}: ${(e as Error).message}`);
    }
  }

  /** The tokenizer files as this tokenizer uses them (step token registered, chat template set). */
  toFiles(): { tokenizerJson: string; tokenizerConfigJson: string } {
    const config = { ...this.tokenizerConfig, chat_template: this.chatTemplate };
    return { tokenizerJson: JSON.stringify(this.tokenizerJson), tokenizerConfigJson: JSON.stringify(config, null, 2) };
  }

  /**
   * A lower bound on encodeText(text).length, from character counts only (no tokenizing):
   * callers refuse or cut text that cannot fit before paying for its tokenization, which grows
   * faster than linearly on long words. 0 when the tokenizer gives no bound (WordLevel: any word
   * is one token).
   */
  minTokens(text: string): number {
    return this.minTokensOf(countClasses(text));
  }

  /** minTokens for text whose class counts are known (sums of countClasses over its pieces). */
  minTokensOf(counts: ClassCounts): number {
    const c = this.coverage;
    if (!c) return 0;
    // A composing normalizer (NFC) may merge an ASCII character with a following combining
    // mark: each such merge uses up a non-ASCII character, so those are the most ASCII lost.
    const slack = c.composes ? counts.nonAscii : 0;
    return Math.max(
      0,
      Math.ceil((counts.letters - slack) / c.letters),
      Math.ceil((counts.digits - slack) / c.digits),
      Math.ceil((counts.other - slack) / c.other),
    );
  }

  /** Token ids of text, without any special tokens added around it. */
  encodeText(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    if (ids.length === 0) return '';
    return this.tokenizer.decode(ids, { skip_special_tokens: opts.skipSpecialTokens ?? false, clean_up_tokenization_spaces: false });
  }

  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  /**
   * The chat template rendered for one conversation: system (omitted when null), user, and, when
   * given, the whole assistant message (closed, as Qwen2.5-Math-PRM scores it); without an
   * assistant message the generation prompt is appended instead.
   */
  renderChat(system: string | null, user: string, assistant?: string): string {
    const messages: { role: string; content: string }[] = [];
    if (system !== null) messages.push({ role: 'system', content: system });
    messages.push({ role: 'user', content: user });
    if (assistant !== undefined) messages.push({ role: 'assistant', content: assistant });
    return this.template.render({ ...this.specialTokenValues, messages, add_generation_prompt: assistant === undefined });
  }

  private idOfConfigToken(key: string): number | undefined {
    const content = tokenContent(this.tokenizerConfig[key]);
    return content === undefined ? undefined : this.tokenizer.token_to_id(content);
  }
}

/** Characters of a text by class: ASCII letters, ASCII digits, other ASCII, and UTF-16 units beyond ASCII. */
export interface ClassCounts {
  letters: number;
  digits: number;
  other: number;
  nonAscii: number;
}

export function countClasses(text: string): ClassCounts {
  let letters = 0;
  let digits = 0;
  let other = 0;
  let nonAscii = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80) nonAscii++;
    else if ((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a)) letters++;
    else if (c >= 0x30 && c <= 0x39) digits++;
    else other++;
  }
  return { letters, digits, other, nonAscii };
}

export function addClassCounts(a: ClassCounts, b: ClassCounts): ClassCounts {
  return { letters: a.letters + b.letters, digits: a.digits + b.digits, other: a.other + b.other, nonAscii: a.nonAscii + b.nonAscii };
}

interface ClassCoverage {
  letters: number;
  digits: number;
  other: number;
  composes: boolean;
}

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
/** Normalizers that never turn ASCII into something else except by composition (counted as slack). */
const SAFE_NORMALIZERS = new Set(['NFC', 'NFD', 'NFKC', 'NFKD', 'Lowercase']);

/**
 * For a byte-level BPE vocabulary: the most ASCII letters, digits and other ASCII characters any
 * one token (vocabulary entry or added token) covers. Every token of an encoding covers at most
 * that many of each class, so count / coverage bounds the token count from below. Undefined when
 * the argument does not hold: another model type, a normalizer that may delete or rewrite text,
 * or a single letter or digit missing from the vocabulary (a fused unknown token could cover a
 * whole run of them).
 */
function classCoverage(tj: TokenizerJson): ClassCoverage | undefined {
  if (tj.model.type !== undefined && tj.model.type !== 'BPE') return undefined;
  if (!JSON.stringify([tj.pre_tokenizer ?? null, tj.decoder ?? null]).includes('"ByteLevel"')) return undefined;
  const normalizers: string[] = [];
  const collect = (n: unknown): void => {
    if (n === null || n === undefined) return;
    const node = n as { type?: unknown; normalizers?: unknown };
    if (node.type === 'Sequence' && Array.isArray(node.normalizers)) node.normalizers.forEach(collect);
    else normalizers.push(String(node.type));
  };
  collect(tj.normalizer);
  if (normalizers.some((t) => !SAFE_NORMALIZERS.has(t))) return undefined;
  const vocab = modelVocabIds(tj);
  for (const ch of ALNUM) if (!vocab.has(ch)) return undefined;
  const cover = { letters: 1, digits: 1, other: 1 };
  const note = (letters: number, digits: number, other: number): void => {
    cover.letters = Math.max(cover.letters, letters);
    cover.digits = Math.max(cover.digits, digits);
    cover.other = Math.max(cover.other, other);
  };
  for (const key of vocab.keys()) {
    let letters = 0;
    let digits = 0;
    let other = 0;
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i);
      if ((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a)) letters++;
      else if (c >= 0x30 && c <= 0x39) digits++;
      // Byte-level symbols: printable ASCII stands for itself; U+0100..U+0120 for bytes 0..32
      // and U+0121 for byte 127 (GPT-2's bytes_to_unicode).
      else if ((c >= 0x21 && c <= 0x7e) || (c >= 0x100 && c <= 0x121)) other++;
    }
    note(letters, digits, other);
  }
  for (const t of tj.added_tokens ?? []) {
    const counts = countClasses(t.content);
    note(counts.letters, counts.digits, counts.other);
  }
  return { ...cover, composes: normalizers.some((t) => t === 'NFC' || t === 'NFKC') };
}

function parseJsonObject(text: string, name: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`${name}: invalid JSON (${(e as Error).message})`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`${name}: expected a JSON object`);
  return value as Record<string, unknown>;
}

function modelVocabIds(tj: TokenizerJson): Map<string, number> {
  const vocab = tj.model.vocab;
  // Unigram stores [piece, score] pairs whose index is the id.
  if (Array.isArray(vocab)) return new Map(vocab.map(([piece], i) => [piece, i]));
  return new Map(Object.entries(vocab));
}

/** tokenizer_config.json writes special tokens as strings or as AddedToken objects. */
function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

function configChatTemplate(config: TokenizerConfigJson): string | undefined {
  const t = config.chat_template;
  if (typeof t === 'string') return t;
  // Multi-template configs: a list of {name, template}; the one named "default" is the chat template.
  if (Array.isArray(t)) {
    const named = t.find((x) => x && typeof x === 'object' && (x as { name?: unknown }).name === 'default') as
      | { template?: unknown }
      | undefined;
    if (named && typeof named.template === 'string') return named.template;
  }
  return undefined;
}

/** transformers reads added tokens from tokenizer_config's added_tokens_decoder and the special-token lists. */
function registerInConfig(config: TokenizerConfigJson, token: AddedTokenJson): void {
  const decoder = (config.added_tokens_decoder ?? {}) as Record<string, unknown>;
  decoder[String(token.id)] = { content: token.content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
  config.added_tokens_decoder = decoder;
  for (const key of ['additional_special_tokens', 'extra_special_tokens']) {
    const list = config[key];
    if (Array.isArray(list) && !list.some((x) => tokenContent(x) === token.content)) list.push(token.content);
  }
}

/**
 * The BPE model of @huggingface/tokenizers 0.2.0 memoises words in an LRU whose every hit deletes
 * and re-inserts the Map key; on ProcessBench that bookkeeping took ~60% of encode time. A plain
 * Map that is emptied when full keeps the memoisation without it (results are identical: the
 * cache only memoises a pure function). Left alone when the internals differ.
 */
function installFastBpeCache(tokenizer: Tokenizer): void {
  const model = tokenizer.model as unknown as { cache?: { get?: unknown; put?: unknown } } | null;
  if (!model || !model.cache || typeof model.cache.get !== 'function' || typeof model.cache.put !== 'function') return;
  const capacity = 200_000;
  const map = new Map<string, unknown>();
  model.cache = {
    get: (key: string) => map.get(key),
    put: (key: string, value: unknown) => {
      if (map.size >= capacity) map.clear();
      map.set(key, value);
    },
    clear: () => map.clear(),
  } as unknown as typeof model.cache;
}
