import type { OpenAIClient } from '../labels/client.js';
import { renderPolicyPrompt, STEP_SEPARATOR, type PolicyPromptOptions } from '../labels/prompts.js';
import { lastBoxed } from '../math/index.js';

/**
 * The policy side of search: samples continuations of a partial solution from an
 * OpenAI-compatible /v1/completions endpoint (vLLM, SGLang, the sim server), either one next
 * step (generation stops at the step separator) or the whole rest of the solution, and counts
 * the tokens it generated (the budget every method is measured by).
 */

export interface PolicySettings extends PolicyPromptOptions {
  /** Model name sent to the endpoint. */
  model: string;
  temperature: number;
  topP?: number;
  /** Token limit of one step (step-wise generation). */
  maxStepTokens: number;
  /** Token limit of a whole solution (Best-of-N). */
  maxTokens: number;
}

export interface Continuation {
  /** The text generated, trimmed (one step, or the rest of the solution). */
  text: string;
  /**
   * Whether the solution ends here: the model stopped by itself (not at the step separator),
   * hit the token limit, wrote nothing, or stated a final \boxed{} answer.
   */
  done: boolean;
  /** The reason reported by the server (stop, length). */
  finish: string | null;
}

export interface PolicyUsage {
  requests: number;
  /** Completion tokens, as the server reports them (usage.completion_tokens) ... */
  tokens: number;
  /** ... or, for replies without usage, estimated at 4 characters a token. */
  estimatedTokens: number;
}

export function emptyUsage(): PolicyUsage {
  return { requests: 0, tokens: 0, estimatedTokens: 0 };
}

export function addUsage(into: PolicyUsage, u: PolicyUsage): void {
  into.requests += u.requests;
  into.tokens += u.tokens;
  into.estimatedTokens += u.estimatedTokens;
}

/**
 * Whether a generated step ends the solution. vLLM reports `stop_reason`: the stop string that
 * ended the text, or null when the model itself stopped (end of sequence). Servers that do not
 * report it are read from the text: a final \boxed{} answer ends a math solution.
 */
function isDone(text: string, choice: { finish_reason?: string | null; stop_reason?: unknown }, stepwise: boolean): boolean {
  if (text === '') return true;
  if (choice.finish_reason === 'length') return true;
  if (!stepwise) return true;
  if ('stop_reason' in choice && choice.stop_reason === null && choice.finish_reason === 'stop') return true;
  return lastBoxed(text) !== null;
}

export class PolicySampler {
  constructor(
    private readonly client: OpenAIClient,
    readonly settings: PolicySettings,
  ) {}

  /**
   * n continuations of `prefix` (steps already written): the next step when `stepwise`, else
   * the rest of the solution. `seed` makes the request reproducible, so a resumed run finds it
   * in the response cache.
   */
  async sample(problem: string, prefix: readonly string[], opts: { n: number; seed: number; stepwise: boolean }, usage: PolicyUsage): Promise<Continuation[]> {
    const s = this.settings;
    const reply = await this.client.completions({
      model: s.model,
      prompt: renderPolicyPrompt(problem, prefix, s),
      n: opts.n,
      max_tokens: opts.stepwise ? s.maxStepTokens : s.maxTokens,
      temperature: s.temperature,
      ...(s.topP !== undefined ? { top_p: s.topP } : {}),
      seed: opts.seed,
      ...(opts.stepwise ? { stop: [STEP_SEPARATOR] } : {}),
    });
    usage.requests++;
    const reported = reply.usage?.completion_tokens;
    if (typeof reported === 'number' && Number.isFinite(reported)) usage.tokens += reported;
    else usage.estimatedTokens += Math.ceil(reply.choices.reduce((a, c) => a + c.text.length, 0) / 4);
    return reply.choices.map((c) => {
      const text = c.text.trim();
      return { text, done: isDone(text, c as { finish_reason?: string | null; stop_reason?: unknown }, opts.stepwise), finish: c.finish_reason ?? null };
    });
  }
}
