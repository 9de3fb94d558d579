// Training speed for `lora-studio bench`, shared by the Node run and the Chromium page: tokens/s
// of full optimiser steps (forward, backward, AdamW) on the built-in stories260K and on a random
// Llama of SmolLM-135M's shape (weights in f32, then in bf16), the step's FLOPs, and the GPU
// memory the pool holds.
import { adaptedModules, TARGET_PRESETS, type LoraSpec } from '../adapters/config.ts';
import type { Gpu } from '../gpu/device.ts';
import type { ModelConfig } from '../model/config.ts';
import { createGpuModel } from '../model/forward.ts';
import { readLlama2c } from '../model/llama2c.ts';
import type { ModelWeights, WeightPrecision } from '../model/weights.ts';
import { randomWeights, tinyConfig } from '../testing/tiny-model.ts';
import { AdamW } from './optimizer.ts';
import { batchLoss } from './step.ts';
import { TrainableAdapter } from './trainable.ts';

export interface TrainBenchRow {
  model: string;
  tokensPerStep: number;
  stepMs: number;
  tokensPerSecond: number;
  /** Work of one step, counted from the shapes (see stepFlops). */
  gflopPerStep: number;
  /** Bytes the buffer pool holds after the steps: weights, adapter, optimiser, activations. */
  gpuBytes: number;
  weightBytes: number;
}

/** SmolLM-135M's architecture (HuggingFaceTB/SmolLM-135M config.json). */
export const SMOLLM_135M_SHAPE: ModelConfig = tinyConfig({
  hiddenSize: 576,
  intermediateSize: 1536,
  numLayers: 30,
  numHeads: 9,
  numKvHeads: 3,
  headDim: 64,
  vocabSize: 49152,
  maxPositions: 2048,
  tieWordEmbeddings: true,
});

const LORA: LoraSpec = {
  rank: 16,
  alpha: 32,
  rslora: false,
  targets: TARGET_PRESETS['all-linear'],
  dropout: 0,
  init: 'lora',
};

/**
 * Multiply-adds ×2 of one training step over `sequences` of `seqLen` tokens: the frozen linears
 * and the head forward and backward (∂x only: no weight gradients), attention (scores and
 * values forward; dQ, dK, dV with recomputed scores backward), and the adapters (h = x·Aᵀ and
 * s·h·Bᵀ forward; ∂B, ∂h, ∂A and ∂x backward).
 */
export function stepFlops(config: ModelConfig, spec: LoraSpec, sequences: number, seqLen: number) {
  const n = sequences * seqLen;
  const c = config;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const d = c.hiddenSize;
  const linear = d * qDim + 2 * d * kvDim + qDim * d + 3 * d * c.intermediateSize;
  const keysPerQuery = (seqLen + 1) / 2;
  const attentionForward = 4 * n * keysPerQuery * qDim;
  const adapters = adaptedModules(config, spec).reduce((f, m) => f + m.rank * (m.in + m.out), 0);
  const forward =
    c.numLayers * (2 * n * linear + attentionForward) + 2 * n * adapters + 2 * n * d * c.vocabSize;
  const backward =
    c.numLayers * (2 * n * linear + 2 * attentionForward) +
    6 * n * adapters +
    2 * n * d * c.vocabSize;
  return forward + backward;
}

async function timeSteps(
  gpu: Gpu,
  name: string,
  config: ModelConfig,
  weights: ModelWeights,
  sequences: number,
  seqLen: number,
  steps: number,
  precision: WeightPrecision = 'file',
): Promise<TrainBenchRow> {
  const model = createGpuModel(gpu, config, weights, precision);
  const adapter = await TrainableAdapter.create(gpu, model.transformer, LORA, 0);
  const optimizer = new AdamW(gpu, adapter.parameters());
  const view = adapter.view(model.transformer);
  const n = sequences * seqLen;
  const ids = Uint32Array.from({ length: n }, (_, i) => 3 + ((i * 37) % (config.vocabSize - 3)));
  const targets = Int32Array.from({ length: n }, (_, i) => 3 + ((i * 53) % (config.vocabSize - 3)));
  const step = async () => {
    await batchLoss(
      gpu,
      view,
      { ids, targets, seqLen },
      { grads: adapter.grads, accumulate: false, gradScale: 1 / n },
    );
    await optimizer.gradients();
    await optimizer.step({ lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 }, 1);
  };
  try {
    await step(); // warm-up: pipeline compilation, pool growth
    const start = performance.now();
    for (let i = 0; i < steps; i++) await step();
    const stepMs = (performance.now() - start) / steps;
    return {
      model: name,
      tokensPerStep: n,
      stepMs,
      tokensPerSecond: (n * 1000) / stepMs,
      gflopPerStep: stepFlops(config, LORA, sequences, seqLen) / 1e9,
      gpuBytes: gpu.pool.allocatedBytes,
      weightBytes: model.weightBytes,
    };
  } finally {
    optimizer.dispose();
    adapter.dispose();
    model.dispose();
    gpu.pool.trim();
  }
}

/** Both models; `quick` takes fewer steps. */
export async function benchTraining(
  gpu: Gpu,
  stories260K: Uint8Array,
  quick: boolean,
  onRow?: (row: TrainBenchRow) => void,
): Promise<TrainBenchRow[]> {
  const rows: TrainBenchRow[] = [];
  const stories = readLlama2c(stories260K, 'stories260K.bin');
  rows.push(
    await timeSteps(gpu, 'stories260K', stories.config, stories.weights, 4, 128, quick ? 2 : 5),
  );
  onRow?.(rows[0]);
  const smol = randomWeights(SMOLLM_135M_SHAPE, 1, true);
  // The same model with its linear weights kept in bf16, as a bf16 checkpoint would be.
  for (const [name, precision] of [
    ['SmolLM-135M shape (random)', 'f32'],
    ['SmolLM-135M shape (random), bf16 weights', 'bf16'],
  ] as const) {
    const row = await timeSteps(
      gpu,
      name,
      SMOLLM_135M_SHAPE,
      smol,
      1,
      128,
      quick ? 1 : 2,
      precision,
    );
    rows.push(row);
    onRow?.(row);
  }
  return rows;
}
