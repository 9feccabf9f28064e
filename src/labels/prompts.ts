/**
 * The prompts of the labeling pipeline, and their inverses (the sim server reads the same
 * prompts back, exactly as a real model would have to understand them).
 *
 * Policy (MC rollouts, /v1/completions): the chat rendered as text with the assistant turn
 * left open and the solution prefix already written, so the model continues the solution.
 * Judge (/v1/chat/completions): our own critique prompt with numbered paragraphs and a
 * strict answer format, \boxed{k} with k the earliest wrong paragraph or -1.
 */
import { Template } from '@huggingface/jinja';

/** The system prompt of Qwen2.5-Math, which the paper's policy was trained with. */
export const DEFAULT_SYSTEM_PROMPT = 'Please reason step by step, and put your final answer within \\boxed{}.';
export const STEP_SEPARATOR = '\n\n';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface PolicyPromptOptions {
  system?: string;
  /**
   * A Jinja chat template (e.g. the model's `chat_template` from tokenizer_config.json);
   * default ChatML, the format of Qwen models.
   */
  chatTemplate?: string;
}

function chatml(messages: readonly ChatMessage[]): string {
  return messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join('') + '<|im_start|>assistant\n';
}

const templateCache = new Map<string, Template>();

/** The prompt for continuing a solution after `prefix` (its steps, possibly none). */
export function renderPolicyPrompt(problem: string, prefix: readonly string[], opts: PolicyPromptOptions = {}): string {
  const messages: ChatMessage[] = [
    { role: 'system', content: opts.system ?? DEFAULT_SYSTEM_PROMPT },
    { role: 'user', content: problem },
  ];
  let head: string;
  if (opts.chatTemplate) {
    let template = templateCache.get(opts.chatTemplate);
    if (!template) templateCache.set(opts.chatTemplate, (template = new Template(opts.chatTemplate)));
    head = template.render({ messages, add_generation_prompt: true, bos_token: '', eos_token: '' });
  } else {
    head = chatml(messages);
  }
  return prefix.length === 0 ? head : head + prefix.join(STEP_SEPARATOR) + STEP_SEPARATOR;
}

/** Problem and written steps from a ChatML policy prompt; null when it is not one. */
export function parsePolicyPrompt(prompt: string): { problem: string; steps: string[] } | null {
  const user = /<\|im_start\|>user\n([\s\S]*?)<\|im_end\|>/.exec(prompt);
  const marker = '<|im_start|>assistant\n';
  const at = prompt.lastIndexOf(marker);
  if (!user || at < 0) return null;
  const steps = prompt
    .slice(at + marker.length)
    .split(STEP_SEPARATOR)
    .map((s) => s.trim())
    .filter((s) => s !== '');
  return { problem: user[1], steps };
}

const JUDGE_INSTRUCTIONS = [
  'Find the earliest paragraph that contains an error: a wrong calculation, a number taken wrongly from the problem or from an earlier paragraph, a missing or repeated step, or a wrong conclusion. A paragraph that only carries forward an error made earlier does not count as the earliest error.',
  'Write a short critique, then give the index of the earliest wrong paragraph in the form \\boxed{k}. If every paragraph is correct, give \\boxed{-1}. Give exactly one boxed index.',
].join('\n\n');

/** Our judge prompt: problem, the solution as numbered paragraphs, and the answer format. */
export function buildJudgeMessages(problem: string, steps: readonly string[]): ChatMessage[] {
  const paragraphs = steps.map((s, i) => `<paragraph_${i}>\n${s}\n</paragraph_${i}>`).join('\n');
  const content = [
    'You are checking a solution to a math problem, one paragraph at a time.',
    `Problem:\n${problem}`,
    `Solution (paragraphs numbered from 0):\n${paragraphs}`,
    JUDGE_INSTRUCTIONS,
  ].join('\n\n');
  return [{ role: 'user', content }];
}

/** Problem and paragraphs from our judge prompt (the last user message); null otherwise. */
export function parseJudgePrompt(messages: readonly { role: string; content: unknown }[]): { problem: string; steps: string[] } | null {
  const user = [...messages].reverse().find((m) => m.role === 'user');
  if (!user || typeof user.content !== 'string') return null;
  const text = user.content;
  const problem = /Problem:\n([\s\S]*?)\n\nSolution \(paragraphs numbered from 0\):\n/.exec(text);
  if (!problem) return null;
  const steps: string[] = [];
  for (const m of text.matchAll(/<paragraph_(\d+)>\n([\s\S]*?)\n<\/paragraph_\1>/g)) {
    if (Number(m[1]) !== steps.length) return null;
    steps.push(m[2]);
  }
  return steps.length > 0 ? { problem: problem[1], steps } : null;
}

export type JudgeReplyParse = { ok: true; index: number } | { ok: false; reason: string };

/**
 * Strict reading of a judge reply: every \boxed{} must hold the same integer, in [-1, steps-1].
 * Anything else is unparsable; nothing is guessed from the prose.
 */
export function parseJudgeReply(reply: string, nSteps: number): JudgeReplyParse {
  const boxes = [...reply.matchAll(/\\boxed\{([^{}]*)\}/g)].map((m) => m[1].trim());
  if (boxes.length === 0) return { ok: false, reason: 'no \\boxed{} answer' };
  const distinct = [...new Set(boxes)];
  if (distinct.length > 1) return { ok: false, reason: `conflicting answers ${distinct.map((b) => `\\boxed{${b}}`).join(', ')}` };
  if (!/^-?\d+$/.test(distinct[0])) return { ok: false, reason: `\\boxed{${distinct[0]}} is not an integer index` };
  const index = Number(distinct[0]);
  if (index < -1 || index >= nSteps) return { ok: false, reason: `index ${index} outside [-1, ${nSteps - 1}]` };
  return { ok: true, index };
}
