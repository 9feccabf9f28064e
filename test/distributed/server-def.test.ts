import { expect } from 'chai';
import { decodeServerDef, encodeServerDef, protoIncludeDirs } from '../../src/distributed/server-def.js';
import { parseTfConfig, type ClusterConfig } from '../../src/distributed/tf-config.js';
import { loadCollectiveBinding } from './native-binding.js';

/**
 * The ServerDef prmkit encodes with protobufjs against TensorFlow's own: libtensorflow parses
 * the same message written in protobuf text format (TFE_GetServerDef, through the binding) and
 * serializes it with its compiled schema. Both decode to the same message, so field numbers,
 * nesting and map entries agree with what TFE_EnableCollectiveOps will parse.
 */

/** The ServerDef MultiWorkerMirroredStrategy builds, in text format, written from the spec. */
function textServerDef(c: ClusterConfig): string {
  const jobs = [...c.jobs.entries()]
    .map(([name, tasks]) => `job { name: "${name}" ${[...tasks.entries()].map(([i, a]) => `tasks { key: ${i} value: "${a}" }`).join(' ')} }`)
    .join(' ');
  return (
    `cluster { ${jobs} } job_name: "${c.taskType}" task_index: ${c.taskIndex} protocol: "${c.protocol}" ` +
    `default_session_config { device_filters: "/job:${c.taskType}/task:${c.taskIndex}" experimental { collective_group_leader: "${c.leader}" } }`
  );
}

const configs: Record<string, unknown> = {
  'two workers': { cluster: { worker: ['127.0.0.1:20001', '127.0.0.1:20002'] }, task: { type: 'worker', index: 1 } },
  'chief, workers and an evaluator': {
    cluster: { chief: ['chief-0.svc:2222'], worker: ['w-0.svc:2222', 'w-1.svc:2222', 'w-2.svc:2222'], evaluator: ['eval.svc:2222'] },
    task: { type: 'worker', index: 2 },
  },
};

describe('tensorflow.ServerDef encoding', function () {
  let serverDefFromText: (text: string) => Uint8Array;
  before(function () {
    const loaded = loadCollectiveBinding();
    if ('skip' in loaded) {
      console.warn(`      skipped: ${loaded.skip}`);
      this.skip();
    }
    if (protoIncludeDirs().length === 0) {
      console.warn("      skipped: TensorFlow's .proto files are not installed (run 'npm run setup-native')");
      this.skip();
    }
    serverDefFromText = (text) => loaded.binding.serverDefFromText(text);
  });

  for (const [name, config] of Object.entries(configs)) {
    it(`matches libtensorflow's own encoding: ${name}`, () => {
      const cluster = parseTfConfig(JSON.stringify(config))!;
      const ours = encodeServerDef(cluster);
      const theirs = serverDefFromText(textServerDef(cluster));
      expect(decodeServerDef(ours)).to.deep.equal(decodeServerDef(theirs));
      // Same fields, same sizes: only the order of map entries may differ between encoders.
      expect(ours.length).to.equal(theirs.length);
      const decoded = decodeServerDef(ours) as { jobName: string; taskIndex: number; cluster: { job: { name: string }[] } };
      expect(decoded.jobName).to.equal(cluster.taskType);
      expect(decoded.taskIndex).to.equal(cluster.taskIndex);
      expect(decoded.cluster.job.map((j) => j.name)).to.deep.equal([...cluster.jobs.keys()]);
    });
  }

  it('is refused by libtensorflow when malformed (the reference parser really checks)', () => {
    expect(() => serverDefFromText('cluster { job { nme: "x" } }')).to.throw(/nme/);
  });
});
