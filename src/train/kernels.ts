// The training-only GPU ops: the backward passes of the transformer's ops (shaders/
// attention_backward, rmsnorm, layernorm and activation backward), the loss, and the optimiser's
// kernels (shaders/cross_entropy, adamw). Each records into a batch and returns new tensors the
// caller owns.
import { linearGrid, packParams, type Batch } from '../gpu/dispatch.ts';
import { createTensor, reshaped, shapeString, type Tensor } from '../gpu/tensor.ts';
import { binary } from '../linalg/elementwise.ts';
import { reduceRows } from '../linalg/reduce.ts';
import {
  attentionParams,
  dispatchActivation,
  rowLayout,
  type ActivationKind,
  type AttentionShape,
} from '../model/ops.ts';

const ROW_WG = 64;
const ELEMENT_WG = 256;

export interface AttentionGradients {
  dq: Tensor;
  dk: Tensor;
  dv: Tensor;
}

/**
 * Gradients of causal attention (with the scale and sliding window of `s`) over packed sequences
 * of `seqLen` tokens, given the forward's q, k, v (after RoPE), output and log-sum-exp, and
 * dOut = ∂L/∂out.
 */
export function attentionBackward(
  batch: Batch,
  saved: { q: Tensor; k: Tensor; v: Tensor; out: Tensor; lse: Tensor },
  dOut: Tensor,
  s: AttentionShape,
  seqLen: number,
  keep: (t: Tensor) => Tensor,
): AttentionGradients {
  const { gpu } = batch;
  const tokens = saved.q.numel / (s.heads * s.headDim);
  const rows = tokens * s.heads;
  // dsum[t, h] = dOut[t, h] · out[t, h]: the softmax's Jacobian needs it per row.
  const products = keep(binary(batch, 'mul', dOut, saved.out));
  const dsum = keep(reduceRows(batch, 'sum', reshaped(products, [rows, s.headDim])));
  const dq = createTensor(gpu, saved.q.shape, 'f32', 'attention dq');
  const dk = createTensor(gpu, saved.k.shape, 'f32', 'attention dk');
  const dv = createTensor(gpu, saved.v.shape, 'f32', 'attention dv');
  const params = attentionParams(tokens, s, { pos0: 0, seqLen });
  const what = `${shapeString(saved.q.shape)} in sequences of ${seqLen}`;
  const inputs = [saved.q, saved.k, saved.v, saved.lse, dsum, dOut];
  batch.dispatch(
    gpu.pipelines.get({
      shader: 'attention_backward',
      entryPoint: 'backward_q',
      constants: { WG: ROW_WG, HEAD_DIM: s.headDim },
    }),
    [...inputs, dq],
    linearGrid(Math.ceil(rows / ROW_WG), gpu),
    params,
    `attention dq ${what}`,
  );
  batch.dispatch(
    gpu.pipelines.get({
      shader: 'attention_backward',
      entryPoint: 'backward_kv',
      constants: { WG: ROW_WG, HEAD_DIM: s.headDim },
    }),
    [...inputs, dk, dv],
    linearGrid(Math.ceil((tokens * s.kvHeads) / ROW_WG), gpu),
    params,
    `attention dk dv ${what}`,
  );
  return { dq: keep(dq), dk: keep(dk), dv: keep(dv) };
}

/** dx of y = rmsNorm(x)·(offset + w) for a frozen w. */
export function rmsNormBackward(
  batch: Batch,
  x: Tensor,
  weight: Tensor,
  dy: Tensor,
  eps: number,
  offset = 0,
): Tensor {
  const d = x.shape[x.shape.length - 1];
  const rows = x.numel / d;
  const dx = createTensor(batch.gpu, x.shape, 'f32', 'rmsnorm dx');
  const layout = rowLayout(batch.gpu, 'backward', rows, ROW_WG);
  batch.dispatch(
    batch.gpu.pipelines.get({ shader: 'rmsnorm', ...layout }),
    [x, weight, dy, dx],
    layout.grid,
    packParams([{ u32: rows }, { u32: d }, { f32: eps }, { f32: offset }]),
    `rmsnorm backward ${shapeString(x.shape)}`,
  );
  return dx;
}

/** dx of y = layerNorm(x)·w + b for frozen w and b. */
export function layerNormBackward(
  batch: Batch,
  x: Tensor,
  weight: Tensor,
  dy: Tensor,
  eps: number,
): Tensor {
  const d = x.shape[x.shape.length - 1];
  const rows = x.numel / d;
  const dx = createTensor(batch.gpu, x.shape, 'f32', 'layernorm dx');
  const layout = rowLayout(batch.gpu, 'backward', rows, ROW_WG);
  batch.dispatch(
    batch.gpu.pipelines.get({ shader: 'layernorm', ...layout }),
    [x, weight, dy, dx],
    layout.grid,
    packParams([{ u32: rows }, { u32: d }, { f32: eps }]),
    `layernorm backward ${shapeString(x.shape)}`,
  );
  return dx;
}

