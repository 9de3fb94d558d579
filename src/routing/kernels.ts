// The GPU side of routing (shaders/routing.wgsl): gates from router scores (softmax over the top
// k, or FlyLoRA's top-k of |h|), gates applied to each expert's block of rank components and
// their gradients, and the load-balancing loss's coefficients. Each records into a batch and
// returns new tensors the caller owns (or writes `into`).
import { linearGrid, packParams, type Batch } from '../gpu/dispatch.ts';
import { createTensor, shapeString, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import type { Gpu } from '../gpu/device.ts';

const WG = 64;

/** How the rank components of a stacked term belong to experts: expert e owns offsets[e] … offsets[e+1]. */
export interface ExpertBlocks {
  experts: number;
  /** E + 1 increasing offsets from 0 to R. */
  offsets: readonly number[];
}

/** The stacked rank R. */
export function stackedRank(blocks: ExpertBlocks): number {
  return blocks.offsets[blocks.experts];
}

/** Blocks of the given ranks, in order (a rank may be 0: that expert has no term here). */
export function blocksOf(ranks: readonly number[]): ExpertBlocks {
  const offsets = [0];
  for (const r of ranks) offsets.push(offsets[offsets.length - 1] + r);
  return { experts: ranks.length, offsets };
}

/** The layout as the shader reads it: offsets, then the expert of every rank component. */
export function uploadBlocks(gpu: Gpu, blocks: ExpertBlocks, label: string): Tensor {
  const { experts, offsets } = blocks;
  const rank = stackedRank(blocks);
  const data = new Uint32Array(experts + 1 + rank);
  data.set(offsets);
  for (let e = 0; e < experts; e++)
    data.fill(e, experts + 1 + offsets[e], experts + 1 + offsets[e + 1]);
  return uploadTensor(gpu, data, [data.length], 'u32', `${label} expert blocks`);
}

/** How scores become gates: a softmax renormalised over the top k, or a 0/1 mask of the top-k |scores|. */
export type GateKind = 'softmax' | 'magnitude';

const KIND: Record<GateKind, number> = { softmax: 0, magnitude: 1 };

interface Shape {
  rows: number;
  experts: number;
  rank?: number;
  stride?: number;
  topK?: number;
  accumulate?: boolean;
  alpha?: number;
}

function params(s: Shape): ArrayBuffer {
  return packParams([
    { u32: s.rows },
    { u32: s.experts },
    { u32: s.rank ?? 0 },
    { u32: s.stride ?? s.experts },
    { u32: s.topK ?? 0 },
    { u32: s.accumulate ? 1 : 0 },
    { f32: s.alpha ?? 0 },
  ]);
}

function kernel(batch: Batch, entryPoint: string, kind: GateKind = 'softmax') {
  return batch.gpu.pipelines.get({
    shader: 'routing',
    entryPoint,
    constants: { WG, KIND: KIND[kind] },
  });
}

/**
 * Gates [T × E] from scores [T × E] and, for softmax gates, the full softmax `probs` (what the
 * load-balancing loss reads). topK 0: every expert.
 */
export function gates(
  batch: Batch,
  scores: Tensor,
  kind: GateKind,
  topK: number,
): { gates: Tensor; probs: Tensor } {
  const [rows, experts] = scores.shape;
  const gated = createTensor(batch.gpu, scores.shape, 'f32', 'gates');
  const probs = createTensor(batch.gpu, kind === 'softmax' ? scores.shape : [1], 'f32', 'probs');
  batch.dispatch(
    kernel(batch, 'gate', kind),
    [scores, gated, probs],
    linearGrid(Math.ceil(rows / WG), batch.gpu),
    params({ rows, experts, topK }),
    `${kind} gates top-${topK} ${shapeString(scores.shape)}`,
  );
  return { gates: gated, probs };
}

/**
 * x [T × R] with each expert's block of columns scaled by its gate: gates [T × E], or [1 × E]
 * shared by every token (learned scales).
 */
export function applyGates(
  batch: Batch,
  x: Tensor,
  gateValues: Tensor,
  blocks: ExpertBlocks,
  layout: Tensor,
): Tensor {
  const [rows, rank] = x.shape;
  const shared = gateValues.shape[0] === 1 && rows !== 1;
  const out = createTensor(batch.gpu, x.shape, 'f32', 'gated');
  batch.dispatch(
    kernel(batch, 'apply'),
    [x, gateValues, layout, out],
    linearGrid(Math.ceil((rows * rank) / WG), batch.gpu),
    params({ rows, experts: blocks.experts, rank, stride: shared ? 0 : blocks.experts }),
    `apply gates ${shapeString(x.shape)} by ${shapeString(gateValues.shape)}`,
  );
  return out;
}

/**
 * ∂L/∂gates given ∂L/∂(gated x) and x, both [T × R]: [T × E], or [1 × E] summed over the tokens
 * when `into` is a shared row. Written into `into` (added to it with `accumulate`) or a new tensor.
 */
export function gateGradients(
  batch: Batch,
  dGated: Tensor,
  x: Tensor,
  blocks: ExpertBlocks,
  layout: Tensor,
  options: { into?: Tensor; accumulate?: boolean } = {},
): Tensor {
  const [rows, rank] = x.shape;
  const out = options.into ?? createTensor(batch.gpu, [rows, blocks.experts], 'f32', 'd gates');
  const shared = out.shape[0] === 1 && rows !== 1;
  batch.dispatch(
    kernel(batch, 'gate_grad'),
    [dGated, x, layout, out],
    linearGrid(Math.ceil(((shared ? 1 : rows) * blocks.experts) / WG), batch.gpu),
    params({
      rows,
      experts: blocks.experts,
      rank,
      stride: shared ? 0 : blocks.experts,
      accumulate: options.accumulate,
    }),
    `gate gradients ${shapeString(x.shape)} → ${shapeString(out.shape)}`,
  );
  return out;
}

/**
 * ∂L/∂scores of softmax gates from ∂L/∂gates, plus the load-balancing loss's part through the
 * probabilities (coef [E] = ∂L_aux/∂p, from `balance`).
 */
export function gatesBackward(
  batch: Batch,
  saved: { gates: Tensor; probs: Tensor },
  dGates: Tensor,
  coef: Tensor,
  topK: number,
): Tensor {
  const [rows, experts] = saved.gates.shape;
  const dScores = createTensor(batch.gpu, saved.gates.shape, 'f32', 'd scores');
  batch.dispatch(
    kernel(batch, 'gate_backward'),
    [saved.gates, saved.probs, dGates, coef, dScores],
    linearGrid(Math.ceil(rows / WG), batch.gpu),
    params({ rows, experts, topK }),
    `gates backward ${shapeString(saved.gates.shape)}`,
  );
  return dScores;
}

/**
 * The Switch-Transformer load-balancing loss α·E·Σ f_e·P_e of one gate's choices: coef [E] its
 * gradient with respect to each token's probabilities, stats [2E] the loads f then the mean
 * probabilities P.
 */
export function balance(
  batch: Batch,
  probs: Tensor,
  topK: number,
  alpha: number,
): { coef: Tensor; stats: Tensor } {
  const [rows, experts] = probs.shape;
  const coef = createTensor(batch.gpu, [experts], 'f32', 'balance coef');
  const stats = createTensor(batch.gpu, [2, experts], 'f32', 'balance stats');
  batch.dispatch(
    kernel(batch, 'balance'),
    [probs, coef, stats],
    linearGrid(Math.ceil(experts / WG), batch.gpu),
    params({ rows, experts, topK, alpha }),
    `balance ${shapeString(probs.shape)}`,
  );
  return { coef, stats };
}
