import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildWordLevelTokenizer, WORD_UNK_TOKEN } from '../../src/model/word-tokenizer.js';
import { PrmTokenizer } from '../../src/model/tokenizer.js';
import { encodeSample, DEFAULT_SYSTEM_PROMPT } from '../../src/model/encode.js';
import { pythonTokenizersMissing, runPython } from '../support/tokenizer.js';

const corpus = [
  'Mia has 24 marbles. She gives 7 to Leo and buys 15 more. How many marbles does Mia have now?',
  'Mia starts with 24 marbles.',
  'After giving 7 away she has 24 - 7 = 17 marbles.',
  'After buying 15 more she has 17 + 15 = 32 marbles.',
  'The answer is \\boxed{32}.',
  'A box holds 6 rows of 9 pens; 6 * 9 = 54 pens, and 54 / 2 = 27 pens each.',
];

describe('model/word-tokenizer buildWordLevelTokenizer', () => {
  const files = buildWordLevelTokenizer(corpus);
  const tok = PrmTokenizer.fromFiles(files.tokenizerJson, files.tokenizerConfigJson);
  const unk = tok.tokenToId(WORD_UNK_TOKEN)!;

  it('has the special tokens first: pad <|endoftext|>, <|im_start|>, eos <|im_end|>, <extra_0>, [UNK]', () => {
    expect(['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<extra_0>', WORD_UNK_TOKEN].map((t) => tok.tokenToId(t))).to.deep.equal([0, 1, 2, 3, 4]);
    expect(tok.padTokenId).to.equal(0);
    expect(tok.eosTokenId).to.equal(2);
    expect(tok.stepTokenId).to.equal(3);
    expect(tok.addedStepToken).to.equal(false);
  });

  it('makes every digit its own token, so any number is spelled with the same 10 ids', () => {
    const digits = Array.from({ length: 10 }, (_, d) => tok.encodeText(String(d)));
    digits.forEach((ids) => expect(ids).to.have.length(1));
    expect(tok.encodeText('90817')).to.deep.equal([9, 0, 8, 1, 7].map((d) => digits[d][0]));
    expect(tok.encodeText('123456789')).to.not.include(unk);
  });

  it('encodes its corpus without [UNK] and decodes it back exactly', () => {
    for (const text of corpus) {
      const ids = tok.encodeText(text);
      expect(ids).to.not.include(unk);
      expect(tok.decode(ids)).to.equal(text);
    }
    expect(tok.decode(tok.encodeText('Mia  has\n\n\t9 zorbs'))).to.equal(`Mia  has\n\n\t9 ${WORD_UNK_TOKEN}`);
  });

  it('encodes a PRM sample with the chat template, one step token per step', () => {
    const e = encodeSample(tok, { problem: corpus[0], steps: corpus.slice(1, 5) });
    expect(e.nSteps).to.equal(4);
    expect(e.stepPositions.map((p) => e.inputIds[p])).to.deep.equal([3, 3, 3, 3]);
    expect(e.inputIds).to.not.include(unk);
    expect(tok.decode(e.inputIds)).to.equal(
      `<|im_start|>system\n${DEFAULT_SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n${corpus[0]}<|im_end|>\n` +
        `<|im_start|>assistant\n${corpus.slice(1, 5).join('<extra_0>')}<extra_0><|im_end|>\n`,
    );
  });

  it('keeps the most frequent words within maxVocab and is deterministic', () => {
    const vocabOf = (f: { tokenizerJson: string }) => (JSON.parse(f.tokenizerJson) as { model: { vocab: Record<string, number> } }).model.vocab;
    const fullSize = Object.keys(vocabOf(files)).length;
    const small = buildWordLevelTokenizer(corpus, { maxVocab: fullSize - 5 });
    const vocab = vocabOf(small);
    expect(Object.keys(vocab)).to.have.length(fullSize - 5);
    expect(Math.max(...Object.values(vocab))).to.equal(fullSize - 6);
    expect(vocab).to.have.property('marbles'); // 4 occurrences
    expect(vocab).to.have.property('pens'); // 3 occurrences
    // Only words seen once are cut (ties by alphabetical order), e.g. the last ones alphabetically.
    const cut = Object.keys(vocabOf(files)).filter((w) => !(w in vocab));
    expect(cut).to.have.length(5);
    for (const w of cut) expect(corpus.join(' ').split(w).length - 1, w).to.equal(1);
    expect(buildWordLevelTokenizer(corpus, { maxVocab: fullSize - 5 })).to.deep.equal(small);
    expect(() => buildWordLevelTokenizer(corpus, { maxVocab: 10 })).to.throw(/maxVocab 10/);
  });

  it('takes a custom step token', () => {
    const custom = buildWordLevelTokenizer(corpus, { stepToken: '<step>' });
    const t = PrmTokenizer.fromFiles(custom.tokenizerJson, custom.tokenizerConfigJson, { stepToken: '<step>' });
    expect(t.addedStepToken).to.equal(false);
    expect(t.stepTokenId).to.equal(3);
  });

  it('loads in Python tokenizers and transformers with identical ids and template', function () {
    const missing = pythonTokenizersMissing();
    if (missing) {
      console.warn(`    SKIP: ${missing}`);
      this.skip();
    }
    expectPythonParity(files, tok, unk);
  });
});

