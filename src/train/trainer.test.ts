// The training loop on tiny random models: it learns, resumes exactly, and stops cleanly on NaN.
import { describe, expect, it } from 'vitest';
import { TARGET_PRESETS, type LoraSpec } from '../adapters/config.ts';
import { createGpuModel } from '../model/forward.ts';
import { useGpu } from '../testing/gpu.ts';
import { seededRandom } from '../testing/random.ts';
import { randomWeights, tinyConfig } from '../testing/tiny-model.ts';
import { CHECKPOINT_TENSORS, checkpointFiles, checkpointFromFiles } from './checkpoint-files.ts';
import type { PreparedData, Sequence } from './data.ts';
import {
  DEFAULT_SETTINGS,
  train,
  TrainControl,
  type Checkpoint,
  type TrainConfig,
} from './trainer.ts';
import { TrainableAdapter } from './trainable.ts';

const gpu = useGpu();
const config = tinyConfig({ vocabSize: 23 });

/** Sequences of a fixed repeating pattern: learnable, so the loss must fall. */
function patternData(count: number, seqLen: number, seed: number): PreparedData {
  const random = seededRandom(seed);
  const pattern = [3, 7, 11, 5, 19, 2, 13];
  const sequences: Sequence[] = Array.from({ length: count }, () => {
    const offset = Math.floor(random() * pattern.length);
    const ids = Array.from(
      { length: seqLen + 1 },
      (_, t) => pattern[(offset + t) % pattern.length],
    );
    return { input: Uint32Array.from(ids.slice(0, -1)), target: Int32Array.from(ids.slice(1)) };
  });
  return {
    train: sequences.slice(2),
    validation: sequences.slice(0, 2),
    summary: {
      format: 'text',
      examples: count,
      tokens: count * seqLen,
      trainedTokens: count * seqLen,
      trainSequences: count - 2,
      validationSequences: 2,
      preview: [],
    },
  };
}

const lora: LoraSpec = {
  rank: 4,
  alpha: 8,
  rslora: false,
  targets: TARGET_PRESETS['all-linear'],
  dropout: 0,
  init: 'lora',
};

function trainConfig(overrides: Partial<TrainConfig['train']> = {}, spec = lora): TrainConfig {
  return {
    lora: spec,
    train: {
      ...DEFAULT_SETTINGS,
      steps: 30,
      lr: 1e-2,
      batchSize: 2,
      warmupSteps: 2,
      evalEvery: 10,
      checkpointEvery: 0,
      ...overrides,
    },
  };
}

