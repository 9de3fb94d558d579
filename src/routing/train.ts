// Training a router (and, for modes that have them, its experts) on the user's data: seeded
// batches of packed sequences, the token loss plus the gates' load-balancing loss, AdamW with
// clipping and a cosine schedule; the validation loss every N steps. And what a routed model does
// with a text: which experts its gates choose, per layer and per token.
import type { Gpu } from '../gpu/device.ts';
import { readF32 } from '../gpu/readback.ts';
import { createTensor, releaseTensor, type Tensor } from '../gpu/tensor.ts';
import { axpy } from '../linalg/elementwise.ts';
import type { Transformer } from '../model/transformer.ts';
import { sequenceAt, type PreparedData, type Sequence } from '../train/data.ts';
import { batchedScorer, meanLoss, scoredCount } from '../train/evaluate.ts';
import { AdamW, clipFactor } from '../train/optimizer.ts';
import { learningRate } from '../train/schedule.ts';
import { batchLoss, tokenBatch } from '../train/step.ts';
import type { RoutedAdapter } from './router.ts';

export interface RouteSettings {
  steps: number;
  lr: number;
  batchSize: number;
  seed: number;
  /** Validation loss every N steps (0: only at the end). */
  evalEvery: number;
  maxGradNorm: number;
  weightDecay: number;
  warmupSteps: number;
}

export const DEFAULT_ROUTE_SETTINGS: RouteSettings = {
  steps: 60,
  lr: 1e-2,
  batchSize: 4,
  seed: 0,
  evalEvery: 20,
  maxGradNorm: 1,
  weightDecay: 0,
  warmupSteps: 0,
};

export interface RoutePoint {
  step: number;
  loss?: number;
  valLoss?: number;
  gradNorm?: number;
  lr?: number;
}

/** The validation loss of a model view; null without validation sequences. */
export async function validationLoss(
  gpu: Gpu,
  view: Transformer,
  sequences: readonly Sequence[],
  batchSize: number,
): Promise<number | null> {
  return (await meanLoss(batchedScorer(gpu, view, batchSize), sequences))?.loss ?? null;
}

/**
 * Trains what the routed adapter trains for `s.steps` steps; `onPoint` hears every point of the
 * curves (and may stop the run by returning false). A non-finite loss or gradient stops it with
 * the reason, the parameters keeping their last good values.
 */
export async function trainRouter(
  gpu: Gpu,
  base: Transformer,
  routed: RoutedAdapter,
  data: Pick<PreparedData, 'train' | 'validation'>,
  s: RouteSettings,
  onPoint?: (point: RoutePoint) => boolean | undefined,
): Promise<{ history: RoutePoint[]; failure?: string }> {
  const view = routed.view(base);
  const params = routed.parameters();
  if (params.length === 0) throw new Error('this routed adapter trains nothing');
  const optimizer = new AdamW(gpu, params);
  const history: RoutePoint[] = [];
  const emit = (p: RoutePoint) => {
    history.push(p);
    return onPoint?.(p) !== false;
  };
  const evaluate = async (step: number) => {
    const valLoss = await validationLoss(gpu, view, data.validation, s.batchSize);
    return valLoss === null ? true : emit({ step, valLoss });
  };
  try {
    if (!(await evaluate(0))) return { history };
    for (let step = 0; step < s.steps; step++) {
      const sequences = Array.from(
        { length: s.batchSize },
        (_, i) => data.train[sequenceAt(data.train.length, s.seed, step * s.batchSize + i)],
      );
      const batch = tokenBatch(sequences);
      const count = scoredCount(batch.targets);
      routed.zeroGradients();
      const loss =
        (await batchLoss(gpu, view, batch, {
          grads: routed.grads,
          accumulate: false,
          gradScale: 1 / count,
        })) / count;
      if (!Number.isFinite(loss))
        return { history, failure: `step ${step + 1}: the training loss became ${loss}` };
      const grads = await optimizer.gradients();
      if (grads.nonFinite.length > 0)
        return {
          history,
          failure: `step ${step + 1}: non-finite gradients in ${grads.nonFinite.slice(0, 3).join(', ')}`,
        };
      const lr = learningRate(step, {
        schedule: 'cosine',
        lr: s.lr,
        warmupSteps: s.warmupSteps,
        totalSteps: s.steps,
      });
      await optimizer.step(
        { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: s.weightDecay },
        clipFactor(grads.norm, s.maxGradNorm),
      );
      if (!emit({ step: step + 1, loss, gradNorm: grads.norm, lr })) return { history };
      const last = step + 1 === s.steps;
      if (last || (s.evalEvery > 0 && (step + 1) % s.evalEvery === 0))
        if (!(await evaluate(step + 1))) return { history };
    }
    return { history };
  } finally {
    optimizer.dispose();
  }
}

