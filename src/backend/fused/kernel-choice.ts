/**
 * The one switch between prmkit's fused native kernels and the eager tfjs ops (recipe key
 * `train.kernels`), for the whole process: training (plain and recompute), LM pretraining, dev
 * evaluation, scoring and the server all run the decoder forward of src/model/qwen2.ts, which
 * asks here. 'fused' is the default and falls back to 'eager' where the backend lacks the
 * kernels (wasm, cpu, a binding built before them); kernelInfo() says which ran and why, for
 * the log and the run manifest.
 */
import { fusedKernelsAvailability } from './fused-ops.js';
import { KERNEL_CHOICES, type KernelChoice } from './kernel-names.js';

export { KERNEL_CHOICES, type KernelChoice };

export interface KernelInfo {
  requested: KernelChoice;
  /** What the decoder runs on the backend in use. */
  used: KernelChoice;
  /** Why 'fused' was requested but 'eager' runs. */
  reason?: string;
}

let requested: KernelChoice = 'fused';

export function checkKernelChoice(choice: string): KernelChoice {
  if (!(KERNEL_CHOICES as readonly string[]).includes(choice)) {
    throw new Error(`kernels must be one of ${KERNEL_CHOICES.join(', ')}, got '${choice}'`);
  }
  return choice as KernelChoice;
}

/** Sets the process-wide choice (a model's DecoderOptions.kernels overrides it). */
export function setKernelChoice(choice: KernelChoice): KernelInfo {
  requested = checkKernelChoice(choice);
  return kernelInfo();
}

export function kernelChoice(): KernelChoice {
  return requested;
}

/** What `choice` (default: the process-wide one) means on the backend in use. */
export function kernelInfo(choice: KernelChoice = requested): KernelInfo {
  if (choice === 'eager') return { requested: choice, used: 'eager' };
  const avail = fusedKernelsAvailability();
  return avail.ok ? { requested: choice, used: 'fused' } : { requested: choice, used: 'eager', reason: avail.reason };
}

/** One log line: `kernels: fused` or `kernels: eager (fused requested: <reason>)`. */
export function describeKernels(info: KernelInfo): string {
  return `kernels: ${info.used}${info.reason ? ` (${info.requested} requested: ${info.reason})` : ''}`;
}
