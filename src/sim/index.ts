// The synthetic reasoning world: problems, policy, judge, data sets and the HTTP server.
export { applyOp, lastBoxed, parseEquation, type Equation, type OpSymbol, type SimOp } from './arith.js';
export { analyzePrefix, checkSolution, POLICY_ERROR_KINDS, type CheckResult, type ErrorKind, type PolicyErrorKind, type SolutionState } from './check.js';
export { DEFAULT_JUDGE_OPTIONS, SimJudge, type JudgeOptions, type JudgeVerdict } from './judge.js';
export { continuePlausibly, DEFAULT_POLICY_OPTIONS, hardness, SimPolicy, type PolicyOptions, type PolicyOutput, type PolicyTrace } from './policy.js';
export { DEFAULT_PROBLEM_OPTIONS, generateProblem, parseProblem, renderProblem, type ProblemOptions, type SimProblem } from './problems.js';
export { startSimServer, SIM_JUDGE_MODEL, SIM_POLICY_MODEL, type SimServer, type SimServerOptions, type SimServerStats } from './server.js';
export { goldSteps, renderStep } from './steps.js';
export { simBonCandidates, simProblems, simProcessBench, simSolution, simSolutions, type SimTruth, type SimWorldOptions } from './world.js';