describe('model/word-tokenizer with spaces joined to the next piece (spaces: prefix)', () => {
  const files = buildWordLevelTokenizer(corpus, { spaces: 'prefix' });
  const tok = PrmTokenizer.fromFiles(files.tokenizerJson, files.tokenizerConfigJson);
  const unk = tok.tokenToId(WORD_UNK_TOKEN)!;
  const separate = PrmTokenizer.fromFiles(buildWordLevelTokenizer(corpus).tokenizerJson, buildWordLevelTokenizer(corpus).tokenizerConfigJson);

  it('encodes its corpus without [UNK], decodes it back exactly, in about half the tokens', () => {
    let joined = 0;
    let apart = 0;
    for (const text of corpus) {
      const ids = tok.encodeText(text);
      expect(ids).to.not.include(unk);
      expect(tok.decode(ids)).to.equal(text);
      joined += ids.length;
      apart += separate.encodeText(text).length;
    }
    expect(joined / apart).to.be.within(0.5, 0.65);
    expect(tok.encodeText(' has')).to.have.length(1);
  });

  it('encodes a PRM sample with the chat template without [UNK]: the role words follow <|im_start|> with no space', () => {
    const e = encodeSample(tok, { problem: corpus[0], steps: corpus.slice(1, 5) });
    expect(e.inputIds).to.not.include(unk);
    expect(tok.decode(e.inputIds)).to.equal(
      `<|im_start|>system\n${DEFAULT_SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n${corpus[0]}<|im_end|>\n` +
        `<|im_start|>assistant\n${corpus.slice(1, 5).join('<extra_0>')}<extra_0><|im_end|>\n`,
    );
  });

  it('spells numbers after a space without [UNK], even digits the corpus never put there', () => {
    for (const text of [' 0', ' 8 + 1 = 90', 'Mia = 7', ' 5 - 3 = 2']) {
      const ids = tok.encodeText(text);
      expect(ids, text).to.not.include(unk);
      expect(tok.decode(ids)).to.equal(text);
    }
  });

  it('loads in Python tokenizers and transformers with identical ids and template', function () {
    const missing = pythonTokenizersMissing();
    if (missing) {
      console.warn(`    SKIP: ${missing}`);
      this.skip();
    }
    expectPythonParity(files, tok, unk);
  });
});

