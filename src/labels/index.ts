// The labeling pipeline: MC estimation, LLM judge, consensus filtering, and their client.
export { canonicalJson, requestKey, ResponseCache, type CacheLoadReport } from './cache.js';
export {
  ApiError,
  normalizeEndpoint,
  OpenAIClient,
  parseEndpoints,
  validateChat,
  validateCompletion,
  type ChatRequest,
  type ChatResponse,
  type ClientOptions,
  type ClientStats,
  type CompletionRequest,
  type CompletionResponse,
  type EndpointStats,
} from './client.js';
export { consensus, type ConsensusOptions, type ConsensusStats, type DropReason } from './consensus.js';
export { labelJudge, labelSampleJudge, type JudgeSampleResult, type JudgeSettings, type JudgeStats, type LabelJudgeOptions } from './judge.js';
export { labelMc, labelSampleMc, type LabelMcOptions, type McSampleResult, type McSearch, type McSettings, type McStats } from './mc.js';
export {
  buildJudgeMessages,
  DEFAULT_SYSTEM_PROMPT,
  parseJudgePrompt,
  parseJudgeReply,
  parsePolicyPrompt,
  renderPolicyPrompt,
  STEP_SEPARATOR,
  type ChatMessage,
  type JudgeReplyParse,
  type PolicyPromptOptions,
} from './prompts.js';
export { countJsonlLines, mapOrdered, openClient, openInput, runLabeling, type EndpointOptions, type InputOptions, type LabelingRun, type SampleFailure } from './run.js';
export { formatClient, formatConsensusStats, formatJudgeStats, formatMcStats } from './summary.js';
export {
  AgreementTally,
  computeLabelStats,
  FirstErrorTally,
  formatQuality,
  LabelQualityTally,
  positionBucket,
  truthOf,
  type AgreementRow,
  type FirstErrorMetrics,
  type KindMetrics,
  type LabelQuality,
} from './stats.js';
