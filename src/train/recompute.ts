import * as tf from '@tensorflow/tfjs';

/**
 * Gradients by activation recomputation (train.recompute), as torch.utils.checkpoint does per
 * decoder layer: the forward pass keeps only each stage's input, and the backward pass re-runs one
 * stage at a time under its own gradient tape, chaining the stages by their input gradients.
 *
 * Why by hand: tfjs has no checkpointing, and its one-tape backward holds every saved forward
 * tensor and every intermediate gradient until the whole backward ends. Per stage, both live only
 * while that stage's backward runs, so activation memory is one layer's plus the stage inputs.
 */

/** One differentiable stage of a forward pass: output = run(input). */
export interface ChainStage {
  variables: readonly tf.Variable[];
  run(input: tf.Tensor): tf.Tensor;
}

/** A forward pass as a chain: first() -> stages[0] -> ... -> stages[n-1] -> loss(). */
export interface ForwardChain {
  /** The first activation (the embedding lookup of the batch). */
  first: { variables: readonly tf.Variable[]; run(): tf.Tensor };
  stages: readonly ChainStage[];
  /** The scalar loss from the last activation. */
  loss: { variables: readonly tf.Variable[]; run(input: tf.Tensor): tf.Scalar };
}

/** Gradients of some of the wanted variables (indices into `wanted`), final: no later part adds to them. */
export interface GradientPart {
  indices: number[];
  grads: tf.Tensor[];
}

/**
 * The loss value and its gradients with respect to `wanted` (aligned with it). A variable that
 * appears in several parts of the chain (a tied embedding) gets the sum of its gradients. Parts
 * below the lowest wanted variable are run forward only.
 */
export function chainGradients(chain: ForwardChain, wanted: readonly tf.Variable[]): { value: tf.Scalar; grads: tf.Tensor[] } {
  const grads: tf.Tensor[] = new Array(wanted.length);
  const parts = chainGradientParts(chain, wanted);
  try {
    for (let r = parts.next(); ; r = parts.next()) {
      if (r.done) return { value: r.value, grads };
      r.value.indices.forEach((i, k) => (grads[i] = r.value.grads[k]));
    }
  } catch (e) {
    tf.dispose(grads.filter((g) => g !== undefined));
    throw e;
  }
}

/**
 * chainGradients as the backward pass goes: after each part of the chain (the loss, each stage
 * top down, the first) it yields the gradients that are now final, and returns the loss value.
 * The consumer owns what is yielded; with sharded gradients (train.shard_optimizer:
 * states+gradients) it reduce-scatters and frees them before the next stage runs, so the whole
 * gradient never exists at once. Stopping early (return or throw into it) frees what it holds.
 */
export function* chainGradientParts(chain: ForwardChain, wanted: readonly tf.Variable[]): Generator<GradientPart, tf.Scalar, void> {
  const wantedSet = new Set<tf.Variable>(wanted);
  const pick = (vars: readonly tf.Variable[]) => vars.filter((v) => wantedSet.has(v));
  const n = chain.stages.length;
  // Stage index of the lowest part that needs a backward pass: -1 = the first part, n = loss only.
  let lowest = n;
  if (pick(chain.first.variables).length > 0) lowest = -1;
  else for (let i = 0; i < n; i++) if (pick(chain.stages[i].variables).length > 0) { lowest = i; break; }

  // The backward order of the parts: loss, stages n-1 .. lowest, first. A variable's gradient is
  // final after the last of them that holds it.
  const order: (readonly tf.Variable[])[] = [chain.loss.variables];
  for (let i = n - 1; i >= Math.max(lowest, 0); i--) order.push(chain.stages[i].variables);
  if (lowest === -1) order.push(chain.first.variables);
  const lastPart = new Map<tf.Variable, number>();
  order.forEach((vars, k) => pick(vars).forEach((v) => lastPart.set(v, k)));
  wanted.forEach((v) => {
    if (!lastPart.has(v)) throw new Error(`recompute: ${v.name} is not part of the forward chain`);
  });
  const indexOf = new Map<tf.Variable, number>(wanted.map((v, i) => [v, i]));

  const sums = new Map<tf.Variable, tf.Tensor>();
  const accumulate = (vars: readonly tf.Variable[], grads: readonly tf.Tensor[]) => {
    vars.forEach((v, k) => {
      const g = grads[k];
      if (!g) throw new Error(`recompute: no gradient reaches ${v.name}`);
      const previous = sums.get(v);
      if (previous) {
        sums.set(v, tf.add(previous, g));
        previous.dispose();
        g.dispose();
      } else {
        sums.set(v, g);
      }
    });
  };
  /** Takes the gradients that part k finished out of `sums`. */
  const finished = (k: number): GradientPart => {
    const vars = [...new Set(pick(order[k]))].filter((v) => lastPart.get(v) === k && sums.has(v));
    const part = { indices: vars.map((v) => indexOf.get(v) as number), grads: vars.map((v) => sums.get(v) as tf.Tensor) };
    vars.forEach((v) => sums.delete(v));
    return part;
  };

  // Forward: keep the input of every stage that will be re-run.
  const inputs: (tf.Tensor | null)[] = new Array(n + 1).fill(null);
  let value: tf.Scalar | null = null;
  let dy: tf.Tensor | null = null;
  let done = false;
  try {
    inputs[0] = tf.tidy(() => chain.first.run());
    for (let i = 0; i < n; i++) {
      const out = tf.tidy(() => chain.stages[i].run(inputs[i] as tf.Tensor));
      if (i < lowest) {
        (inputs[i] as tf.Tensor).dispose();
        inputs[i] = null;
      }
      inputs[i + 1] = out;
    }

    // Loss, and the gradient of its input.
    const top = inputs[n] as tf.Tensor;
    const lossVars = pick(chain.loss.variables);
    const needInput = lowest < n;
    const topResult = tf.engine().gradients(() => chain.loss.run(top), needInput ? [top, ...lossVars] : lossVars, undefined, true);
    value = topResult.value as tf.Scalar;
    if (needInput) dy = topResult.grads[0];
    accumulate(lossVars, needInput ? topResult.grads.slice(1) : topResult.grads);
    top.dispose();
    inputs[n] = null;
    let part = 0;
    yield finished(part);

    // Stages, top down.
    for (let i = n - 1; i >= Math.max(lowest, 0); i--) {
      const input = inputs[i] as tf.Tensor;
      const vars = pick(chain.stages[i].variables);
      const wantsInput = i > lowest || lowest === -1;
      const xs = wantsInput ? [input, ...vars] : vars;
      const upstream = dy as tf.Tensor;
      const { value: out, grads } = tf.engine().gradients(() => chain.stages[i].run(input), xs, upstream, true);
      out.dispose();
      upstream.dispose();
      dy = wantsInput ? grads[0] : null;
      accumulate(vars, wantsInput ? grads.slice(1) : grads);
      input.dispose();
      inputs[i] = null;
      yield finished(++part);
    }

    if (lowest === -1) {
      const vars = pick(chain.first.variables);
      const upstream = dy as tf.Tensor;
      const { value: out, grads } = tf.engine().gradients(() => chain.first.run(), vars, upstream, true);
      out.dispose();
      upstream.dispose();
      dy = null;
      accumulate(vars, grads);
      yield finished(++part);
    }
    done = true;
    return value as tf.Scalar;
  } finally {
    // A consumer that stopped early (or an error here) leaves sums and the value to free.
    if (!done) {
      tf.dispose([...sums.values()]);
      value?.dispose();
    }
    for (const t of inputs) t?.dispose();
    dy?.dispose();
  }
}
