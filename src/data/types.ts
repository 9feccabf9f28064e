/**
 * The canonical record every adapter maps onto.
 * labels: one per kept step, 0/1 or soft in [0,1]; firstError: 0-based index of the first
 * wrong step, -1 when every step is right, undefined when unknown.
 */
export interface StepSample {
  id: string;
  problem: string;
  steps: string[];
  answer?: string;
  labels?: number[];
  firstError?: number;
  source: string;
  meta: Record<string, unknown>;
}
