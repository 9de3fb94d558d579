// DyLoRA: a step's truncation has the true gradient (B's and A's through B·D, nothing past the
// drawn rank), and training so makes every rank prefix a working adapter that `truncate` cuts
// into a plain PEFT LoRA — where a plain LoRA's prefixes are not.
import { describe, expect, it } from 'vitest';
import { TARGET_PRESETS, type LoraSpec } from '../adapters/config.ts';
import { adapterTerms, readPeftAdapter } from '../adapters/peft-read.ts';
import { truncateAdapter } from '../adapters/truncate.ts';
import { readF32 } from '../gpu/readback.ts';
import { releaseTensor } from '../gpu/tensor.ts';
import { relativeNormError } from '../linalg/compare.ts';
import { cpuBatchLoss, type CpuTerm } from '../model/cpu/reference.ts';
import { createGpuModel, type GpuModel } from '../model/forward.ts';
import { finiteDifferenceErrors } from '../testing/finite-differences.ts';
import { useGpu } from '../testing/gpu.ts';
import { seededRandom } from '../testing/random.ts';
import { randomWeights, tinyConfig } from '../testing/tiny-model.ts';
import type { PreparedData } from './data.ts';
import { drawnRanks, truncation } from './dylora.ts';
import { batchedScorer, meanLoss } from './evaluate.ts';
import { batchLoss } from './step.ts';
import { TrainableAdapter } from './trainable.ts';
import { DEFAULT_SETTINGS, train } from './trainer.ts';

const gpu = useGpu();
const config = tinyConfig({ hiddenSize: 16, intermediateSize: 20, headDim: 8, vocabSize: 23 });
const weights = randomWeights(config, 12);

const spec = (dylora: boolean, rslora = false): LoraSpec => ({
  rank: 4,
  alpha: 8,
  rslora,
  targets: TARGET_PRESETS['all-linear'],
  dropout: 0,
  init: 'lora',
  dylora,
});

/** Sequences of a repeating pattern with offsets: learnable by a rank-1 update or two. */
function patternData(): PreparedData {
  const pattern = [3, 7, 11, 5, 19, 2, 13, 8, 21];
  const sequences = Array.from({ length: 16 }, (_, i) => {
    const ids = Array.from({ length: 13 }, (_, t) => pattern[(i + t) % pattern.length]);
    return { input: Uint32Array.from(ids.slice(0, -1)), target: Int32Array.from(ids.slice(1)) };
  });
  return {
    train: sequences.slice(4),
    validation: sequences.slice(0, 4),
    summary: {
      format: 'text',
      examples: 16,
      tokens: 16 * 12,
      trainedTokens: 16 * 12,
      trainSequences: 12,
      validationSequences: 4,
      preview: [],
    },
  };
}

/** B·D on the host, in f64: the factor a rank-b step multiplies A by. */
function truncatedB(b: Float64Array, d: Float32Array, out: number, rank: number): Float64Array {
  const product = new Float64Array(out * rank);
  for (let o = 0; o < out; o++)
    for (let j = 0; j < rank; j++) product[o * rank + j] = b[o * rank + j] * d[j * rank + j];
  return product;
}

