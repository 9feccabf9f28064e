/**
 * The collective entry points prmkit adds to the tfjs-node binding (scripts/native/), reached
 * through the running native backend. Every tfjs tensor of the process lives in that backend's
 * eager context, which is the context the collectives are enabled on.
 */
import * as tf from '@tensorflow/tfjs';

/** An op attribute as the binding's executeOp takes it. */
export interface OpAttr {
  name: string;
  type: number;
  value: string | number | boolean | number[];
}

/** What the binding returns for each output tensor. */
export interface TensorMetadata {
  id: number;
  shape: number[];
  dtype: number;
}

/** A TensorFlow error surfaced by the binding; tfCode is the TF_Code (4 deadline, 14 unavailable, ...). */
export interface TfError extends Error {
  tfCode?: number;
}

export const TF_CODE = { DEADLINE_EXCEEDED: 4 } as const;

export interface CollectiveBinding {
  enableCollectiveOps(serverDef: Uint8Array): string;
  executeOpAsync(name: string, attrs: OpAttr[], inputIds: number[], numOutputs: number): Promise<TensorMetadata[]>;
  checkCollectivePeerHealth(task: string, timeoutMs: number): Promise<void>;
  abortCollectiveOps(message: string): void;
  serverDefFromText(text: string): Uint8Array;
  getNumOfTensors(): number;
  TF_Version: string;
  TF_FLOAT: number;
  TF_INT32: number;
  TF_ATTR_STRING: number;
  TF_ATTR_INT: number;
  TF_ATTR_FLOAT: number;
  TF_ATTR_TYPE: number;
}

/** The parts of tfjs-node's NodeJSKernelBackend used here. */
export interface NativeBackend {
  binding: CollectiveBinding;
  getInputTensorIds(tensors: tf.Tensor[]): number[];
  createOutputTensor(metadata: TensorMetadata): tf.Tensor;
}

export class CollectivesUnavailableError extends Error {
  override name = 'CollectivesUnavailableError';
}

/** Why collectives cannot run in this process, or null when they can. */
export function collectivesUnavailableReason(): string | null {
  const name = tf.getBackend();
  if (name !== 'tensorflow') {
    return `data-parallel training needs the native backend (tensorflow or tensorflow-gpu): TensorFlow's collective ops live in libtensorflow; the running backend is ${name ?? 'none'}`;
  }
  const binding = (tf.backend() as unknown as Partial<NativeBackend>).binding;
  if (!binding || typeof binding.enableCollectiveOps !== 'function') {
    return "the native binding lacks prmkit's collective ops: rebuild it with 'npm run setup-native' (a binding from --download or an older build has none)";
  }
  return null;
}

/** The running native backend, with prmkit's collective entry points. */
export function nativeBackend(): NativeBackend {
  const reason = collectivesUnavailableReason();
  if (reason) throw new CollectivesUnavailableError(reason);
  return tf.backend() as unknown as NativeBackend;
}
