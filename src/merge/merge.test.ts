// Every merge method against a dense f64 CPU reference written from the method's definition,
// on random adapters with awkward shapes (ranks 3 and 5, a module only one adapter has) and on
// the real Qwen2.5 fixture pair; identities; seeds; refusals.
import { describe, expect, it } from 'vitest';
import { isAttentionKind } from '../model/families.ts';
import type { ExportModule } from '../adapters/peft.ts';
import type { AdapterModule, PeftAdapter } from '../adapters/peft-read.ts';
import { readPeftAdapter } from '../adapters/peft-read.ts';
import { relativeNormError } from '../linalg/compare.ts';
import { mat } from '../linalg/cpu/dense.ts';
import { jacobiSvd } from '../linalg/cpu/svd.ts';
import { gaussian } from '../linalg/random.ts';
import { fixture } from '../testing/fixtures.ts';
import { mergeComputes, useGpu } from '../testing/gpu.ts';
import type { MergeCompute } from './compute.ts';
import { mergeEntrywiseCpu } from './cpu/entrywise.ts';
import { PLAIN_SUM, taskSeed, type Consensus, type Sparsify } from './entrywise.ts';
import { mergeAdapters, moduleJobs } from './merge.ts';
import { gridPreset, type MergeMethod, type MergeSpec } from './spec.ts';

const gpu = useGpu();

const OUT = 24;
const IN = 37;
const Q = 'model.layers.0.self_attn.q_proj';
const V = 'model.layers.1.self_attn.v_proj';
const UP = 'model.layers.1.mlp.up_proj';

function randomModule(rank: number, alpha: number, seed: number): AdapterModule {
  return {
    rank,
    scale: alpha / rank,
    a: gaussian(rank * IN, seed).map((v) => v / Math.sqrt(IN)),
    b: gaussian(OUT * rank, seed + 1).map((v) => v * 0.5),
  };
}

function adapter(
  name: string,
  paths: string[],
  rank: number,
  alpha: number,
  seed: number,
): PeftAdapter {
  return {
    name,
    baseModel: 'base',
    modules: new Map(paths.map((p, i) => [p, randomModule(rank, alpha, seed + 10 * i)])),
    fullWeights: new Map(),
    details: { rank, alpha, rslora: false, modules: paths.length, targets: [], variant: 'lora' },
    nonFinite: [],
  };
}

const first = adapter('first', [Q, V], 3, 6, 100);
const second = adapter('second', [Q, V, UP], 5, 5, 200);

/** s·B·A in f64 (out×in). */
function dense(m: { a: ArrayLike<number>; b: ArrayLike<number>; rank: number }, scale: number) {
  const out = m.b.length / m.rank;
  const width = m.a.length / m.rank;
  const d = new Float64Array(out * width);
  for (let o = 0; o < out; o++)
    for (let j = 0; j < m.rank; j++) {
      const c = scale * m.b[o * m.rank + j];
      for (let i = 0; i < width; i++) d[o * width + i] += c * m.a[j * width + i];
    }
  return d;
}

const deltaOf = (a: PeftAdapter, path: string) => {
  const m = a.modules.get(path);
  return m ? dense(m, m.scale) : new Float64Array(OUT * IN);
};
const mergedDelta = (m: ExportModule) => dense(m, m.alpha / m.rank);
const sum = (xs: Float64Array[], ws: number[]) =>
  xs[0].map((_, i) => xs.reduce((t, x, k) => t + ws[k] * x[i], 0));

async function merged(
  compute: MergeCompute,
  spec: Omit<MergeSpec, 'adapters'>,
  adapters = [first, second],
  weights = [0.8, -0.6],
) {
  const outcome = await mergeAdapters(compute, adapters, {
    ...spec,
    adapters: adapters.map((a, i) => ({ id: a.name, weight: weights[i] })),
  });
  return {
    outcome,
    delta: (path: string) => mergedDelta(outcome.adapter.modules.find((m) => m.path === path)!),
  };
}

