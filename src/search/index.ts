/** Test-time search guided by a PRM (`prmkit search`): methods, policy and reward sides, the runner. */
export { checkSearchSettings, searchProblem, SEARCH_METHODS, type Candidate, type SearchMethod, type SearchOutcome, type SearchSettings } from './methods.js';
export { PolicySampler, type Continuation, type PolicySettings, type PolicyUsage } from './policy.js';
export { localReward, remoteReward, type RewardModel } from './reward.js';
export { runSearch, runDirName, type SearchProblem, type SearchResult, type SearchRunOptions, type SearchRunResult } from './run.js';
export { searchMetrics, type SearchMetrics, type SearchRunMetrics } from './metrics.js';
export { budgetPoints, renderSearchReport, searchBudgetSpec, searchMarkdown, type BudgetPoint } from './report.js';
export { readSearchProblems } from './problems.js';