describe('DyLoRA', () => {
  it.each([false, true])(
    'a truncated step has the true gradient of A and B (rsLoRA %s)',
    async (rslora) => {
      const model = createGpuModel(gpu(), config, weights);
      const s = spec(true, rslora);
      const adapter = await TrainableAdapter.create(gpu(), model.transformer, s, 3);
      try {
        // B = 0 at the init would leave A's gradient zero: start from random B.
        const random = seededRandom(5);
        const start = await adapter.read();
        for (const f of start.values()) f.b = f.b.map(() => random() - 0.5);
        adapter.write(start);
        await adapter.refresh();
        // A step whose draws truncate some modules and not others.
        const step = [...Array(50).keys()].find((k) => {
          const ranks = drawnRanks(adapter.modules, 9, k);
          return ranks.some((b) => b === 1) && ranks.some((b) => b === 4);
        });
        if (step === undefined) throw new Error('no step draws ranks 1 and 4');
        await adapter.startStep(9, step);
        const ranks = drawnRanks(adapter.modules, 9, step);
        const data = {
          ids: Uint32Array.from([1, 4, 7, 2, 9, 3, 8, 6]),
          targets: Int32Array.from([4, 7, 2, 9, -1, 8, 6, 5]),
          seqLen: 4,
        };
        const view = adapter.view(model.transformer);
        const options = { grads: adapter.backwardGrads, accumulate: false, gradScale: 1 };
        await batchLoss(gpu(), view, data, options);
        await adapter.finishGradients();

        // The reference sees the raw factors; its loss applies each module's truncation.
        const raw = new Map<string, CpuTerm>();
        const ds = new Map<string, Float32Array>();
        adapter.modules.forEach((m, i) => {
          const f = start.get(m.path);
          if (!f) throw new Error(m.path);
          raw.set(m.path, {
            a: Float64Array.from(f.a),
            b: Float64Array.from(f.b),
            rank: m.rank,
            scale: m.scale,
          });
          ds.set(m.path, truncation(m, ranks[i], rslora));
        });
        const loss = () =>
          cpuBatchLoss({
            config,
            weights,
            terms: new Map(
              adapter.modules.map((m) => {
                const t = raw.get(m.path) as CpuTerm;
                const d = ds.get(m.path) as Float32Array;
                return [m.path, { ...t, b: truncatedB(t.b, d, m.out, m.rank) }];
              }),
            ),
            ...data,
          });
        const errors = await finiteDifferenceErrors(gpu(), raw, adapter.grads, loss, 4);
        for (const { name, error } of errors) expect(error, name).toBeLessThan(1e-2);

        // Nothing past the drawn rank moves: A's rows and B's columns there have no gradient.
        for (const [i, m] of adapter.modules.entries()) {
          const g = adapter.grads.get(m.path);
          if (!g?.a || !g.b) throw new Error(m.path);
          const gA = await readF32(gpu(), g.a);
          const gB = await readF32(gpu(), g.b);
          const b = ranks[i];
          expect(gA.subarray(b * m.in).every((v) => v === 0)).toBe(true);
          for (let o = 0; o < m.out; o++)
            expect(gB.subarray(o * m.rank + b, (o + 1) * m.rank).every((v) => v === 0)).toBe(true);
        }
      } finally {
        adapter.dispose();
        model.dispose();
      }
    },
  );

  /** Trains 60 steps, then the validation loss of the exported adapter cut to each rank. */
  async function lossesByRank(model: GpuModel, dylora: boolean): Promise<number[]> {
    const data = patternData();
    const settings = { steps: 30, lr: 2e-2, batchSize: 4, warmupSteps: 2, evalEvery: 0 };
    const result = await train({
      gpu: gpu(),
      model,
      baseModel: 'tiny/base',
      data,
      config: {
        lora: spec(dylora),
        train: { ...DEFAULT_SETTINGS, ...settings, checkpointEvery: 0 },
      },
    });
    try {
      const { files } = await result.adapter.peftFiles('tiny/base', config);
      const trained = await meanLoss(
        batchedScorer(gpu(), result.adapter.view(model.transformer), 4),
        data.validation,
      );
      const losses: number[] = [];
      for (let rank = 1; rank <= 4; rank++) {
        const cut = readPeftAdapter(truncateAdapter(files, rank, 'cut'), 'cut');
        expect(cut.details.rank).toBe(rank);
        const applied = await adapterTerms(gpu(), model.transformer, [{ adapter: cut, weight: 1 }]);
        model.setAdapters(applied.terms);
        const report = await meanLoss(batchedScorer(gpu(), model.transformer, 4), data.validation);
        model.setAdapters(new Map());
        releaseTensor(gpu(), ...applied.tensors);
        losses.push(report?.loss ?? NaN);
      }
      // Cut to its own rank, the adapter is the trained model (the training view at rest).
      expect(relativeNormError([losses[3]], [trained?.loss ?? NaN])).toBeLessThan(1e-5);
      return losses;
    } finally {
      result.adapter.dispose();
    }
  }

  it('makes every rank prefix a working adapter, where plain LoRA’s low ranks are not', async () => {
    const model = createGpuModel(gpu(), config, weights);
    try {
      const base =
        (await meanLoss(batchedScorer(gpu(), model.transformer, 4), patternData().validation))
          ?.loss ?? NaN;
      const nested = await lossesByRank(model, true);
      const plain = await lossesByRank(model, false);
      // Each DyLoRA prefix learned most of the pattern; plain LoRA's rank-1 cut did not.
      for (const loss of nested) expect(loss).toBeLessThan(0.5 * base);
      expect(nested[0]).toBeLessThan(plain[0]);
    } finally {
      model.dispose();
    }
  });

  it('is refused with DoRA, with base-mutating inits and with LoRA-Pro', async () => {
    const model = createGpuModel(gpu(), config, weights);
    const attempt = (lora: LoraSpec, loraPro = false) =>
      train({
        gpu: gpu(),
        model,
        baseModel: 'tiny/base',
        data: patternData(),
        config: { lora, train: { ...DEFAULT_SETTINGS, steps: 1, loraPro } },
      });
    try {
      await expect(attempt({ ...spec(true), variant: 'dora' })).rejects.toThrow(
        /DyLoRA trains plain LoRA's nested ranks, not DoRA/,
      );
      await expect(attempt({ ...spec(true), init: 'pissa' })).rejects.toThrow(
        /prefixes mean nothing/,
      );
      await expect(attempt(spec(true), true)).rejects.toThrow(/DyLoRA and LoRA-Pro/);
    } finally {
      model.dispose();
    }
  });
});