/** Best rank-k approximation of a dense matrix (CPU Jacobi SVD). */
function bestRankK(d: Float64Array, k: number): Float64Array {
  const { u, s, v } = jacobiSvd(mat(OUT, IN, d));
  const out = new Float64Array(OUT * IN);
  for (let j = 0; j < k; j++)
    for (let o = 0; o < OUT; o++)
      for (let i = 0; i < IN; i++)
        out[o * IN + i] += u.data[o * u.cols + j] * s[j] * v.data[i * v.cols + j];
  return out;
}

/** A real fixture adapter cut to two modules, which keeps the dense CPU reference quick. */
function fixtureAdapter(dir: string, keep: string[]): PeftAdapter {
  const full = readPeftAdapter(
    new Map(
      ['adapter_config.json', 'adapter_model.safetensors'].map((f) => [
        f,
        fixture(`adapters/${dir}/${f}`),
      ]),
    ),
    dir,
  );
  return { ...full, modules: new Map(keep.map((p) => [p, full.modules.get(p)!])) };
}

const PAIRS = [
  {
    name: 'Qwen2.5 (ranks 6 and 12)',
    layers: 24,
    adapters: [
      'MatthewZhang473_20251017_101834_r6_alpha32',
      'MatthewZhang473_20251017_140153_r12_alpha32',
    ].map((d) =>
      fixtureAdapter(`qwen2.5-0.5b-instruct/${d}`, [
        'model.layers.0.self_attn.q_proj',
        'model.layers.23.self_attn.v_proj',
      ]),
    ),
  },
  {
    name: 'SmolLM (two ranks 16)',
    layers: 30,
    adapters: ['medai_TFM-HITESH_5epochs', 'medai_TFM-HITESH_100epochs'].map((d) =>
      fixtureAdapter(`smollm-135m-instruct/${d}`, [
        'model.layers.0.self_attn.q_proj',
        'model.layers.3.self_attn.v_proj',
      ]),
    ),
  },
];

const TIES_PEFT: Consensus = { elect: 'total', weighted: false, divisor: 'count' };
const REAL_CASES: [MergeMethod, Sparsify, Consensus, Partial<MergeSpec>][] = [
  ['ties_svd', { kind: 'magnitude', density: 0.3 }, TIES_PEFT, {}],
  ['dare_linear_svd', { kind: 'random', density: 0.3 }, PLAIN_SUM, {}],
  [
    'dare_ties_svd',
    { kind: 'random', density: 0.3 },
    { elect: 'frequency', weighted: true, divisor: 'weights' },
    { majoritySign: 'frequency', tiesDivisor: 'weights' },
  ],
  ['magnitude_prune_svd', { kind: 'magnitude', density: 0.3 }, PLAIN_SUM, {}],
  ['breadcrumbs_svd', { kind: 'outliers', density: 0.3, gamma: 0.02 }, PLAIN_SUM, { gamma: 0.02 }],
  ['della_svd', { kind: 'della', density: 0.3, epsilon: 0.1 }, TIES_PEFT, {}],
];

