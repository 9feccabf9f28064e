import * as tf from '@tensorflow/tfjs';

/** Scalars to TensorBoard event files. */
export interface ScalarWriter {
  scalars(step: number, values: Record<string, number | null>): void;
  close(): Promise<void>;
}

interface SummaryFileWriter {
  scalar(name: string, value: number, step: number): void;
  flush(): void;
}

/**
 * TensorBoard event files through tfjs-node's summary writer, which exists only with the native
 * backend (it calls libtensorflow's event writer). On wasm or cpu it says so once and writes
 * nothing: tfjs has no pure-JS event writer.
 */
export async function openTensorBoard(logDir: string, log: (line: string) => void): Promise<ScalarWriter | null> {
  if (tf.getBackend() !== 'tensorflow') {
    log(`train: TensorBoard event files skipped (they need the native tensorflow backend; running on ${tf.getBackend()})`);
    return null;
  }
  let writer: SummaryFileWriter;
  try {
    // The native package is optional; the backend module already imported whichever one loaded.
    const node = await importNodeSummary();
    if (!node) throw new Error('neither @tensorflow/tfjs-node nor @tensorflow/tfjs-node-gpu could be imported');
    writer = node.summaryFileWriter(logDir);
  } catch (err) {
    log(`train: TensorBoard event files skipped: ${(err as Error).message}`);
    return null;
  }
  log(`train: TensorBoard event files in ${logDir}`);
  return {
    scalars(step, values) {
      for (const [name, value] of Object.entries(values)) {
        if (value !== null && Number.isFinite(value)) writer.scalar(name, value, step);
      }
    },
    async close() {
      writer.flush();
    },
  };
}

type NodeSummary = { summaryFileWriter(dir: string): SummaryFileWriter };

async function importNodeSummary(): Promise<NodeSummary | undefined> {
  for (const name of ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu']) {
    try {
      const mod = (await import(name)) as { node?: NodeSummary };
      if (mod.node) return mod.node;
    } catch {
      // not installed or its binding does not load: try the other package
    }
  }
  return undefined;
}
