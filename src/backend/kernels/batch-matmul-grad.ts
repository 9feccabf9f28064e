/**
 * BatchMatMul gradient that also handles broadcast batch dimensions.
 *
 * tfjs 4.22's gradient returns, for an input whose batch dims were broadcast (e.g. a [1,H,D,T]
 * operand against [B,H,T,D]), a gradient of the broadcast shape, and the engine then throws
 * "The gradient of input 'b' has shape '2,2,4,3', which does not match the shape of the input
 * '1,2,4,3'". This wraps tfjs's own gradient and sums over the broadcast dims, as the
 * gradients of Add/Mul do.
 */
import * as tf from '@tensorflow/tfjs';
import type { GradConfig, NamedAttrMap, Tensor } from '@tensorflow/tfjs';

/** Sums `grad` down to `shape` over the dimensions that broadcasting expanded. */
export function sumToShape(grad: Tensor, shape: number[]): Tensor {
  if (grad.shape.length === shape.length && grad.shape.every((d, i) => d === shape[i])) return grad;
  const axes = tf.backend_util.getReductionAxes(shape, grad.shape);
  const summed = axes.length > 0 ? tf.sum(grad, axes) : grad;
  return tf.reshape(summed, shape);
}

const wrapped = new WeakSet<GradConfig['gradFunc']>();

/** Wraps a BatchMatMul GradConfig so each input gradient is summed to that input's shape. */
export function broadcastSafeMatMulGrad(base: GradConfig): GradConfig {
  const gradFunc: GradConfig['gradFunc'] = (dy: Tensor | Tensor[], saved: Tensor[], attrs: NamedAttrMap) => {
    const [a, b] = saved;
    const grads = base.gradFunc(dy, saved, attrs);
    return {
      a: () => sumToShape(grads.a(), a.shape),
      b: () => sumToShape(grads.b(), b.shape),
    };
  };
  wrapped.add(gradFunc);
  return { kernelName: base.kernelName, inputsToSave: base.inputsToSave, gradFunc };
}

export function isBroadcastSafe(config: GradConfig | undefined): boolean {
  return config !== undefined && wrapped.has(config.gradFunc);
}