describe.each(mergeComputes(gpu))('merging on the %s', (where, compute) => {
  describe('exact methods', () => {
    it('cat and task_arithmetic are the weighted sum, with missing modules as zero', async () => {
      for (const method of ['cat', 'task_arithmetic'] as const) {
        const { outcome, delta } = await merged(compute(), { method });
        for (const p of [Q, V, UP])
          expect(
            relativeNormError(delta(p), sum([deltaOf(first, p), deltaOf(second, p)], [0.8, -0.6])),
          ).toBeLessThan(1e-5);
        expect(outcome.lostEnergy).toBe(0);
        expect(outcome.adapter.modules.find((m) => m.path === Q)!.rank).toBe(8);
      }
    });

    it('svd at rank k is the best rank-k approximation of the sum; at full rank it equals cat', async () => {
      const { delta, outcome } = await merged(compute(), { method: 'svd', rank: 4 });
      const exact = sum([deltaOf(first, Q), deltaOf(second, Q)], [0.8, -0.6]);
      expect(relativeNormError(delta(Q), bestRankK(exact, 4))).toBeLessThan(1e-4);
      expect(outcome.lostEnergy).toBeGreaterThan(0);
      const full = await merged(compute(), { method: 'svd', rank: 8 });
      expect(relativeNormError(full.delta(Q), exact)).toBeLessThan(1e-5);
    });

    it('an energy share picks the smallest rank keeping it', async () => {
      const { outcome } = await merged(compute(), {
        method: 'task_arithmetic',
        rank: { energy: 0.9 },
      });
      const exact = sum([deltaOf(first, Q), deltaOf(second, Q)], [0.8, -0.6]);
      const s = jacobiSvd(mat(OUT, IN, exact)).s;
      const total = s.reduce((t, x) => t + x * x, 0);
      let k = 0;
      for (let kept = 0; kept < 0.9 * total; k++) kept += s[k] ** 2;
      expect(outcome.adapter.modules.find((m) => m.path === Q)!.rank).toBe(k);
    });

    it('slerp follows mergekit: ends at each adapter, the angle formula between', async () => {
      const weights = [1, 1];
      for (const t of [0, 1]) {
        const { delta } = await merged(compute(), { method: 'slerp', t }, [first, second], weights);
        expect(relativeNormError(delta(Q), deltaOf(t === 0 ? first : second, Q))).toBeLessThan(
          1e-5,
        );
      }
      const t = 0.3;
      const { delta } = await merged(compute(), { method: 'slerp', t }, [first, second], weights);
      const [x, y] = [deltaOf(first, Q), deltaOf(second, Q)];
      const norm = (z: Float64Array) => Math.hypot(...z);
      const theta = Math.acos(x.reduce((s, v, i) => s + v * y[i], 0) / (norm(x) * norm(y)));
      const expected = sum(
        [x, y],
        [Math.sin((1 - t) * theta), Math.sin(t * theta)].map((c) => c / Math.sin(theta)),
      );
      expect(relativeNormError(delta(Q), expected)).toBeLessThan(1e-5);
    });

    it('the layer grid and LiNeS scale each module of the sum', async () => {
      const grid = gridPreset(
        'attention_only',
        2,
        ['q_proj', 'v_proj', 'up_proj'],
        isAttentionKind,
      );
      const { delta, outcome } = await merged(compute(), {
        method: 'cat',
        layerGrid: grid,
        lines: { alpha: 0.5, beta: 1 },
      });
      const exact = (p: string) => sum([deltaOf(first, p), deltaOf(second, p)], [0.8, -0.6]);
      expect(
        relativeNormError(
          delta(Q),
          exact(Q).map((v) => 0.5 * v),
        ),
      ).toBeLessThan(1e-5);
      expect(
        relativeNormError(
          delta(V),
          exact(V).map((v) => 1.5 * v),
        ),
      ).toBeLessThan(1e-5);
      // The MLP module the grid zeroed is not written, nor named in target_modules.
      expect(outcome.adapter.modules.some((m) => m.path === UP)).toBe(false);
      expect(outcome.adapter.targets).toEqual(['q_proj', 'v_proj']);
      const zero = gridPreset('attention_only', 2, ['q_proj', 'v_proj', 'up_proj'], () => false);
      await expect(merged(compute(), { method: 'cat', layerGrid: zero })).rejects.toThrow(
        /^merge: every module of the result is zero .*: there is no adapter to write$/,
      );
    });

    it('the quantile clamp bounds both output factors as kohya does', async () => {
      const { outcome } = await merged(compute(), { method: 'svd', rank: 4, clamp: 0.9 });
      const free = await merged(compute(), { method: 'svd', rank: 4 });
      for (const [i, m] of outcome.adapter.modules.entries()) {
        const before = free.outcome.adapter.modules[i];
        const sorted = Float64Array.from([...before.b, ...before.a]).sort();
        const position = 0.9 * (sorted.length - 1);
        const low = Math.floor(position);
        const h = sorted[low] + (position - low) * (sorted[low + 1] - sorted[low]);
        const values = [...m.b, ...m.a];
        expect(Math.max(...values.map(Math.abs))).toBeCloseTo(h, 5);
        // Entries inside the bound are untouched.
        const inside = [...before.b, ...before.a].findIndex((v) => Math.abs(v) < h);
        expect(values[inside]).toBe([...before.b, ...before.a][inside]);
      }
    });

    it('weights may be gradients over depth (mergekit lists)', async () => {
      const outcome = await mergeAdapters(compute(), [first], {
        method: 'cat',
        adapters: [{ id: 'first', weight: [0, 2] }],
      });
      const at = (p: string) => mergedDelta(outcome.adapter.modules.find((m) => m.path === p)!);
      // Weight 0 at layer 0, where Q is: zero, so not written.
      expect(outcome.adapter.modules.some((m) => m.path === Q)).toBe(false);
      expect(
        relativeNormError(
          at(V),
          deltaOf(first, V).map((v) => 2 * v),
        ),
      ).toBeLessThan(1e-5);
    });
  });

  describe('one adapter at weight 1 merges to itself', () => {
    const identities: [MergeMethod, Partial<MergeSpec>][] = [
      ['cat', {}],
      ['svd', { rank: 3 }],
      ['task_arithmetic', {}],
      ['linear', {}],
      ['ties', { density: 1 }],
      ['magnitude_prune', { density: 1 }],
      ['ties_svd', { density: 1, rank: 3 }],
      ['dare_linear_svd', { density: 1, rank: 3 }],
      ['magnitude_prune_svd', { density: 1, rank: 3 }],
      ['breadcrumbs_svd', { density: 1, gamma: 0, rank: 3 }],
      ['lora_lego', { rank: 3 }],
      ['opcm', {}],
    ];
    for (const [method, extra] of identities)
      it(method, async () => {
        const { delta } = await merged(compute(), { method, ...extra }, [first], [1]);
        for (const p of [Q, V])
          expect(relativeNormError(delta(p), deltaOf(first, p))).toBeLessThan(1e-5);
      });
  });

  describe('entrywise methods match the CPU reference on dense ΔW', () => {
    const cases: [MergeMethod, Sparsify, Consensus][] = [
      [
        'ties_svd',
        { kind: 'magnitude', density: 0.4 },
        { elect: 'total', weighted: false, divisor: 'count' },
      ],
      ['dare_linear_svd', { kind: 'random', density: 0.4 }, PLAIN_SUM],
      [
        'dare_ties_svd',
        { kind: 'random', density: 0.4 },
        { elect: 'total', weighted: false, divisor: 'count' },
      ],
      ['magnitude_prune_svd', { kind: 'magnitude', density: 0.4 }, PLAIN_SUM],
      ['breadcrumbs_svd', { kind: 'outliers', density: 0.4, gamma: 0.05 }, PLAIN_SUM],
      [
        'della_svd',
        { kind: 'della', density: 0.4, epsilon: 0.1 },
        { elect: 'total', weighted: false, divisor: 'count' },
      ],
    ];
    for (const [method, sparsify, consensus] of cases)
      it(`${method} (full output rank: exact)`, async () => {
        const spec = { method, density: 0.4, gamma: 0.05, epsilon: 0.1, seed: 3, rank: OUT };
        const { delta } = await merged(compute(), spec);
        const [job] = moduleJobs(
          [first, second],
          {
            ...spec,
            adapters: [
              { id: 'a', weight: 0.8 },
              { id: 'b', weight: -0.6 },
            ],
          },
          2,
        );
        const expected = mergeEntrywiseCpu(
          [first, second].map((a, i) => ({
            x: Float32Array.from(deltaOf(a, job.path)),
            task: { weight: [0.8, -0.6][i], sparsify, seed: taskSeed(3, job.salt, i) },
          })),
          consensus,
          IN,
        );
        expect(relativeNormError(delta(job.path), expected)).toBeLessThan(1e-4);
      });

    it("mergekit's TIES divides by the agreeing weights and elects on weighted values", async () => {
      const spec = {
        method: 'ties_svd' as const,
        density: 0.5,
        tiesDivisor: 'weights' as const,
        rank: OUT,
      };
      const { delta } = await merged(compute(), spec, [first, second], [0.8, 0.3]);
      const expected = mergeEntrywiseCpu(
        [first, second].map((a, i) => ({
          x: Float32Array.from(deltaOf(a, Q)),
          task: {
            weight: [0.8, 0.3][i],
            sparsify: { kind: 'magnitude', density: 0.5 },
            seed: 0,
          },
        })),
        { elect: 'total', weighted: true, divisor: 'weights' },
        IN,
      );
      expect(relativeNormError(delta(Q), expected)).toBeLessThan(1e-4);
    });

    it('DARE merges are reproducible from the seed', async () => {
      const a = await merged(compute(), { method: 'dare_ties_svd', seed: 9, rank: 4 });
      const b = await merged(compute(), { method: 'dare_ties_svd', seed: 9, rank: 4 });
      const c = await merged(compute(), { method: 'dare_ties_svd', seed: 10, rank: 4 });
      expect(Array.from(a.delta(Q))).toEqual(Array.from(b.delta(Q)));
      expect(relativeNormError(a.delta(Q), c.delta(Q))).toBeGreaterThan(1e-3);
    });

    it("PEFT's factor-space ties applies TIES to A's and to B's separately", async () => {
      const equal = adapter('equal', [Q, V], 3, 3, 300);
      const { delta } = await merged(
        compute(),
        { method: 'ties', density: 0.5 },
        [first, equal],
        [1, 1],
      );
      const consensus: Consensus = { elect: 'total', weighted: false, divisor: 'count' };
      const side = (which: 'a' | 'b', salt: number, width: number) =>
        mergeEntrywiseCpu(
          [first, equal].map((x, i) => {
            const m = x.modules.get(Q)!;
            return {
              x: m[which],
              task: {
                weight: Math.sqrt(m.scale),
                sparsify: { kind: 'magnitude', density: 0.5 },
                seed: taskSeed(0, salt, i),
              },
            };
          }),
          consensus,
          width,
        );
      const [job] = moduleJobs(
        [first, equal],
        {
          method: 'ties',
          adapters: [
            { id: 'a', weight: 1 },
            { id: 'b', weight: 1 },
          ],
        },
        2,
      );
      const expected = dense(
        { a: side('a', job.salt, IN), b: side('b', job.salt ^ 0x5bd1e995, 3), rank: 3 },
        1,
      );
      expect(relativeNormError(delta(Q), expected)).toBeLessThan(1e-5);
    });
  });

  describe('LoRA-LEGO and OPCM', () => {
    it('LoRA-LEGO with a cluster per unit is the weighted sum; fewer clusters keep its norm', async () => {
      const all = await merged(compute(), { method: 'lora_lego', rank: 8 });
      const exact = sum([deltaOf(first, Q), deltaOf(second, Q)], [0.8, -0.6]);
      expect(relativeNormError(all.delta(Q), exact)).toBeLessThan(1e-5);
      const few = await merged(compute(), { method: 'lora_lego', rank: 3 });
      expect(few.outcome.adapter.modules.find((m) => m.path === Q)!.rank).toBe(3);
      expect(Math.hypot(...few.delta(Q)) / Math.hypot(...exact)).toBeCloseTo(1, 4);
    });

    it('OPCM matches a dense reference of the projection and rescaling', async () => {
      const { delta } = await merged(
        compute(),
        { method: 'opcm', opcmAlpha: 0.5 },
        [first, second],
        [1, 1],
      );
      // Reference: S = τ₁; S += τ₂ − U_p·M·V_pᵀ (M: the diagonal and the leading block of Uᵀτ₂V);
      // then every module scaled by mean‖τᵢ‖ / ‖S‖ over all modules.
      const projectedSum = (path: string) => {
        const t1 = deltaOf(first, path);
        const t2 = deltaOf(second, path);
        if (!first.modules.has(path)) return t2;
        const { u, s, v } = jacobiSvd(mat(OUT, IN, t1));
        const p = Array.from(s).filter((x) => x > 1e-6 * s[0]).length;
        const total = Array.from(s.subarray(0, p)).reduce((a, b) => a + b, 0);
        let split = 0;
        for (let i = 0, run = 0; i < p; i++)
          if ((run += s[i]) / total > 0.5) {
            split = i;
            break;
          }
        const out = t1.map((x, i) => x + t2[i]);
        for (let i = 0; i < p; i++)
          for (let j = 0; j < p; j++) {
            if (!(i === j || (i < split && j < split))) continue;
            let c = 0;
            for (let o = 0; o < OUT; o++)
              for (let k = 0; k < IN; k++)
                c += u.data[o * u.cols + i] * t2[o * IN + k] * v.data[k * v.cols + j];
            for (let o = 0; o < OUT; o++)
              for (let k = 0; k < IN; k++)
                out[o * IN + k] -= c * u.data[o * u.cols + i] * v.data[k * v.cols + j];
          }
        return out;
      };
      const paths = [Q, V, UP];
      const sums = paths.map(projectedSum);
      const norm = (xs: Float64Array[]) =>
        Math.sqrt(xs.reduce((t, x) => t + x.reduce((s, v) => s + v * v, 0), 0));
      const mean =
        (norm(paths.map((p) => deltaOf(first, p))) + norm(paths.map((p) => deltaOf(second, p)))) /
        2;
      const scale = mean / norm(sums);
      paths.forEach((p, i) => {
        expect(
          relativeNormError(
            delta(p),
            sums[i].map((x) => x * scale),
          ),
        ).toBeLessThan(1e-4);
      });
    });
  });

  describe('refusals', () => {
    it('refuses adapters for different base models, DoRA, NaN, and bad specs, by name', async () => {
      const other = { ...second, baseModel: 'other' };
      await expect(merged(compute(), { method: 'cat' }, [first, other])).rejects.toThrow(
        /different base models/,
      );
      const dora = { ...second, details: { ...second.details, variant: 'dora' as const } };
      await expect(merged(compute(), { method: 'cat' }, [first, dora])).rejects.toThrow(
        /second is a DoRA adapter/,
      );
      const nan = { ...second, nonFinite: [{ tensor: 'x', count: 1 }] };
      await expect(merged(compute(), { method: 'cat' }, [first, nan])).rejects.toThrow(
        /second holds NaN/,
      );
      await expect(merged(compute(), { method: 'ties_svd', density: 0 })).rejects.toThrow(
        /density/,
      );
      await expect(merged(compute(), { method: 'slerp' }, [first])).rejects.toThrow(/exactly two/);
      await expect(merged(compute(), { method: 'linear' })).rejects.toThrow(/equal ranks/);
    });
  });

  for (const pair of PAIRS)
    describe(`entrywise methods on the real ${pair.name} fixture pair, against the CPU reference`, () => {
      // The CPU runs one code path for every entrywise method (checked on all of them above):
      // two of them on the real shapes keep the suite quick.
      for (const [method, sparsify, consensus, extra] of where === 'GPU'
        ? REAL_CASES
        : REAL_CASES.filter(([m]) => m === 'ties_svd' || m === 'della_svd'))
        it(`${method} at rank 18`, async () => {
          const spec: MergeSpec = {
            method,
            density: 0.3,
            seed: 1,
            rank: 18,
            ...extra,
            adapters: [
              { id: 'first', weight: 1 },
              { id: 'second', weight: 0.5 },
            ],
          };
          const outcome = await mergeAdapters(compute(), pair.adapters, spec);
          for (const job of moduleJobs(pair.adapters, spec, pair.layers)) {
            const expected = mergeEntrywiseCpu(
              pair.adapters.map((a, i) => {
                const module = a.modules.get(job.path)!;
                return {
                  x: Float32Array.from(dense(module, module.scale)),
                  task: { weight: [1, 0.5][i], sparsify, seed: taskSeed(1, job.salt, i) },
                };
              }),
              consensus,
              job.in,
            );
            const got = mergedDelta(outcome.adapter.modules.find((x) => x.path === job.path)!);
            // The entrywise result is full-rank and rank 18 keeps its leading part: a best rank-k
            // approximation is an orthogonal projection of the reference, ⟨D_k, D⟩ = ‖D_k‖², …
            const dot = got.reduce((s, v, i) => s + v * expected[i], 0);
            const kept = got.reduce((s, v) => s + v * v, 0);
            expect(Math.abs(dot - kept) / kept, job.path).toBeLessThan(1e-3);
            // … and it keeps (almost) the best rank-18 energy, checked where the CPU SVD is quick.
            if (Math.min(job.out, job.in) <= 192) {
              const { s } = jacobiSvd(mat(job.out, job.in, expected));
              const best = Array.from(s.subarray(0, 18)).reduce((t, x) => t + x * x, 0);
              expect(kept / best, job.path).toBeGreaterThan(0.995);
            }
          }
        });
    });
});
