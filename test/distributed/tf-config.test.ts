import { expect } from 'chai';
import { parseTfConfig, TfConfigError, workerTfConfig, type ClusterConfig } from '../../src/distributed/tf-config.js';

/**
 * TF_CONFIG as TensorFlow reads it (TFConfigClusterResolver + multi_worker_util): ranks are
 * id_in_cluster (chief 0, then workers), the leader is collective_leader, and the same
 * configurations TensorFlow rejects are rejected here with a message naming the key.
 */
const parse = (config: unknown): ClusterConfig | null => parseTfConfig(JSON.stringify(config));
const fails = (config: unknown, pattern: RegExp) => expect(() => parse(config)).to.throw(TfConfigError, pattern);

describe('TF_CONFIG', () => {
  it('means a single process when unset, empty or without a cluster', () => {
    expect(parseTfConfig(undefined)).to.equal(null);
    expect(parseTfConfig('  ')).to.equal(null);
    expect(parse({})).to.equal(null);
    expect(parse({ cluster: {}, task: { type: 'worker', index: 0 } })).to.equal(null);
  });

  it('numbers workers from 0 and makes worker 0 the leader when there is no chief', () => {
    const addresses = ['h0:2222', 'h1:2222', 'h2:2222'];
    const ranks = [0, 1, 2].map((i) => parse({ cluster: { worker: addresses }, task: { type: 'worker', index: i } }) as ClusterConfig);
    expect(ranks.map((c) => c.rank)).to.deep.equal([0, 1, 2]);
    for (const c of ranks) {
      expect(c.worldSize).to.equal(3);
      expect(c.leader).to.equal('/job:worker/replica:0/task:0');
      expect(c.tasks).to.deep.equal(['/job:worker/replica:0/task:0', '/job:worker/replica:0/task:1', '/job:worker/replica:0/task:2']);
      expect(c.protocol).to.equal('grpc');
    }
    expect([...ranks[2].jobs.get('worker')!.values()]).to.deep.equal(addresses);
  });

  it('puts the chief at rank 0 and the workers after it, with the chief as leader', () => {
    const cluster = { chief: ['c:1'], worker: ['w0:1', 'w1:1'], evaluator: ['e:1'] };
    const chief = parse({ cluster, task: { type: 'chief', index: 0 } })!;
    const w1 = parse({ cluster, task: { type: 'worker', index: 1 } })!;
    expect(chief.rank).to.equal(0);
    expect(w1.rank).to.equal(2);
    expect(w1.worldSize).to.equal(3);
    expect(w1.leader).to.equal('/job:chief/replica:0/task:0');
    expect(w1.tasks[1]).to.equal('/job:worker/replica:0/task:0');
    // Every job of the cluster (also ones outside the training group) goes to the ServerDef.
    expect([...w1.jobs.keys()]).to.deep.equal(['chief', 'evaluator', 'worker']);
  });

  it('accepts tasks as an index map and a numeric-string index, as ClusterSpec and int() do', () => {
    const c = parse({ cluster: { worker: { 1: 'b:1', 0: 'a:1' } }, task: { type: 'worker', index: '1' }, rpc_layer: 'grpc+x' })!;
    expect(c.rank).to.equal(1);
    expect([...c.jobs.get('worker')!.entries()]).to.deep.equal([[0, 'a:1'], [1, 'b:1']]);
    expect(c.protocol).to.equal('grpc+x');
  });

  it('round-trips what the local launcher hands each worker', () => {
    const c = parseTfConfig(workerTfConfig(['127.0.0.1:5000', '127.0.0.1:5001'], 1))!;
    expect(c.rank).to.equal(1);
    expect(c.taskType).to.equal('worker');
    expect(c.jobs.get('worker')!.get(0)).to.equal('127.0.0.1:5000');
  });

  it('rejects what TensorFlow rejects, naming the key', () => {
    expect(() => parseTfConfig('{"cluster": ')).to.throw(TfConfigError, /not valid JSON/);
    fails({ cluster: { worker: ['a:1'] } }, /lacks "type" or "index"/);
    fails({ cluster: { worker: ['a:1'] }, task: { type: 'master', index: 0 } }, /task.type "master" is not one of/);
    fails({ cluster: { worker: ['a:1'] }, task: { type: 'chief', index: 0 } }, /"chief" is not a job of the cluster/);
    fails({ cluster: { worker: ['a:1'] }, task: { type: 'worker', index: 1 } }, /task.index 1 is out of range: job "worker" has 1 task/);
    fails({ cluster: { worker: ['a:1'] }, task: { type: 'worker', index: 0.5 } }, /task.index must be an integer/);
    fails({ cluster: { chief: ['a:1', 'b:1'], worker: ['c:1'] }, task: { type: 'worker', index: 0 } }, /more than one "chief"/);
    fails({ cluster: { worker: 'a:1' }, task: { type: 'worker', index: 0 } }, /cluster.worker: the tasks of a job must be a list/);
    fails({ cluster: { worker: ['a:1', 7] }, task: { type: 'worker', index: 0 } }, /cluster.worker\[1\]: the task address must be/);
  });

  it('refuses roles prmkit does not have (parameter servers, a side-car evaluator)', () => {
    fails({ cluster: { worker: ['a:1'], ps: ['p:1'] }, task: { type: 'ps', index: 0 } }, /"ps" is not supported/);
    fails({ cluster: { worker: ['a:1'], evaluator: ['e:1'] }, task: { type: 'evaluator', index: 0 } }, /"evaluator" is not supported/);
  });

  it('needs the chief and worker tasks numbered 0..n-1 (ranks are counted from them)', () => {
    fails({ cluster: { worker: { 0: 'a:1', 2: 'b:1' } }, task: { type: 'worker', index: 0 } }, /must number its tasks 0..1 \(found index 2\)/);
  });

  it('refuses an address given to two tasks (one server would wait forever for the other)', () => {
    fails({ cluster: { worker: ['h:2222', 'h:2222'] }, task: { type: 'worker', index: 0 } }, /cluster.worker\[1\]: address "h:2222" is also cluster.worker\[0\]/);
    fails({ cluster: { chief: ['H:1'], worker: ['h:1'] }, task: { type: 'chief', index: 0 } }, /cluster.worker\[0\]: address "h:1" is also cluster.chief\[0\]/);
  });

  it('refuses ports out of 1..65535 and addresses that are not host:port, naming the task', () => {
    for (const bad of ['h:99999', 'h:0', 'h:65536']) fails({ cluster: { worker: [bad] }, task: { type: 'worker', index: 0 } }, /cluster.worker\[0\]: port \d+ of .* is out of range \(1..65535\)/);
    for (const bad of ['h', 'h:', ':2222', 'h:22x', '::1:2222']) fails({ cluster: { worker: ['a:1', bad] }, task: { type: 'worker', index: 0 } }, /cluster.worker\[1\]: .* is not "host:port"/);
    const c = parse({ cluster: { worker: ['[::1]:2222', 'h:65535'] }, task: { type: 'worker', index: 1 } })!;
    expect([c.address, c.port]).to.deep.equal(['h:65535', 65535]);
  });
});
