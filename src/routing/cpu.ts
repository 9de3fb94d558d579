// The f64 references of shaders/routing.wgsl, written for clarity: what the GPU kernels are
// tested against and what the reference model (src/model/cpu/reference.ts) gates with. Matrices
// are row-major [T × E] or [T × R].
import type { ExpertBlocks, GateKind } from './kernels.ts';

/** Whether expert e is among the k highest keys of the row (ties to the lower index; k = 0: all). */
export function chosen(keys: ArrayLike<number>, e: number, k: number): boolean {
  if (k === 0 || k >= keys.length) return true;
  let above = 0;
  for (let j = 0; j < keys.length; j++)
    if (keys[j] > keys[e] || (keys[j] === keys[e] && j < e)) above++;
  return above < k;
}

/** One token's gates and full softmax from its scores. */
export function gateRow(
  scores: ArrayLike<number>,
  kind: GateKind,
  topK: number,
): { gates: Float64Array; probs: Float64Array } {
  const n = scores.length;
  if (kind === 'magnitude') {
    const keys = Array.from(scores, Math.abs);
    const gates = Float64Array.from({ length: n }, (_, e) => (chosen(keys, e, topK) ? 1 : 0));
    return { gates, probs: new Float64Array(n) };
  }
  const m = Math.max(...Array.from(scores));
  const exps = Array.from(scores, (s) => Math.exp(s - m));
  const total = exps.reduce((a, b) => a + b, 0);
  const probs = Float64Array.from(exps, (v) => v / total);
  let kept = 0;
  for (let e = 0; e < n; e++) if (chosen(scores, e, topK)) kept += probs[e];
  // Top-1 keeps the probability (Switch Transformer): renormalised, it would be a constant 1.
  const norm = topK === 1 ? 1 : kept;
  const gates = Float64Array.from(probs, (p, e) => (chosen(scores, e, topK) ? p / norm : 0));
  return { gates, probs };
}

/** gateRow over every row of scores [T × E]. */
export function cpuGates(
  scores: ArrayLike<number>,
  experts: number,
  kind: GateKind,
  topK: number,
): { gates: Float64Array; probs: Float64Array } {
  const rows = scores.length / experts;
  const gates = new Float64Array(scores.length);
  const probs = new Float64Array(scores.length);
  for (let t = 0; t < rows; t++) {
    const row = gateRow(Array.from(scores).slice(t * experts, (t + 1) * experts), kind, topK);
    gates.set(row.gates, t * experts);
    probs.set(row.probs, t * experts);
  }
  return { gates, probs };
}

/** The expert owning each of the R rank components. */
export function expertOf(blocks: ExpertBlocks): number[] {
  const owner: number[] = [];
  for (let e = 0; e < blocks.experts; e++)
    for (let j = blocks.offsets[e]; j < blocks.offsets[e + 1]; j++) owner.push(e);
  return owner;
}

/** x [T × R] with each expert's columns times its gate (gates [T × E], or one shared row [E]). */
export function cpuApplyGates(
  x: ArrayLike<number>,
  gates: ArrayLike<number>,
  blocks: ExpertBlocks,
): Float64Array {
  const owner = expertOf(blocks);
  const rank = owner.length;
  const stride = gates.length === blocks.experts ? 0 : blocks.experts;
  return Float64Array.from(x, (v, i) => v * gates[Math.floor(i / rank) * stride + owner[i % rank]]);
}

/** ∂L/∂gates [T × E] (or, shared, [E] summed over tokens) from ∂L/∂(gated x) and x. */
export function cpuGateGradients(
  dGated: ArrayLike<number>,
  x: ArrayLike<number>,
  blocks: ExpertBlocks,
  shared: boolean,
): Float64Array {
  const owner = expertOf(blocks);
  const rank = owner.length;
  const rows = x.length / rank;
  const out = new Float64Array((shared ? 1 : rows) * blocks.experts);
  for (let i = 0; i < x.length; i++)
    out[(shared ? 0 : Math.floor(i / rank) * blocks.experts) + owner[i % rank]] += dGated[i] * x[i];
  return out;
}

/**
 * ∂L/∂scores of softmax gates chosen by top-k: through the gates (renormalised, or top-1's plain
 * probability), and through the probabilities by coef.
 */
export function cpuGatesBackward(
  gates: ArrayLike<number>,
  probs: ArrayLike<number>,
  dGates: ArrayLike<number>,
  coef: ArrayLike<number>,
  topK: number,
): Float64Array {
  const experts = coef.length;
  const out = new Float64Array(gates.length);
  for (let t = 0; t < gates.length / experts; t++) {
    let throughGates = 0;
    let throughProbs = 0;
    for (let e = 0; e < experts; e++) {
      throughGates += gates[t * experts + e] * dGates[t * experts + e];
      throughProbs += probs[t * experts + e] * coef[e];
    }
    for (let e = 0; e < experts; e++) {
      const i = t * experts + e;
      const spread = topK === 1 ? probs[i] : gates[i];
      out[i] = gates[i] * dGates[i] - spread * throughGates + probs[i] * (coef[e] - throughProbs);
    }
  }
  return out;
}

/**
 * The load-balancing loss α·E·Σ f_e·P_e of probabilities [T × E]: f_e the share of tokens whose
 * top max(k, 1) holds e (over k), P_e the mean probability; coef its gradient in each p[t, e]
 * with f held constant.
 */
export function cpuBalance(
  probs: ArrayLike<number>,
  experts: number,
  topK: number,
  alpha: number,
): { loss: number; coef: Float64Array; load: Float64Array; importance: Float64Array } {
  const rows = probs.length / experts;
  const k = Math.max(topK, 1);
  const load = new Float64Array(experts);
  const importance = new Float64Array(experts);
  for (let t = 0; t < rows; t++) {
    const row = Array.from(probs).slice(t * experts, (t + 1) * experts);
    for (let e = 0; e < experts; e++) {
      if (chosen(row, e, k)) load[e] += 1 / (rows * k);
      importance[e] += row[e] / rows;
    }
  }
  const loss = alpha * experts * load.reduce((s, f, e) => s + f * importance[e], 0);
  const coef = load.map((f) => (alpha * experts * f) / rows);
  return { loss, coef, load, importance };
}