describe('train', () => {
  const weights = randomWeights(config, 4);
  const data = patternData(12, 8, 1);

  it.each(['lora', 'pissa_niter_2'] as const)(
    '%s lowers training and validation loss on a learnable pattern',
    async (init) => {
      const model = createGpuModel(gpu(), config, weights);
      const progress: number[] = [];
      try {
        const result = await train({
          gpu: gpu(),
          model,
          baseModel: 'tiny',
          data,
          config: trainConfig({ gradAccum: 2 }, { ...lora, init }),
          onProgress: (p) => {
            if (p.phase === 'training') progress.push(p.step);
          },
        });
        result.adapter.dispose();
        expect(result.status).toBe('done');
        expect(result.steps).toBe(30);
        expect(progress.at(-1)).toBe(30);
        expect(result.trainLossLast).toBeLessThan(0.5 * result.trainLossFirst);
        expect(result.valLossLast).toBeLessThan(0.5 * (result.valLossFirst ?? 0));
      } finally {
        model.dispose();
      }
    },
  );

  it.each(['ffa', 'orthogonal'] as const)(
    '%s trains B alone: A ends bit for bit as it started, the loss still falls',
    async (init) => {
      const model = createGpuModel(gpu(), config, weights);
      try {
        const spec = { ...lora, init, basis: { seed: 5, slice: 1 } };
        const start = await TrainableAdapter.create(gpu(), model.transformer, spec, 0);
        const initial = await start.read();
        start.dispose();
        const result = await train({
          gpu: gpu(),
          model,
          baseModel: 'tiny',
          data,
          config: trainConfig({ steps: 20 }, spec),
        });
        const trained = await result.adapter.read();
        result.adapter.dispose();
        expect(result.trainLossLast).toBeLessThan(0.7 * result.trainLossFirst);
        for (const [path, f] of trained) {
          expect(f.a, path).toEqual(initial.get(path)?.a);
          expect(
            f.b.some((v) => v !== 0),
            path,
          ).toBe(true);
        }
        // LoRA-Pro's correction needs both factors' gradients.
        await expect(
          train({
            gpu: gpu(),
            model,
            baseModel: 'tiny',
            data,
            config: trainConfig({ steps: 1, loraPro: true }, spec),
          }),
        ).rejects.toThrow(/LoRA-Pro corrects the gradients of both factors.*freezes A/);
      } finally {
        model.dispose();
      }
    },
  );

  // Dropout on: the masks must be reproduced after resuming too. DoRA's magnitudes, SVFit's core
  // and their moments must travel in the checkpoint files, and LoRA-Pro must need no state of its
  // own.
  it.each([
    ['LoRA', { ...lora, dropout: 0.1 }, {}],
    ['DoRA with LoRA-Pro', { ...lora, dropout: 0.1, variant: 'dora' }, { loraPro: true }],
    // SVFit's trained core goes through the checkpoint beside its frozen factors.
    ['SVFit', { ...lora, init: 'svfit' }, {}],
  ] satisfies [string, LoraSpec, Partial<TrainConfig['train']>][])(
    '%s resumed from a checkpoint ends with the same parameters and curve as an uninterrupted run',
    async (_, spec, options) => {
      const model = createGpuModel(gpu(), config, weights);
      const settings = { steps: 8, checkpointEvery: 4, evalEvery: 4, ...options };
      try {
        const whole = await train({
          gpu: gpu(),
          model,
          baseModel: 'tiny',
          data,
          config: trainConfig(settings, spec),
        });
        const expected = await whole.adapter.read();
        whole.adapter.dispose();

        const saved: Checkpoint[] = [];
        const control = new TrainControl();
        const first = await train({
          gpu: gpu(),
          model,
          baseModel: 'tiny',
          data,
          config: trainConfig(settings, spec),
          control,
          store: {
            save: async (c) => {
              const files = checkpointFiles(c);
              saved.push(checkpointFromFiles(files.get(CHECKPOINT_TENSORS) ?? new Uint8Array()));
              // A crash right after the first checkpoint: the run is stopped, the rest is lost.
              control.stop();
              await Promise.resolve();
            },
          },
        });
        first.adapter.dispose();
        expect(first.status).toBe('stopped');
        expect(saved[0].step).toBe(4);

        const resumed = await train({
          gpu: gpu(),
          model,
          baseModel: 'tiny',
          data,
          config: saved[0].config,
          resumeFrom: saved[0],
        });
        const actual = await resumed.adapter.read();
        resumed.adapter.dispose();
        expect(resumed.steps).toBe(8);
        expect(resumed.history.map((h) => h.loss)).toEqual(whole.history.map((h) => h.loss));
        for (const [path, f] of expected) {
          expect(actual.get(path)?.a, path).toEqual(f.a);
          expect(actual.get(path)?.b, path).toEqual(f.b);
          expect(actual.get(path)?.magnitude, path).toEqual(f.magnitude);
        }
        if (spec.variant === 'dora')
          expect(expected.values().next().value?.magnitude).toBeDefined();
      } finally {
        model.dispose();
      }
    },
  );

  it('stops with a report when the loss turns NaN, keeping the last good values', async () => {
    const poisoned = new Map(weights);
    const name = 'model.layers.1.mlp.up_proj.weight';
    const w = weights.get(name);
    if (!w) throw new Error(name);
    const data2 = w.data.slice();
    data2[5] = NaN;
    poisoned.set(name, { shape: w.shape, data: data2 });
    const model = createGpuModel(gpu(), config, poisoned);
    try {
      const result = await train({
        gpu: gpu(),
        model,
        baseModel: 'tiny',
        data,
        config: trainConfig(),
      });
      const factors = await result.adapter.read();
      result.adapter.dispose();
      expect(result.status).toBe('failed');
      expect(result.failure).toMatch(
        /step 1: the training loss became NaN; the first non-finite values come from layer 1's MLP block/,
      );
      expect(result.steps).toBe(0);
      // B starts at zero and no update was applied.
      for (const f of factors.values()) expect(f.b.every((v) => v === 0)).toBe(true);
    } finally {
      model.dispose();
    }
  });

  it('pauses and resumes on request', async () => {
    const model = createGpuModel(gpu(), config, weights);
    const control = new TrainControl();
    let pausedAt = -1;
    try {
      const result = await train({
        gpu: gpu(),
        model,
        baseModel: 'tiny',
        data,
        config: trainConfig({ steps: 6 }),
        control,
        onProgress: (p) => {
          if (p.phase === 'training' && p.step === 3) {
            control.pause();
            setTimeout(() => {
              control.resume();
            }, 50);
          }
          if (p.phase === 'paused') pausedAt = p.step;
        },
      });
      result.adapter.dispose();
      expect(pausedAt).toBe(3);
      expect(result.status).toBe('done');
      expect(result.steps).toBe(6);
    } finally {
      model.dispose();
    }
  });
});
