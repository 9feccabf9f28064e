/**
 * TF_CONFIG, read the way TensorFlow reads it (TFConfigClusterResolver and multi_worker_util in
 * tensorflow/python/distribute), so a Kubeflow TFJob, a Kubernetes Indexed Job or a Slurm
 * script launches prmkit workers exactly as it launches MultiWorkerMirroredStrategy workers:
 *
 *   {"cluster": {"chief": ["h0:p"], "worker": ["h1:p", "h2:p"]}, "task": {"type": "worker", "index": 0}}
 *
 * - The training group is every "chief" and "worker" task. The chief (at most one) is rank 0 and
 *   worker i is rank i + (number of chiefs); without a chief, worker 0 is rank 0 (TF's
 *   id_in_cluster), and rank 0 is the chief of the run (TF's is_chief).
 * - The collective group leader is /job:chief/replica:0/task:0 when there is a chief, else
 *   /job:worker/replica:0/task:0 (TF's collective_leader).
 * - A job's tasks are a list, or an object from task index to address (TF's ClusterSpec); the
 *   indices of "chief" and "worker" must be 0..n-1 here, since ranks are counted from them.
 * - task.index may be a number or a numeric string (TF applies int()); "rpc_layer" picks the
 *   protocol (default grpc).
 * - Every address is "host:port" ("[v6]:port" for IPv6) with a port in 1..65535, and no address
 *   appears twice: TensorFlow itself would take port 0 or 99999 as "any port" and two tasks on one
 *   address as one server that waits forever for the other.
 * Refused with a clear error, as TensorFlow refuses them: a cluster without the task, an unknown
 * task type, a task type absent from the cluster, an index out of range, two chiefs. Refused
 * because prmkit has no such role: "ps" (parameter servers; MultiWorkerMirroredStrategy has none
 * either) and "evaluator" (prmkit evaluates on rank 0 after training).
 */

export const TF_CONFIG_ENV = 'TF_CONFIG';

/** The jobs whose tasks train together (one rank each). */
const TRAINING_JOBS = ['chief', 'worker'] as const;
const KNOWN_TASK_TYPES = ['chief', 'worker', 'evaluator', 'ps'];

export class TfConfigError extends Error {
  override name = 'TfConfigError';
}

export interface ClusterConfig {
  /** Every job of TF_CONFIG's cluster, task index -> "host:port" (all of it goes into the ServerDef). */
  jobs: Map<string, Map<number, string>>;
  taskType: 'chief' | 'worker';
  taskIndex: number;
  /** This task's place in the training group, 0..worldSize-1. */
  rank: number;
  /** Number of chief + worker tasks. */
  worldSize: number;
  /** Task name of every rank, e.g. "/job:worker/replica:0/task:1", indexed by rank. */
  tasks: string[];
  /** Task name of the collective group leader (rank 0). */
  leader: string;
  /** Protocol of the TensorFlow server ("grpc" unless TF_CONFIG's rpc_layer says otherwise). */
  protocol: string;
  /** This task's own "host:port" and port (where its TensorFlow server listens). */
  address: string;
  port: number;
}

/** The port of a "host:port" or "[v6]:port" task address, or an error naming the task. */
export function addressPort(address: string, where: string): number {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^\s:[\]]+):(\d+)$/.exec(address.trim());
  if (!m) throw new TfConfigError(`${where}: "${address}" is not "host:port" (an IPv6 host goes in brackets: "[::1]:2222")`);
  const port = Number(m[2]);
  if (!(port >= 1 && port <= 65535)) throw new TfConfigError(`${where}: port ${m[2]} of "${address}" is out of range (1..65535)`);
  return port;
}

/** Refuses an address given to two tasks: both servers would be one, waiting forever for the other. */
function checkDistinct(jobs: Map<string, Map<number, string>>): void {
  const seen = new Map<string, string>();
  for (const [job, tasks] of jobs) {
    for (const [index, address] of tasks) {
      const where = `TF_CONFIG cluster.${job}[${index}]`;
      addressPort(address, where);
      const key = address.trim().toLowerCase();
      const other = seen.get(key);
      if (other) throw new TfConfigError(`${where}: address "${address}" is also ${other}; every task needs an address (host:port) of its own`);
      seen.set(key, `cluster.${job}[${index}]`);
    }
  }
}

