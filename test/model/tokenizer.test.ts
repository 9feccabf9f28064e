import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHATML_TEMPLATE, PrmTokenizer } from '../../src/model/tokenizer.js';
import { encodeSample, DEFAULT_SYSTEM_PROMPT, EncodeError } from '../../src/model/encode.js';
import { buildWordLevelTokenizer } from '../../src/model/word-tokenizer.js';
import { qwenFiles, qwenTokenizer, encodedProcessBench, pythonTokenizersMissing, runPython } from '../support/tokenizer.js';

describe('model/tokenizer PrmTokenizer (real Qwen tokenizer)', () => {
  it('adds the missing step token <extra_0> as one special id after the vocabulary', () => {
    const f = qwenFiles();
    const before = JSON.parse(f.tokenizerJson) as { added_tokens: { id: number; content: string }[] };
    expect(before.added_tokens.some((t) => t.content === '<extra_0>')).to.equal(false);
    const maxId = Math.max(...before.added_tokens.map((t) => t.id));

    const tok = qwenTokenizer();
    expect(tok.addedStepToken).to.equal(true);
    expect(tok.stepToken).to.equal('<extra_0>');
    expect(tok.stepTokenId).to.equal(maxId + 1);
    expect(tok.vocabSize).to.equal(maxId + 2);
    expect(tok.encodeText('a<extra_0>b')).to.deep.equal([...tok.encodeText('a'), tok.stepTokenId, ...tok.encodeText('b')]);
    expect(tok.padTokenId).to.equal(tok.tokenToId('<|endoftext|>'));
    expect(tok.eosTokenId).to.equal(tok.tokenToId('<|im_end|>'));
  });

  it('toFiles() carries the step token: reloading keeps its id and adds nothing', () => {
    const tok = qwenTokenizer();
    const files = tok.toFiles();
    const again = PrmTokenizer.fromFiles(files.tokenizerJson, files.tokenizerConfigJson);
    expect(again.addedStepToken).to.equal(false);
    expect(again.stepTokenId).to.equal(tok.stepTokenId);
    expect(again.vocabSize).to.equal(tok.vocabSize);
    expect(again.chatTemplate).to.equal(CHATML_TEMPLATE);
    const config = JSON.parse(files.tokenizerConfigJson) as Record<string, unknown>;
    expect((config.added_tokens_decoder as Record<string, { content: string }>)[String(tok.stepTokenId)].content).to.equal('<extra_0>');
    expect(config.additional_special_tokens).to.include('<extra_0>');
  });

  it('uses an existing step token without growing the vocabulary; a custom one is added', () => {
    const words = buildWordLevelTokenizer(['one two']);
    const tok = PrmTokenizer.fromFiles(words.tokenizerJson, words.tokenizerConfigJson);
    expect(tok.addedStepToken).to.equal(false);
    const custom = PrmTokenizer.fromFiles(words.tokenizerJson, words.tokenizerConfigJson, { stepToken: '<step>' });
    expect(custom.addedStepToken).to.equal(true);
    expect(custom.stepTokenId).to.equal(tok.vocabSize);
    expect(custom.vocabSize).to.equal(tok.vocabSize + 1);
    expect(custom.encodeText('one<step>two')).to.have.length(3);
  });

  it('fromDir reads the files, taking chat_template.jinja when the config has no template', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'prmkit-tokdir-'));
    try {
      const words = buildWordLevelTokenizer(['one two']);
      writeFileSync(join(dir, 'tokenizer.json'), words.tokenizerJson);
      const config = JSON.parse(words.tokenizerConfigJson) as Record<string, unknown>;
      writeFileSync(join(dir, 'tokenizer_config.json'), words.tokenizerConfigJson);
      writeFileSync(join(dir, 'chat_template.jinja'), '{{ messages[0].content }}|jinja');
      expect((await PrmTokenizer.fromDir(dir)).renderChat('S', 'U', 'A')).to.equal(
        '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n',
      );
      delete config.chat_template;
      writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
      expect((await PrmTokenizer.fromDir(dir)).renderChat('S', 'U', 'A')).to.equal('S|jinja');
      rmSync(join(dir, 'tokenizer.json'));
      await PrmTokenizer.fromDir(dir).then(
        () => expect.fail('should throw'),
        (e: Error) => expect(e.message).to.match(/tokenizer\.json: not found/),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('renders the chat template of Qwen2.5-Math-PRM exactly (hand-written expected string)', () => {
    const tok = qwenTokenizer();
    const sample = { problem: 'What is 2 + 3?', steps: ['We add: 2 + 3 = 5.', 'The answer is $\\boxed{5}$.'] };
    const expected =
      '<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n' +
      '<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n' +
      '<|im_start|>assistant\nWe add: 2 + 3 = 5.<extra_0>The answer is $\\boxed{5}$.<extra_0><|im_end|>\n';
    expect(DEFAULT_SYSTEM_PROMPT).to.equal('Please reason step by step, and put your final answer within \\boxed{}.');
    expect(tok.renderChat(DEFAULT_SYSTEM_PROMPT, sample.problem, sample.steps.join('<extra_0>') + '<extra_0>')).to.equal(expected);
    const enc = encodeSample(tok, sample);
    expect(enc.inputIds).to.deep.equal(tok.encodeText(expected));
    expect(tok.renderChat('S', 'U')).to.equal('<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n');
    expect(tok.renderChat(null, 'U', 'A')).to.equal('<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n');
  });

  it("uses tokenizer_config's own template unless overridden, and refuses one that alters the steps", () => {
    const f = qwenFiles();
    const qwen3 = PrmTokenizer.fromFiles(f.tokenizerJson, f.tokenizerConfigJson);
    // Qwen3's template wraps the last assistant turn in an empty think block and lstrips '\n'.
    expect(qwen3.renderChat('S', 'U', 'A')).to.equal(
      '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nA<|im_end|>\n',
    );
    expect(encodeSample(qwen3, { problem: 'p', steps: ['a', 'b'] }).nSteps).to.equal(2);
    expect(() => encodeSample(qwen3, { problem: 'p', steps: ['\nstarts with a newline', 'b'] })).to.throw(/alters the assistant message/);
  });

  it('rejects text containing the step token, naming the field', () => {
    const tok = qwenTokenizer();
    expect(() => encodeSample(tok, { problem: 'p', steps: ['ok', 'bad <extra_0> here'] }))
      .to.throw(EncodeError, 'field "steps[1]": contains the step token <extra_0>');
    expect(() => encodeSample(tok, { problem: 'x<extra_0>', steps: ['ok'] })).to.throw(EncodeError, 'field "problem"');
  });

  it('saved files load in Python tokenizers and transformers with the same template and ids', function () {
    const missing = pythonTokenizersMissing();
    if (missing) {
      console.warn(`    SKIP: ${missing}`);
      this.skip();
    }
    const tok = qwenTokenizer();
    const bench = encodedProcessBench();
    const all = bench?.samples ?? [{ problem: 'What is 2 + 3?', steps: ['2 + 3 = 5 ∑ ü', 'So $\\boxed{5}$.'] }];
    const allIds = bench?.encoded.map((e) => e.inputIds) ?? all.map((s) => encodeSample(tok, s).inputIds);
    // transformers (template + ids) on a spread of samples; the Rust tokenizer on every one.
    const picked = bench ? [0, 450, 1200, 2100, 2900, 3399] : [0];
    const dir = mkdtempSync(join(tmpdir(), 'prmkit-tok-'));
    try {
      const files = tok.toFiles();
      writeFileSync(join(dir, 'tokenizer.json'), files.tokenizerJson);
      writeFileSync(join(dir, 'tokenizer_config.json'), files.tokenizerConfigJson);
      const messagesOf = (s: { problem: string; steps: string[] }) => [
        { role: 'system', content: DEFAULT_SYSTEM_PROMPT },
        { role: 'user', content: s.problem },
        { role: 'assistant', content: s.steps.join('<extra_0>') + '<extra_0>' },
      ];
      const texts = all.map((s) => {
        const m = messagesOf(s);
        return tok.renderChat(m[0].content, m[1].content, m[2].content);
      });
      const py = runPython(
        `
import json, sys
from tokenizers import Tokenizer
from transformers import AutoTokenizer
a = json.load(open(sys.argv[1]))
raw = Tokenizer.from_file(a['dir'] + '/tokenizer.json')
hf = AutoTokenizer.from_pretrained(a['dir'])
picked = [hf.apply_chat_template(m, tokenize=False) for m in a['messages']]
print(json.dumps({
  'picked_texts': picked,
  'picked_ids': [hf.encode(t, add_special_tokens=False) for t in picked],
  'raw_ids': [e.ids for e in raw.encode_batch(a['texts'], add_special_tokens=False)],
  'step': hf.convert_tokens_to_ids('<extra_0>'), 'pad': hf.pad_token_id}))
`,
        { dir, texts, messages: picked.map((i) => messagesOf(all[i])) },
        join(dir, 'args.json'),
      ) as { picked_texts: string[]; picked_ids: number[][]; raw_ids: number[][]; step: number; pad: number };
      expect(py.step).to.equal(tok.stepTokenId);
      expect(py.pad).to.equal(tok.padTokenId);
      picked.forEach((i, k) => {
        expect(py.picked_texts[k]).to.equal(texts[i]);
        expect(py.picked_ids[k]).to.deep.equal(allIds[i]);
      });
      let mismatches = 0;
      all.forEach((_, i) => {
        if (JSON.stringify(py.raw_ids[i]) !== JSON.stringify(allIds[i])) mismatches++;
      });
      expect(mismatches, `samples whose JS ids differ from the Rust tokenizer's (of ${all.length})`).to.equal(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
