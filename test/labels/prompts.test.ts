import { expect } from 'chai';
import { buildJudgeMessages, parseJudgePrompt, parseJudgeReply, parsePolicyPrompt, renderPolicyPrompt } from '../../src/labels/prompts.js';

describe('label prompts', () => {
  const problem = 'Sam has 12 apples. Then Sam buys 7 more apples. How many apples does Sam have at the end?';
  const steps = ['Sam has 12 apples and gets 7 more, so Sam has 12 + 7 = 19 apples.', 'The answer is \\boxed{19}.'];

  it('renders the policy prompt as ChatML with the solution prefix open, and reads it back', () => {
    const prompt = renderPolicyPrompt(problem, steps.slice(0, 1));
    expect(prompt).to.equal(
      `<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n<|im_start|>user\n${problem}<|im_end|>\n<|im_start|>assistant\n${steps[0]}\n\n`,
    );
    expect(parsePolicyPrompt(prompt)).to.deep.equal({ problem, steps: steps.slice(0, 1) });
    expect(parsePolicyPrompt('no chat here')).to.equal(null);
  });

  it('renders through a Jinja chat template when given one', () => {
    const template = "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}";
    const prompt = renderPolicyPrompt(problem, steps.slice(0, 1), { chatTemplate: template, system: 'Be brief.' });
    expect(prompt).to.equal(`[system] Be brief.\n[user] ${problem}\n[assistant] ${steps[0]}\n\n`);
  });

  it('numbers the paragraphs in the judge prompt, and reads them back', () => {
    const messages = buildJudgeMessages(problem, steps);
    expect(messages[0].content).to.contain('<paragraph_1>\nThe answer is \\boxed{19}.\n</paragraph_1>');
    expect(parseJudgePrompt(messages)).to.deep.equal({ problem, steps });
  });

  it('parses judge replies strictly and never guesses', () => {
    expect(parseJudgeReply('Paragraph 1 is wrong.\n\n\\boxed{1}', 3)).to.deep.equal({ ok: true, index: 1 });
    expect(parseJudgeReply('All fine. \\boxed{-1}', 3)).to.deep.equal({ ok: true, index: -1 });
    expect(parseJudgeReply('It is \\boxed{2}; to repeat, \\boxed{2}.', 3)).to.deep.equal({ ok: true, index: 2 });
    const bad = (reply: string) => {
      const r = parseJudgeReply(reply, 3);
      return r.ok ? 'ok' : r.reason;
    };
    expect(bad('The error is in paragraph 1.')).to.match(/no \\boxed/);
    expect(bad('\\boxed{1} or maybe \\boxed{2}')).to.match(/conflicting/);
    expect(bad('\\boxed{paragraph 1}')).to.match(/not an integer/);
    expect(bad('\\boxed{3}')).to.match(/outside \[-1, 2\]/);
    expect(bad('\\boxed{-2}')).to.match(/outside/);
  });
});
