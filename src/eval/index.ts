/**
 * The evaluation suite's public API: ProcessBench and Best-of-N metrics (one implementation,
 * shared by the CLI, `eval sim` and the trainer's dev evaluation) and the runners behind
 * `prmkit eval processbench|bon|sim`.
 */
export {
  chooseThreshold,
  confusionTable,
  harmonicF1,
  predictFirstError,
  processBenchMetrics,
  subsetMetrics,
  type ConfusionTable,
  type ProcessBenchItem,
  type ProcessBenchMetrics,
  type ScoredItem,
  type SubsetMetrics,
  type ThresholdChoice,
} from './processbench-metrics.js';
export {
  evaluateProcessBench,
  processBenchMarkdown,
  subsetOf,
  type ProcessBenchPrediction,
  type ProcessBenchReport,
  type ThresholdOption,
} from './processbench.js';
export { AGGREGATORS, aggregateScore, minIsOnLastStep, parseAggregators, type Aggregator, type ResponseScore } from './aggregate.js';
export {
  bonMetrics,
  cachedEquivalence,
  clusterAnswers,
  curveSizes,
  problemOutcome,
  type BonCurvePoint,
  type BonIntervals,
  type BonMetrics,
  type BonMetricsOptions,
  type BonPoint,
  type Equivalence,
  type GradedProblem,
  type GradedResponse,
  type ProblemOutcome,
} from './bon-metrics.js';
export { bootstrapCounts, bootstrapInterval, quantile, type BootstrapOptions, type Interval } from './bootstrap.js';
export {
  bonCurveMarkdown,
  bonMarkdown,
  cachedGrader,
  candidateSetNames,
  evaluateBonSet,
  gradeCandidates,
  gradedRecords,
  summarizeBonSets,
  type BonSummary,
  type GradedRecord,
  type Grader,
} from './bon.js';
export { readStepScoresFile } from './step-scores-file.js';
export type { StepScorer } from './step-scorer.js';
export { loadProcessBench, runProcessBench, writeProcessBenchOutputs, type ProcessBenchRunOptions } from './run-processbench.js';
export { loadCandidates, runBon, scoreCandidates, writeBonOutputs, type BonRunOptions } from './run-bon.js';
export { runSimEval, type SimEvalOptions, type SimEvalSummary } from './run-sim.js';
export { loadPrmBench, PRMBENCH_CLASSES, PRMBENCH_GROUPS, type PrmBenchData, type PrmBenchItem } from './prmbench-data.js';
export { classMetrics, prmBenchMetrics, stepCounts, type PrmBenchClassMetrics, type PrmBenchMetrics, type StepCounts } from './prmbench-metrics.js';
export { prmBenchMarkdown, runPrmBench, type PrmBenchReport, type PrmBenchRunOptions } from './run-prmbench.js';
export { inapplicableReason, scoreProfile, type ScoreProfile } from './aggregate.js';
export { outcomeOptionsOf, voteWeightsOf, type VoteWeights } from './bon-metrics.js';
