// Every init leaves the model's output unchanged at step 0, takes the singular triplets (or QR)
// the method names, and trains with true gradients.
import { describe, expect, it } from 'vitest';
import { relativeNormError } from '../linalg/compare.ts';
import { readF32 } from '../gpu/readback.ts';
import { columns, mat, multiply, toF32, transpose, type Mat } from '../linalg/cpu/dense.ts';
import { decaying, withSpectrum } from '../linalg/cpu/generate.ts';
import { jacobiSvd } from '../linalg/cpu/svd.ts';
import { createGpuModel, createRunner } from '../model/forward.ts';
import type { ModelWeights } from '../model/weights.ts';
import { finiteDifferenceErrors } from '../testing/finite-differences.ts';
import { useGpu } from '../testing/gpu.ts';
import { randomWeights, tinyConfig } from '../testing/tiny-model.ts';
import type { CpuTerm } from '../model/cpu/reference.ts';
import { cpuBatchLoss } from '../model/cpu/reference.ts';
import { batchLoss } from '../train/step.ts';
import { TrainableAdapter } from '../train/trainable.ts';
import { TARGET_PRESETS, type InitMethod, type LoraSpec } from './config.ts';
import { initEntry } from './inits.ts';

const gpu = useGpu();
const INITS: InitMethod[] = [
  'lora',
  'gaussian',
  'ffa',
  'orthogonal',
  'pissa',
  'pissa_niter_4',
  'milora',
  'olora',
];
const config = tinyConfig({ hiddenSize: 16, intermediateSize: 20, headDim: 8 });

function spec(init: InitMethod): LoraSpec {
  return {
    rank: 3,
    alpha: 5,
    rslora: false,
    targets: TARGET_PRESETS['all-linear'],
    dropout: 0,
    init,
  };
}

/** s·B·A of a module, on the host. */
async function delta(adapter: TrainableAdapter, path: string): Promise<Mat> {
  const m = adapter.modules.find((x) => x.path === path);
  const f = (await adapter.read()).get(path);
  if (!m || !f) throw new Error(path);
  const product = multiply(mat(m.out, m.rank, f.b), mat(m.rank, m.in, f.a));
  return mat(
    m.out,
    m.in,
    product.data.map((v) => v * m.scale),
  );
}

/** The rank-r part of W from singular triplets from..from+r (descending order). */
function truncated(w: Mat, from: number, rank: number): Mat {
  const { u, s, v } = jacobiSvd(w);
  const us = columns(u, from, from + rank);
  const scaled = mat(
    us.rows,
    rank,
    us.data.map((x, i) => x * s[from + (i % rank)]),
  );
  return multiply(scaled, transpose(columns(v, from, from + rank)));
}