/** Which experts a routed model's gates choose on some sequences. */
export interface RoutingUsage {
  /** Tokens seen. */
  tokens: number;
  /** Mean gate per layer and expert (layers without routed modules: empty). */
  perLayer: number[][];
  /** Per expert, the share of tokens whose mean gate over every module is highest for it. */
  shares: number[];
  /** Per sequence, per token: the expert with the highest mean gate (the colour of the token). */
  choices: number[][];
}

/**
 * Runs the sequences through the routed model watching every module whose gates cover all the
 * experts (learned scales have no per-token choice: their weights are the gates).
 */
export async function routingUsage(
  gpu: Gpu,
  base: Transformer,
  routed: RoutedAdapter,
  sequences: readonly Sequence[],
): Promise<RoutingUsage> {
  const experts = routed.experts.length;
  const layers = base.config.numLayers;
  const perLayerSum = Array.from({ length: layers }, () => new Array<number>(experts).fill(0));
  const perLayerModules = new Array<number>(layers).fill(0);
  const shares = new Array<number>(experts).fill(0);
  const choices: number[][] = [];
  let tokens = 0;
  const view = routed.view(base);
  for (const sequence of sequences) {
    const t = sequence.input.length;
    const perLayer = Array.from({ length: layers }, () =>
      createTensor(gpu, [t, experts], 'f32', 'gate usage'),
    );
    const counts = new Array<number>(layers).fill(0);
    try {
      for (const acc of perLayer)
        gpu.device.queue.writeBuffer(acc.buffer, 0, new Float32Array(acc.numel));
      routed.observe((batch, module, gates: Tensor) => {
        if (gates.shape[0] !== t || gates.shape[1] !== experts) return;
        axpy(batch, 1, gates, perLayer[module.layer]);
        counts[module.layer]++;
      });
      await batchLoss(gpu, view, tokenBatch([sequence]));
      const total = new Float64Array(t * experts);
      for (let l = 0; l < layers; l++) {
        if (counts[l] === 0) continue;
        const values = await readF32(gpu, perLayer[l]);
        perLayerModules[l] += counts[l] * t;
        for (let i = 0; i < values.length; i++) {
          perLayerSum[l][i % experts] += values[i];
          total[i] += values[i];
        }
      }
      const chosen = Array.from({ length: t }, (_, row) => {
        let best = 0;
        for (let e = 1; e < experts; e++)
          if (total[row * experts + e] > total[row * experts + best]) best = e;
        return best;
      });
      for (const e of chosen) shares[e]++;
      choices.push(chosen);
      tokens += t;
    } finally {
      routed.observe(undefined);
      releaseTensor(gpu, ...perLayer);
    }
  }
  return {
    tokens,
    perLayer: perLayerSum.map((sums, l) =>
      perLayerModules[l] === 0 ? [] : sums.map((s) => s / perLayerModules[l]),
    ),
    shares: shares.map((n) => (tokens > 0 ? n / tokens : 0)),
    choices,
  };
}
