/** Something that gives every step of every sample a score: a loaded PRM (see openStepScorer). */
export interface StepScorer {
  /** Name of the backend the model runs on (logged and written to metrics). */
  readonly backend: string;
  /**
   * One score list per sample, in order; null for a sample longer than the model context,
   * whose index is also listed in tooLong (reported, never cut).
   */
  score(
    samples: readonly { problem: string; steps: readonly string[] }[],
    /** Progress bar label; null: no bar (many small calls, e.g. search). */
    label?: string | null,
  ): Promise<{ stepScores: (number[] | null)[]; tooLong: number[] }>;
  dispose(): void;
}

/**
 * Scores samples and, when the scorer rejects one (an error carrying the sample's `index`, like
 * scoreSamples' SampleError), names the sample by its id instead of its position.
 */
export async function scoreNamingSamples(
  scorer: StepScorer,
  samples: readonly { id: string; problem: string; steps: readonly string[] }[],
  label?: string,
): Promise<{ stepScores: (number[] | null)[]; tooLong: number[] }> {
  try {
    return await scorer.score(samples, label);
  } catch (e) {
    const index = (e as { index?: unknown }).index;
    if (typeof index === 'number' && samples[index] !== undefined) {
      throw new Error(`sample "${samples[index].id}": ${(e as Error).message}`, { cause: e });
    }
    throw e;
  }
}
