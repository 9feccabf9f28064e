/**
 * The tensorflow.ServerDef that enables collective ops on the native backend's eager context,
 * encoded with protobufjs from TensorFlow's own .proto files: scripts/setup-native installs the
 * wheel's tensorflow/core/protobuf/*.proto (and their imports) under the native package's
 * deps/include, next to the C API headers the binding is compiled against, so the schema always
 * matches the libtensorflow that parses the bytes.
 *
 * The fields are the ones tf.distribute.MultiWorkerMirroredStrategy sets: the whole cluster,
 * this task's job and index, the protocol, and a session config naming the collective group
 * leader and filtering devices to this task's own.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import protobuf from 'protobufjs';
import type { ClusterConfig } from './tf-config.js';

const SERVER_DEF_PROTO = 'tensorflow/core/protobuf/tensorflow_server.proto';
const NATIVE_PACKAGES = ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'] as const;

const requireHere = createRequire(import.meta.url);

/** deps/include of the installed native package(s) that hold TensorFlow's .proto files. */
export function protoIncludeDirs(): string[] {
  const dirs: string[] = [];
  for (const pkg of NATIVE_PACKAGES) {
    let pkgJson: string;
    try {
      pkgJson = requireHere.resolve(`${pkg}/package.json`);
    } catch {
      continue;
    }
    const include = path.join(path.dirname(pkgJson), 'deps', 'include');
    if (existsSync(path.join(include, SERVER_DEF_PROTO))) dirs.push(include);
  }
  return dirs;
}

let cached: { include: string; type: protobuf.Type } | null = null;

/** The tensorflow.ServerDef message type, loaded from `include` (default: the native package's). */
export function serverDefType(include?: string): protobuf.Type {
  const dir = include ?? protoIncludeDirs()[0];
  if (!dir) {
    throw new Error(
      `TensorFlow's ${SERVER_DEF_PROTO} is not installed: run 'npm run setup-native' (it copies the wheel's .proto files into the native package's deps/include)`,
    );
  }
  if (cached?.include === dir) return cached.type;
  const root = new protobuf.Root();
  // Imports are relative to the include root ("tensorflow/core/..."); protobufjs's bundled
  // google/protobuf/*.proto serve the well-known types.
  root.resolvePath = (_origin, target) => {
    const candidate = path.join(dir, target);
    return existsSync(candidate) ? candidate : target;
  };
  root.loadSync(SERVER_DEF_PROTO);
  const type = root.lookupType('tensorflow.ServerDef');
  cached = { include: dir, type };
  return type;
}

/** The ServerDef as a plain object (protobufjs field names), for encoding and for tests. */
export function serverDefObject(cluster: ClusterConfig): Record<string, unknown> {
  const job = [...cluster.jobs.entries()].map(([name, tasks]) => ({ name, tasks: Object.fromEntries(tasks) }));
  return {
    cluster: { job },
    jobName: cluster.taskType,
    taskIndex: cluster.taskIndex,
    protocol: cluster.protocol,
    defaultSessionConfig: {
      deviceFilters: [`/job:${cluster.taskType}/task:${cluster.taskIndex}`],
      experimental: { collectiveGroupLeader: cluster.leader },
    },
  };
}

/** Serialized tensorflow.ServerDef for this task of the cluster. */
export function encodeServerDef(cluster: ClusterConfig, include?: string): Uint8Array {
  const type = serverDefType(include);
  const object = serverDefObject(cluster);
  const problem = type.verify(object);
  if (problem) throw new Error(`tensorflow.ServerDef: ${problem}`);
  return type.encode(type.fromObject(object)).finish();
}

/** Decodes a serialized ServerDef into a plain object (int64 as numbers, enums as names). */
export function decodeServerDef(bytes: Uint8Array, include?: string): Record<string, unknown> {
  const type = serverDefType(include);
  return type.toObject(type.decode(bytes), { longs: Number, enums: String, defaults: false }) as Record<string, unknown>;
}