export function taskName(job: string, index: number): string {
  return `/job:${job}/replica:0/task:${index}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Python's int() on a JSON value, restricted to whole numbers (a fractional index is a mistake, not a truncation). */
function toIndex(value: unknown, what: string): number {
  const n = typeof value === 'string' && /^\s*[+-]?\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw new TfConfigError(`${what} must be an integer, got ${JSON.stringify(value)}`);
  return n;
}

function parseJob(name: string, tasks: unknown): Map<number, string> {
  const out = new Map<number, string>();
  const add = (index: number, address: unknown) => {
    if (typeof address !== 'string' || address.trim() === '') {
      throw new TfConfigError(`TF_CONFIG cluster.${name}[${index}]: the task address must be a non-empty "host:port" string, got ${JSON.stringify(address)}`);
    }
    out.set(index, address);
  };
  if (Array.isArray(tasks)) {
    tasks.forEach((address, i) => add(i, address));
  } else if (isObject(tasks)) {
    for (const [key, address] of Object.entries(tasks)) add(toIndex(key, `TF_CONFIG cluster.${name} task index "${key}"`), address);
  } else {
    throw new TfConfigError(`TF_CONFIG cluster.${name}: the tasks of a job must be a list of addresses or an object from task index to address`);
  }
  return new Map([...out.entries()].sort((a, b) => a[0] - b[0]));
}

/**
 * Parses TF_CONFIG's text. Returns null when it describes no cluster (unset, "{}", or an empty
 * cluster): the process then trains alone, as TensorFlow runs locally.
 */
export function parseTfConfig(text: string | undefined): ClusterConfig | null {
  if (text === undefined || text.trim() === '') return null;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new TfConfigError(`TF_CONFIG is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(raw)) throw new TfConfigError('TF_CONFIG must be a JSON object like {"cluster": {...}, "task": {...}}');
  const cluster = raw.cluster ?? {};
  if (!isObject(cluster)) throw new TfConfigError('TF_CONFIG "cluster" must be an object from job name to its tasks');
  const jobs = new Map<string, Map<number, string>>();
  for (const name of Object.keys(cluster).sort()) jobs.set(name, parseJob(name, cluster[name]));
  if (jobs.size === 0) return null;
  checkDistinct(jobs);

  const task = raw.task ?? {};
  if (!isObject(task)) throw new TfConfigError('TF_CONFIG "task" must be an object like {"type": "worker", "index": 0}');
  if (task.type === undefined || task.index === undefined) {
    throw new TfConfigError('TF_CONFIG has a cluster but its "task" lacks "type" or "index" (TensorFlow requires both)');
  }
  const taskType = String(task.type);
  const taskIndex = toIndex(task.index, 'TF_CONFIG task.index');
  if (!KNOWN_TASK_TYPES.includes(taskType)) {
    throw new TfConfigError(`TF_CONFIG task.type "${taskType}" is not one of "chief", "worker", "evaluator", "ps"`);
  }
  if (!jobs.has(taskType)) throw new TfConfigError(`TF_CONFIG task.type "${taskType}" is not a job of the cluster (${[...jobs.keys()].join(', ')})`);
  if ((jobs.get('chief')?.size ?? 0) > 1) throw new TfConfigError('TF_CONFIG cluster has more than one "chief" task (at most one is allowed)');
  if ((jobs.get('evaluator')?.size ?? 0) > 1) throw new TfConfigError('TF_CONFIG cluster has more than one "evaluator" task (at most one is allowed)');
  const own = jobs.get(taskType) as Map<number, string>;
  if (taskIndex < 0 || taskIndex >= own.size) {
    throw new TfConfigError(`TF_CONFIG task.index ${taskIndex} is out of range: job "${taskType}" has ${own.size} task(s)`);
  }
  if (taskType === 'ps' || taskType === 'evaluator') {
    throw new TfConfigError(
      `TF_CONFIG task.type "${taskType}" is not supported: prmkit trains with all-reduce among "chief"/"worker" tasks ` +
        '(no parameter servers) and evaluates on rank 0 after training (no side-car evaluator)',
    );
  }

  const tasks: string[] = [];
  for (const job of TRAINING_JOBS) {
    const entries = jobs.get(job);
    if (!entries) continue;
    [...entries.keys()].forEach((index, i) => {
      if (index !== i) throw new TfConfigError(`TF_CONFIG cluster.${job} must number its tasks 0..${entries.size - 1} (found index ${index})`);
      tasks.push(taskName(job, index));
    });
  }
  const chiefs = jobs.get('chief')?.size ?? 0;
  const rank = taskType === 'chief' ? 0 : taskIndex + chiefs;
  const protocol = typeof raw.rpc_layer === 'string' && raw.rpc_layer !== '' ? raw.rpc_layer : 'grpc';
  return {
    jobs,
    taskType: taskType as 'chief' | 'worker',
    taskIndex,
    rank,
    worldSize: tasks.length,
    tasks,
    leader: tasks[0],
    protocol,
    address: own.get(taskIndex) as string,
    port: addressPort(own.get(taskIndex) as string, `TF_CONFIG cluster.${taskType}[${taskIndex}]`),
  };
}

/** TF_CONFIG of this process (null: no cluster). */
export function clusterFromEnv(env: NodeJS.ProcessEnv = process.env): ClusterConfig | null {
  return parseTfConfig(env[TF_CONFIG_ENV]);
}

/** TF_CONFIG text for rank `rank` of a cluster of workers at `addresses` (what the local launcher hands each worker). */
export function workerTfConfig(addresses: readonly string[], rank: number): string {
  return JSON.stringify({ cluster: { worker: addresses }, task: { type: 'worker', index: rank } });
}