/** Gradients of act = f(gate)·up (gatedActivation). */
export function gatedActivationBackward(
  batch: Batch,
  gate: Tensor,
  up: Tensor,
  dAct: Tensor,
  kind: ActivationKind,
): { dGate: Tensor; dUp: Tensor } {
  const dGate = createTensor(batch.gpu, gate.shape, 'f32', `${kind} d gate`);
  const dUp = createTensor(batch.gpu, gate.shape, 'f32', `${kind} d up`);
  dispatchActivation(batch, 'gated_backward', kind, [gate, up, dAct, dGate, dUp]);
  return { dGate, dUp };
}

/** Gradients of act = silu(gate)·up. */
export function swigluBackward(
  batch: Batch,
  gate: Tensor,
  up: Tensor,
  dAct: Tensor,
): { dGate: Tensor; dUp: Tensor } {
  return gatedActivationBackward(batch, gate, up, dAct, 'silu');
}

/** dx of y = f(x) (activation). */
export function activationBackward(
  batch: Batch,
  x: Tensor,
  dy: Tensor,
  kind: ActivationKind,
): Tensor {
  const dx = createTensor(batch.gpu, x.shape, 'f32', `${kind} dx`);
  dispatchActivation(batch, 'backward', kind, [x, dy, dx]);
  return dx;
}

/** dx of y = cap·tanh(x/cap) (softcap). */
export function softcapBackward(batch: Batch, x: Tensor, dy: Tensor, cap: number): Tensor {
  const dx = createTensor(batch.gpu, x.shape, 'f32', 'softcap dx');
  dispatchActivation(batch, 'backward', 'softcap', [x, dy, dx], cap);
  return dx;
}

/**
 * Cross-entropy of each row of logits [rows × vocab] against i32 targets (< 0: not trained).
 * Returns the per-row loss; with gradScale ≠ 0 the logits are overwritten by
 * gradScale·∂(Σ loss)/∂logits.
 */
export function crossEntropy(
  batch: Batch,
  logits: Tensor,
  targets: Tensor,
  gradScale: number,
): Tensor {
  const [rows, vocab] = logits.shape as [number, number];
  const loss = createTensor(batch.gpu, [rows], 'f32', 'loss');
  const layout = rowLayout(batch.gpu, 'main', rows, ELEMENT_WG);
  batch.dispatch(
    batch.gpu.pipelines.get({ shader: 'cross_entropy', ...layout }),
    [logits, targets, loss],
    layout.grid,
    packParams([{ u32: rows }, { u32: vocab }, { f32: gradScale }]),
    `cross-entropy ${shapeString(logits.shape)}`,
  );
  return loss;
}

/** sums[slot] = Σ grad². */
export function sumSquares(batch: Batch, grad: Tensor, sums: Tensor, slot: number): void {
  batch.dispatch(
    batch.gpu.pipelines.get({
      shader: 'adamw',
      entryPoint: 'sum_squares',
      constants: { WG: ELEMENT_WG },
    }),
    [grad, sums],
    [1],
    packParams([{ u32: grad.numel }, { u32: slot }]),
    `Σ grad² ${shapeString(grad.shape)}`,
  );
}

export interface AdamWHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** One AdamW update of `param` in place at step `t` (1-based), with grad·gradScale. */
export function adamwStep(
  batch: Batch,
  state: { param: Tensor; grad: Tensor; m: Tensor; v: Tensor },
  h: AdamWHyper,
  t: number,
  gradScale: number,
): void {
  const n = state.param.numel;
  batch.dispatch(
    batch.gpu.pipelines.get({ shader: 'adamw', entryPoint: 'step', constants: { WG: ELEMENT_WG } }),
    [state.param, state.grad, state.m, state.v],
    linearGrid(Math.ceil(n / ELEMENT_WG), batch.gpu),
    packParams([
      { u32: n },
      { f32: h.lr },
      { f32: h.beta1 },
      { f32: h.beta2 },
      { f32: h.eps },
      { f32: h.weightDecay },
      { f32: 1 - h.beta1 ** t },
      { f32: 1 - h.beta2 ** t },
      { f32: gradScale },
    ]),
    `adamw ${shapeString(state.param.shape)}`,
  );
}
