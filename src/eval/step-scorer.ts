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
    label?: string,
  ): Promise<{ stepScores: (number[] | null)[]; tooLong: number[] }>;
  dispose(): void;
}
