import { ComputeEngine } from '@cortex-js/compute-engine';
import { closeEnough } from './numbers.js';

/**
 * Symbolic and numeric comparison of two LaTeX scalars through @cortex-js/compute-engine.
 * Unbounded in time: call it through bounded-cas.ts (a worker with a deadline), never directly on
 * the grading path.
 */

export type CasMode = 'equal' | 'proportional';

export interface CasRequest {
  a: string;
  b: string;
  relTol: number;
  /** 'proportional': equal up to a non-zero constant factor (sides of equations, lhs - rhs). */
  mode: CasMode;
}

type Expr = NonNullable<ReturnType<ComputeEngine['parse']>>;

let engine: ComputeEngine | undefined;
function ce(): ComputeEngine {
  engine ??= new ComputeEngine();
  return engine;
}

/** Values floating-point evaluation leaves near zero (sin(pi) = 1.2e-16) count as zero. */
const ABS_TOL = 1e-9;

/** Deterministic sample points for free variables: positive, away from 0, 1 and each other. */
const SAMPLES = [0.731, 1.374, 2.219, 0.413, 3.17, 1.618, 2.71, 0.577];

interface Complex {
  re: number;
  im: number;
}

function numericValue(e: Expr): Complex | null {
  const n = e.N();
  const re = n.re;
  const im = n.im;
  if (!Number.isFinite(re) || !Number.isFinite(im)) return null;
  return { re, im };
}

function complexClose(x: Complex, y: Complex, relTol: number): boolean {
  const scale = Math.max(Math.hypot(x.re, x.im), Math.hypot(y.re, y.im));
  return Math.hypot(x.re - y.re, x.im - y.im) <= relTol * scale + ABS_TOL;
}

function ratioOf(x: Complex, y: Complex): Complex | null {
  const d = y.re * y.re + y.im * y.im;
  if (d < 1e-18) return null;
  return { re: (x.re * y.re + x.im * y.im) / d, im: (x.im * y.re - x.re * y.im) / d };
}

function evaluateAt(e: Expr, vars: readonly string[], point: number): Complex | null {
  const subs: Record<string, number> = {};
  vars.forEach((v, i) => {
    subs[v] = SAMPLES[(point + 3 * i) % SAMPLES.length] + 0.1 * i;
  });
  try {
    return numericValue(e.subs(subs));
  } catch {
    return null;
  }
}

/**
 * Numeric probing at fixed points (positive values, as answers' variables usually are). Returns
 * true when every point where both sides are finite agrees and there are at least 3 such points.
 */
function agreeAtSamples(a: Expr, b: Expr, vars: readonly string[], relTol: number, mode: CasMode): boolean | undefined {
  let agreed = 0;
  let ratio: Complex | null = null;
  for (let p = 0; p < 6; p++) {
    const va = evaluateAt(a, vars, p);
    const vb = evaluateAt(b, vars, p);
    if (!va || !vb) continue;
    if (mode === 'equal') {
      if (!complexClose(va, vb, relTol)) return false;
    } else {
      const r = ratioOf(va, vb);
      if (!r) continue;
      if (ratio && !complexClose(r, ratio, relTol)) return false;
      ratio ??= r;
    }
    agreed++;
  }
  return agreed >= 3 ? true : undefined;
}

export function casEquivalent(req: CasRequest): boolean {
  const engine = ce();
  const a = engine.parse(req.a);
  const b = engine.parse(req.b);
  if (!a.isValid || !b.isValid) return false;
  if (req.mode === 'equal' && a.isSame(b)) return true;

  const vars = [...new Set([...a.unknowns, ...b.unknowns])].sort();
  if (vars.length === 0) {
    const va = numericValue(a);
    const vb = numericValue(b);
    if (!va || !vb) return false;
    if (req.mode === 'equal') return complexClose(va, vb, req.relTol);
    const r = ratioOf(va, vb);
    return r !== null && Math.hypot(r.re, r.im) > ABS_TOL;
  }

  // Sampling over the union of free variables also separates x+C from x, and lets
  // sin^2 x + cos^2 x equal 1.
  const sampled = agreeAtSamples(a, b, vars, req.relTol, req.mode);
  if (sampled !== undefined) return sampled;
  if (req.mode === 'proportional') return false;
  // Not numerically evaluable. compute-engine's identity check wrongly says true for expressions
  // over unknown functions ((t-1)u(t) vs (t+1)u(t)), so those only match structurally.
  if (hasUnknownFunction(a.json) || hasUnknownFunction(b.json)) return a.simplify().isSame(b.simplify());
  return a.isIdenticallyEqual(b) === true;
}

/** compute-engine's own operators are capitalised ("Sin", "Multiply"); "u" in u(t) is the user's. */
function hasUnknownFunction(json: unknown): boolean {
  if (!Array.isArray(json) || json.length === 0) return false;
  const [head, ...args] = json as unknown[];
  if (typeof head === 'string' && /^[a-z]/.test(head)) return true;
  return args.some((arg) => hasUnknownFunction(arg));
}
