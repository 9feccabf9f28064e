import type { PrmTokenizer } from '../model/tokenizer.js';

/**
 * Cutting an RL trainer's "query" (the policy's prompt, rendered with a chat template, followed by
 * the sampled response: OpenRLHF's remote reward model protocol) back into the problem and the
 * response. The markers come from rendering the model's own chat template with probe messages,
 * so any template that frames a user turn and an assistant turn with fixed text works (ChatML,
 * Qwen2.5's, Llama 3's); the policy's template must frame turns the same way, as it does when
 * the PRM was trained from the policy's family.
 */
export interface ChatFrame {
  /** Text right before the user's message (e.g. "<|im_start|>user\n"). */
  userOpen: string;
  /** Text between the user's message and the assistant's (e.g. "<|im_end|>\n<|im_start|>assistant\n"). */
  assistantOpen: string;
  /** Texts a response may end with that are not part of it: end of turn, eos, pad. */
  closers: string[];
}

const USER_PROBE = 'PRMKIT-USER-PROBE';
const ASSISTANT_PROBE = 'PRMKIT-ASSISTANT-PROBE';

function commonSuffix(texts: string[]): string {
  let n = 0;
  const shortest = Math.min(...texts.map((t) => t.length));
  while (n < shortest && texts.every((t) => t[t.length - 1 - n] === texts[0][texts[0].length - 1 - n])) n++;
  return texts[0].slice(texts[0].length - n);
}

/** The frame of the tokenizer's chat template, or an Error saying why it has none. */
export function chatFrame(tok: PrmTokenizer): ChatFrame {
  // Before the user's text: the system turn (absent, given, or a template's default) then the
  // user-turn opener. Rendered with no system and two different ones, the common suffix of what
  // comes before the user's text is the opener alone.
  const befores = [null, 'PRMKIT-SYSTEM-A', 'PRMKIT-SYSTEM-B'].map((system) => {
    const text = tok.renderChat(system, USER_PROBE);
    return text.slice(0, text.indexOf(USER_PROBE));
  });
  const userOpen = commonSuffix(befores);
  const prompt = tok.renderChat(null, USER_PROBE);
  const assistantOpen = prompt.slice(prompt.indexOf(USER_PROBE) + USER_PROBE.length);
  const closed = tok.renderChat(null, USER_PROBE, ASSISTANT_PROBE);
  const turnEnd = closed.slice(closed.lastIndexOf(ASSISTANT_PROBE) + ASSISTANT_PROBE.length).trim();
  const closers = [...new Set([turnEnd, tok.decode([tok.eosTokenId]), tok.decode([tok.padTokenId])])].filter((s) => s.trim() !== '');
  if (assistantOpen.trim() === '') throw new Error('the chat template puts nothing between the user and the assistant message');
  return { userOpen, assistantOpen, closers };
}

export interface SplitQuery {
  problem: string;
  response: string;
}

/**
 * The problem and response of one query. With the prompt (the query's rendered beginning, as
 * OpenRLHF sends it) the response is what follows it; without, it is what follows the last
 * assistant opener. The problem is the last user message of the prompt, or the whole prompt when
 * it carries no chat frame (a raw prompt). Returns a reason string when the query cannot be cut.
 */
export function splitQuery(frame: ChatFrame, query: string, prompt?: string): SplitQuery | string {
  let promptText: string;
  let response: string;
  if (prompt !== undefined) {
    if (!query.startsWith(prompt)) return 'the query does not start with its prompt';
    promptText = prompt;
    response = query.slice(prompt.length);
  } else {
    const at = query.lastIndexOf(frame.assistantOpen);
    if (at < 0) return `no assistant turn found (looked for ${JSON.stringify(frame.assistantOpen)} from the model's chat template; send "prompts" too)`;
    promptText = query.slice(0, at + frame.assistantOpen.length);
    response = query.slice(at + frame.assistantOpen.length);
  }
  return { problem: problemOf(frame, promptText), response: stripClosers(frame, response) };
}

function problemOf(frame: ChatFrame, prompt: string): string {
  const end = prompt.lastIndexOf(frame.assistantOpen);
  if (end < 0) return prompt.trim();
  const start = frame.userOpen === '' ? -1 : prompt.lastIndexOf(frame.userOpen, end);
  return prompt.slice(start < 0 ? 0 : start + frame.userOpen.length, end).trim();
}

function stripClosers(frame: ChatFrame, response: string): string {
  let text = response.trimEnd();
  for (let changed = true; changed; ) {
    changed = false;
    for (const closer of frame.closers) {
      if (text.endsWith(closer)) {
        text = text.slice(0, text.length - closer.length).trimEnd();
        changed = true;
      }
    }
  }
  return text;
}