/** Python tokenizers and transformers give the same ids, decoding and chat template as the JS side. */
function expectPythonParity(files: { tokenizerJson: string; tokenizerConfigJson: string }, tok: PrmTokenizer, unk: number): void {
    const dir = mkdtempSync(join(tmpdir(), 'prmkit-wordtok-'));
  try {
    writeFileSync(join(dir, 'tokenizer.json'), files.tokenizerJson);
    writeFileSync(join(dir, 'tokenizer_config.json'), files.tokenizerConfigJson);
    const texts = [...corpus, 'Unknown wörds, 3.5 and  tabs\there', '<|im_start|>user\nhi<extra_0><|im_end|>'];
    const messages = [
      { role: 'system', content: DEFAULT_SYSTEM_PROMPT },
      { role: 'user', content: corpus[0] },
      { role: 'assistant', content: corpus.slice(1, 5).join('<extra_0>') + '<extra_0>' },
    ];
    const py = runPython(
      `
import json, sys
from tokenizers import Tokenizer
from transformers import AutoTokenizer
a = json.load(open(sys.argv[1]))
raw = Tokenizer.from_file(a['dir'] + '/tokenizer.json')
hf = AutoTokenizer.from_pretrained(a['dir'])
rendered = hf.apply_chat_template(a['messages'], tokenize=False)
print(json.dumps({
  'raw': [raw.encode(t, add_special_tokens=False).ids for t in a['texts']],
  'decoded': [raw.decode(raw.encode(t, add_special_tokens=False).ids, skip_special_tokens=False) for t in a['texts']],
  'rendered': rendered, 'rendered_ids': hf.encode(rendered, add_special_tokens=False),
  'pad': hf.pad_token_id, 'eos': hf.eos_token_id, 'unk': hf.unk_token_id}))
`,
      { dir, texts, messages },
      join(dir, 'args.json'),
    ) as { raw: number[][]; decoded: string[]; rendered: string; rendered_ids: number[]; pad: number; eos: number; unk: number };
    texts.forEach((t, i) => {
      expect(py.raw[i], t).to.deep.equal(tok.encodeText(t));
      expect(py.decoded[i], t).to.equal(tok.decode(tok.encodeText(t)));
    });
    expect(py.rendered).to.equal(tok.renderChat(messages[0].content, messages[1].content, messages[2].content));
    expect(py.rendered_ids).to.deep.equal(encodeSample(tok, { problem: corpus[0], steps: corpus.slice(1, 5) }).inputIds);
    expect([py.pad, py.eos, py.unk]).to.deep.equal([tok.padTokenId, tok.eosTokenId, unk]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('model/word-tokenizer with spaces joined to words and signs, never digits (spaces: prefix-words)', () => {
  const files = buildWordLevelTokenizer(corpus, { spaces: 'prefix-words' });
  const tok = PrmTokenizer.fromFiles(files.tokenizerJson, files.tokenizerConfigJson);
  const unk = tok.tokenToId(WORD_UNK_TOKEN)!;
  const digitIds = Array.from({ length: 10 }, (_, d) => tok.tokenToId(String(d))!);

  it('encodes its corpus without [UNK] and decodes it back exactly', () => {
    for (const text of corpus) {
      const ids = tok.encodeText(text);
      expect(ids).to.not.include(unk);
      expect(tok.decode(ids)).to.equal(text);
    }
    expect(tok.encodeText(' has')).to.have.length(1);
  });

  it('spells every number with the same 10 digit ids, the space before it a token of its own (as Qwen2)', () => {
    const ids = tok.encodeText(' 47 + 7 = 54');
    expect(ids.map((id) => tok.decode([id]))).to.deep.equal([' ', '4', '7', ' +', ' ', '7', ' =', ' ', '5', '4']);
    for (const d of [0, 4, 7, 9]) expect(tok.tokenToId(` ${d}`), `" ${d}" is no token`).to.equal(undefined);
    expect(ids.filter((id) => digitIds.includes(id))).to.have.length(5);
  });

  it('encodes a PRM sample with the chat template without [UNK]', () => {
    const e = encodeSample(tok, { problem: corpus[0], steps: corpus.slice(1, 5) });
    expect(e.inputIds).to.not.include(unk);
    expect(e.stepPositions.map((p) => e.inputIds[p])).to.deep.equal([3, 3, 3, 3]);
  });

  it('loads in Python tokenizers and transformers with identical ids and template', function () {
    const missing = pythonTokenizersMissing();
    if (missing) {
      console.warn(`    SKIP: ${missing}`);
      this.skip();
    }
    expectPythonParity(files, tok, unk);
  });
});

describe('model/word-tokenizer with spaces as delimiters only (spaces: drop)', () => {
  const files = buildWordLevelTokenizer(corpus, { spaces: 'drop' });
  const tok = PrmTokenizer.fromFiles(files.tokenizerJson, files.tokenizerConfigJson);
  const unk = tok.tokenToId(WORD_UNK_TOKEN)!;
  const pieceOf = (id: number) => tok.decode([id]);

  it('spells every number with the same 10 digit ids and makes no token of whitespace', () => {
    const ids = tok.encodeText(' 47 + 7 = 54');
    expect(ids.map(pieceOf)).to.deep.equal(['4', '7', '+', '7', '=', '5', '4']);
    expect(tok.encodeText('Mia  has\n\n\t9 zorbs').map(pieceOf)).to.deep.equal(['Mia', 'has', '9', WORD_UNK_TOKEN]);
    const vocab = (JSON.parse(files.tokenizerJson) as { model: { vocab: Record<string, number> } }).model.vocab;
    expect(Object.keys(vocab).filter((t) => /\s/.test(t))).to.deep.equal([]);
  });

  it('encodes its corpus without [UNK], as long as with spaces joined to the next piece', () => {
    const prefix = buildWordLevelTokenizer(corpus, { spaces: 'prefix' });
    const prefixTok = PrmTokenizer.fromFiles(prefix.tokenizerJson, prefix.tokenizerConfigJson);
    for (const text of corpus) {
      const ids = tok.encodeText(text);
      expect(ids).to.not.include(unk);
      expect(tok.decode(ids)).to.equal(text.replace(/\s/g, ''));
      expect(ids.length, text).to.equal(prefixTok.encodeText(text).length);
    }
  });

  it('encodes a PRM sample with the chat template without [UNK]', () => {
    const e = encodeSample(tok, { problem: corpus[0], steps: corpus.slice(1, 5) });
    expect(e.inputIds).to.not.include(unk);
    expect(e.stepPositions.map((p) => e.inputIds[p])).to.deep.equal([3, 3, 3, 3]);
  });

  it('loads in Python tokenizers and transformers with identical ids and template', function () {
    const missing = pythonTokenizersMissing();
    if (missing) {
      console.warn(`    SKIP: ${missing}`);
      this.skip();
    }
    expectPythonParity(files, tok, unk);
  });
});
