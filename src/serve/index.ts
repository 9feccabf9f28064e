// The reward server: `prmkit serve` and startRewardServer for programs and tests.
export { startRewardServer, type LoadedScoringModel, type RewardServer, type RewardServerOptions, type RewardServerStats } from './server.js';
export { DynamicBatcher, QueueFullError, type BatchInfo, type BatcherStats, type ForwardFn } from './batcher.js';
export { DEFAULT_BATCHING, DEFAULT_LIMITS, type BatchingOptions, type ServeLimits } from './limits.js';
export { HttpError } from './errors.js';
