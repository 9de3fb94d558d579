// One micro-batch of training on the GPU: the forward pass over packed sequences keeping each
// layer's activations (or only its input, to recompute them), the loss and its gradient at the
// head, then the layers' backward passes from the last to the first, one batch (one submit)
// each, so a layer's activations are freed as soon as its gradients are done.
import type { Sequence } from './data.ts';
import type { Gpu } from '../gpu/device.ts';
import { Batch, run } from '../gpu/dispatch.ts';
import { readF32 } from '../gpu/readback.ts';
import { createTensor, releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { reduceAll } from '../linalg/reduce.ts';
import {
  embed,
  layerForward,
  outputHead,
  type LayerActivations,
  type Transformer,
} from '../model/transformer.ts';
import {
  layerBackward,
  outputHeadBackward,
  type BackwardRun,
  type FactorGradients,
} from './backward.ts';
import { crossEntropy, sumSquares } from './kernels.ts';

/** Packed sequences, flattened: ids and targets of `sequences × seqLen` tokens (target < 0: not trained). */
export interface TokenBatch {
  ids: Uint32Array;
  targets: Int32Array;
  seqLen: number;
}

export interface GradientOptions {
  grads: ReadonlyMap<string, FactorGradients>;
  /** Add to the gradient buffers (later micro-batches of an accumulated step). */
  accumulate: boolean;
  /** Multiplies the gradient: 1 / trained tokens of the whole step makes the loss a mean. */
  gradScale: number;
  /** Dropout masks' seed for this micro-batch; without it dropout is off. */
  dropoutSeed?: number;
  /** Keep only each layer's input and recompute its activations in the backward pass. */
  recompute?: boolean;
  /** Sees each linear module's output gradient and input (see BackwardRun.observe). */
  observe?: BackwardRun['observe'];
}

/** Tensors with a shared lifetime, released together. */
class Scope {
  readonly tensors: Tensor[] = [];
  keep = (t: Tensor): Tensor => {
    this.tensors.push(t);
    return t;
  };
  release(gpu: Gpu): void {
    releaseTensor(gpu, ...this.tensors.splice(0));
  }
}

function checkBatch(t: Transformer, data: TokenBatch): number {
  const n = data.ids.length;
  if (n === 0 || n !== data.targets.length || n % data.seqLen !== 0)
    throw new RangeError(`a batch needs whole sequences of ${data.seqLen} ids and targets`);
  if (data.seqLen > t.config.maxPositions)
    throw new RangeError(
      `sequences of ${data.seqLen} exceed the model's ${t.config.maxPositions} positions`,
    );
  return n;
}

/** Flattens sequences into one batch. */
export function tokenBatch(sequences: readonly Sequence[]): TokenBatch {
  const seqLen = sequences[0].input.length;
  const ids = new Uint32Array(sequences.length * seqLen);
  const targets = new Int32Array(sequences.length * seqLen);
  sequences.forEach((s, i) => {
    ids.set(s.input, i * seqLen);
    targets.set(s.target, i * seqLen);
  });
  return { ids, targets, seqLen };
}

/**
 * Σ of the per-token losses of the batch (over trained targets); with options, also writes
 * (or accumulates) gradScale·∂(Σ loss)/∂(A, B) into the gradient buffers.
 */
export async function batchLoss(
  gpu: Gpu,
  t: Transformer,
  data: TokenBatch,
  options?: GradientOptions,
): Promise<number> {
  const n = checkBatch(t, data);
  const c = t.config;
  const at = { pos0: 0, seqLen: data.seqLen };
  const layerRun = (keep: Scope['keep']) => ({ at, keep, dropoutSeed: options?.dropoutSeed });
  // Uploads come before any recording: queue writes run ahead of the batch's commands.
  const persistent = new Scope();
  const ids = persistent.keep(uploadTensor(gpu, data.ids, [n], 'u32', 'ids'));
  const targets = persistent.keep(uploadTensor(gpu, data.targets, [n], 'i32', 'targets'));

  const layers: { input: Tensor; saved?: LayerActivations; scope: Scope }[] = [];
  const forward = new Batch(gpu);
  let x = embed(forward, t, ids, persistent.keep, at);
  const transient = new Scope();
  for (let l = 0; l < c.numLayers; l++) {
    const scope = new Scope();
    const keep = options?.recompute || !options ? transient.keep : scope.keep;
    const saved = layerForward(forward, t, l, x, layerRun(keep));
    layers.push({ input: x, saved: options?.recompute ? undefined : saved, scope });
    x = saved.out;
    if (keep === transient.keep) {
      // The layer's output is the next layer's saved input: it outlives the transient scope.
      transient.tensors.pop();
      scope.keep(x);
    }
  }
  const head = outputHead(forward, t, x, transient.keep);
  // The loss kernel leaves ∂loss/∂logits in the logits.
  const losses = transient.keep(
    crossEntropy(forward, head.logits, targets, options?.gradScale ?? 0),
  );
  const total = persistent.keep(reduceAll(forward, 'sum', losses));
  let dx = options ? outputHeadBackward(forward, t, head, head.logits, transient.keep) : undefined;
  try {
    try {
      await forward.submit();
    } finally {
      transient.release(gpu);
    }
    // Layer by layer from the top; dx (∂L/∂ the current layer's output) is owned here.
    for (let l = c.numLayers - 1; dx && l >= 0; l--) {
      const { input, scope } = layers[l];
      const batch = new Batch(gpu);
      const saved = layers[l].saved ?? layerForward(batch, t, l, input, layerRun(scope.keep));
      const backward = {
        ...layerRun(scope.keep),
        ...(options as GradientOptions),
        seqLen: data.seqLen,
      };
      const dInput = layerBackward(batch, t, l, saved, dx, backward);
      scope.tensors.splice(scope.tensors.indexOf(dInput), 1);
      try {
        await batch.submit();
      } finally {
        releaseTensor(gpu, dx);
        scope.release(gpu);
        dx = dInput;
      }
    }
    return (await readF32(gpu, total))[0];
  } finally {
    if (dx) releaseTensor(gpu, dx);
    for (const layer of layers) layer.scope.release(gpu);
    persistent.release(gpu);
  }
}

/**
 * Where a forward pass first produces a NaN or Inf, for the report of a failed step: the
 * embeddings, a layer's attention or MLP output, or the head. Runs the batch again one stage at
 * a time, reading back Σx² of each stage's output; null when everything is finite.
 */
export async function firstNonFinite(
  gpu: Gpu,
  t: Transformer,
  data: TokenBatch,
  dropoutSeed?: number,
): Promise<string | null> {
  const n = checkBatch(t, data);
  const c = t.config;
  const scope = new Scope();
  const ids = scope.keep(uploadTensor(gpu, data.ids, [n], 'u32', 'ids'));
  const sums = scope.keep(createTensor(gpu, [2 * c.numLayers + 2], 'f32', 'Σx² per stage'));
  const stages: string[] = [];
  try {
    await run(gpu, (batch) => {
      const probe = (x: Tensor, name: string) => {
        sumSquares(batch, x, sums, stages.length);
        stages.push(name);
      };
      const at = { pos0: 0, seqLen: data.seqLen };
      let x = embed(batch, t, ids, scope.keep, at);
      probe(x, 'the token embeddings');
      for (let l = 0; l < c.numLayers; l++) {
        const layer = layerForward(batch, t, l, x, { at, keep: scope.keep, dropoutSeed });
        probe(layer.x2, `layer ${l}'s attention block`);
        probe(layer.out, `layer ${l}'s MLP block`);
        x = layer.out;
      }
      probe(outputHead(batch, t, x, scope.keep).logits, 'the logits');
    });
    const values = await readF32(gpu, sums);
    const index = stages.findIndex((_, i) => !Number.isFinite(values[i]));
    return index < 0 ? null : stages[index];
  } finally {
    scope.release(gpu);
  }
}