describe('adapter inits', () => {
  const weights = randomWeights(config, 21);
  const tokens = [1, 5, 9, 3, 17, 2, 11];

  it.each(INITS)('%s leaves the output unchanged at step 0', async (init) => {
    const model = createGpuModel(gpu(), config, weights);
    const adapter = await TrainableAdapter.create(gpu(), model.transformer, spec(init), 1);
    const runner = createRunner(gpu(), adapter.view(model.transformer));
    try {
      const base = await model.forwardAll(tokens, 0);
      const adapted = await runner.forwardAll(tokens, 0);
      expect(relativeNormError(adapted, base)).toBeLessThan(1e-5);
      if (adapter.mutatesBase) {
        // …while the adapter itself is far from zero: the output is preserved by the residual.
        const d = await delta(adapter, 'model.layers.0.self_attn.q_proj');
        expect(Math.hypot(...d.data)).toBeGreaterThan(0.1);
      }
    } finally {
      runner.dispose();
      adapter.dispose();
      model.dispose();
    }
  });

  it('PiSSA takes the top singular triplets, MiLoRA the bottom ones, OLoRA the QR', async () => {
    // A weight with a decaying spectrum: the randomized SVD (q = r, as torch.svd_lowrank) is
    // then accurate; on a flat random spectrum its top-r subspace is not.
    const path = 'model.layers.1.mlp.down_proj';
    const W = withSpectrum(config.hiddenSize, config.intermediateSize, decaying(16, 0.3), 5);
    const model = createGpuModel(
      gpu(),
      config,
      new Map(weights).set(`${path}.weight`, { shape: [W.rows, W.cols], data: toF32(W) }),
    );
    // MiLoRA's bottom triplets of that spectrum are f32 noise: it is checked on a random weight.
    const flatPath = 'model.layers.1.mlp.up_proj';
    const w = weights.get(`${flatPath}.weight`);
    if (!w) throw new Error(flatPath);
    const flat = mat(w.shape[0], w.shape[1], w.data);
    const k = Math.min(flat.rows, flat.cols);
    const expected: Record<string, Mat> = {
      pissa: truncated(W, 0, 3),
      pissa_niter_4: truncated(W, 0, 3),
      milora: truncated(flat, k - 3, 3),
    };
    for (const init of ['pissa', 'pissa_niter_4', 'milora', 'olora'] as const) {
      const adapter = await TrainableAdapter.create(gpu(), model.transformer, spec(init), 1);
      try {
        const d = await delta(adapter, init === 'milora' ? flatPath : path);
        if (init === 'olora') {
          // B = Q_r (orthonormal), A = Q_rᵀ·W: B·A projects W onto its first r columns' span;
          // PEFT does not divide by the scaling here (unlike PiSSA), so ΔW = s·B·A is s× that.
          const first = columns(W, 0, 3);
          const { u } = jacobiSvd(first);
          const basis = columns(u, 0, 3);
          const projection = multiply(basis, multiply(transpose(basis), W));
          const scaled = projection.data.map((v) => (v * 5) / 3);
          expect(relativeNormError(d.data, scaled), init).toBeLessThan(1e-4);
        } else {
          expect(relativeNormError(d.data, expected[init].data), init).toBeLessThan(1e-4);
        }
      } finally {
        adapter.dispose();
      }
    }
    model.dispose();
  });

  it('orthogonal adaptation: slices of one seed are orthonormal and mutually orthogonal, whatever else the run adapts', async () => {
    const model = createGpuModel(gpu(), config, weights);
    const path = 'model.layers.1.mlp.down_proj';
    const a = async (targets: readonly string[], slice: number, seed = 7) => {
      const adapter = await TrainableAdapter.create(
        gpu(),
        model.transformer,
        { ...spec('orthogonal'), targets, basis: { seed, slice } },
        slice + 11,
      );
      try {
        const m = adapter.modules.find((x) => x.path === path);
        const f = (await adapter.read()).get(path);
        if (!m || !f) throw new Error(path);
        return mat(m.rank, m.in, f.a);
      } finally {
        adapter.dispose();
      }
    };
    try {
      const first = await a(TARGET_PRESETS['all-linear'], 0);
      const second = await a(['down_proj'], 1);
      const gram = (x: Mat, y: Mat) => multiply(x, transpose(y)).data;
      // Unit rows, orthogonal within a slice and across slices.
      expect(
        relativeNormError(gram(first, first), mat(3, 3, [1, 0, 0, 0, 1, 0, 0, 0, 1]).data),
      ).toBeLessThan(1e-6);
      expect(Math.max(...gram(first, second).map(Math.abs))).toBeLessThan(1e-6);
      // The same slice again, with other targets and another training seed: the same rows.
      expect(
        relativeNormError((await a(['down_proj', 'q_proj'], 0)).data, first.data),
      ).toBeLessThan(1e-7);
      // Another basis seed: another basis.
      expect(Math.max(...gram(first, await a(['down_proj'], 1, 8)).map(Math.abs))).toBeGreaterThan(
        0.05,
      );
      // A slice past the input's width is refused with the slices that fit.
      await expect(a(['down_proj'], 7)).rejects.toThrow(
        /slice 7 of rank 3 needs 24 basis directions.*below 6/,
      );
    } finally {
      model.dispose();
    }
  });

  it.each(INITS)('%s trains with gradients that match finite differences', async (init) => {
    const model = createGpuModel(gpu(), config, weights);
    const adapter = await TrainableAdapter.create(gpu(), model.transformer, spec(init), 1);
    try {
      const view = adapter.view(model.transformer);
      // The CPU reference sees what the GPU trains: residual weights and the initial factors.
      const cpuWeights: ModelWeights = new Map(weights);
      for (const m of adapter.modules) {
        const name = `${m.path}.weight`;
        const { shape } = weights.get(name) ?? { shape: [] };
        cpuWeights.set(name, { shape, data: await readF32(gpu(), view.weight(name)) });
      }
      const factors = await adapter.read();
      const terms = new Map<string, CpuTerm>(
        adapter.modules.map((m) => {
          const f = factors.get(m.path) as { a: Float32Array; b: Float32Array };
          return [
            m.path,
            { a: Float64Array.from(f.a), b: Float64Array.from(f.b), rank: m.rank, scale: m.scale },
          ];
        }),
      );
      const data = {
        ids: Uint32Array.from([1, 4, 7, 2, 9, 3, 8, 6]),
        targets: Int32Array.from([4, 7, 2, 9, -1, 8, 6, 5]),
        seqLen: 4,
      };
      await batchLoss(gpu(), view, data, { grads: adapter.grads, accumulate: false, gradScale: 1 });
      // Exactly the factors the init trains have gradients (and optimiser state).
      const trains = initEntry(init).trains;
      for (const g of adapter.grads.values()) expect(g.a !== undefined).toBe(trains.includes('a'));
      const names = adapter.parameters().map((p) => p.name.slice(p.name.lastIndexOf('.') + 1));
      expect(new Set(names)).toEqual(new Set(trains.map((f) => `lora_${f.toUpperCase()}`)));
      const loss = () => cpuBatchLoss({ config, weights: cpuWeights, terms, ...data });
      const errors = await finiteDifferenceErrors(gpu(), terms, adapter.grads, loss, 4);
      for (const { name, error } of errors) expect(error, name).toBeLessThan(1e-2);
    } finally {
      adapter.dispose();
      model.dispose();
    }
  });
});
