// The data layer's public surface (the canonical record is StepSample, types.ts).
export type { StepSample } from './types.js';
export { RecordError, readJsonl, readJsonlAll, JsonlWriter } from './jsonl.js';
export { splitSteps, unescapeSeparator } from './split.js';
export { validateStepSample, type FieldProblem } from './validate.js';
export { DATA_FORMATS, guessFormat, isDataFormat, type DataFormat } from './formats.js';
export { openStepSamples, readStepSamples, readAllStepSamples, detectFormat, dataFiles, type ReadOptions, type ReadStats } from './read.js';
export { BadRecordsError, MAX_REPORTED_PROBLEMS, type BadRecordOptions } from './bad-records.js';
export { writeStepSamples, writeNativeRecords, writeJsonArray, writeJsonlRecords, writeFormatOf, type WriteFormat, type NativeFormat } from './write.js';
export { STEP_SAMPLE_SCHEMA, stepSampleBatch, writeArrowStepSamples } from './arrow.js';
export { detectFileKind, readRecords, countRecords, type FileKind, type SourceRecord } from './sources.js';
export { readProcessBench, writeProcessBench, fromProcessBenchRecord, toProcessBenchRecord, processBenchFiles, PROCESSBENCH_SUBSETS } from './processbench.js';
export {
  readBonCandidates,
  readGsm8kExampleSolutions,
  writeBonCandidates,
  bonCandidateFromRecord,
  bonCandidateToRecord,
  bonCandidateSamples,
  finalAnswerLine,
  GSM8K_SOLUTION_MODELS,
  type BonCandidate,
  type BonFieldOptions,
} from './bon.js';
export { fromPrm800kRecord } from './prm800k.js';
export { fromMathShepherdRecord, toMathShepherdRecord, SHEPHERD_TAG } from './math-shepherd.js';
export { fromTrlRecord, toTrlRecord } from './trl.js';
export { fromGsm8kRecord, toGsm8kRecord, stripCalculatorAnnotations } from './gsm8k.js';
export { StatsCollector, formatStats, bucketHistogram, type DataStats } from './stats.js';
export { downloadDataset, resolveUrl, sha256OfFile, HUB_DATASETS, MANIFEST_NAME, type HubDatasetName, type Manifest, type ManifestEntry, type DownloadOptions } from './hub.js';
