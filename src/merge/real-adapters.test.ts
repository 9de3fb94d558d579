// Exact merges (merge.ts) against dense ΔW computed on the CPU, on the real Qwen2.5 fixture adapters
// (ranks 6 and 12 on the same base): identity, cat = the weighted sum, svd at full rank = cat.
import { describe, expect, it } from 'vitest';
import { relativeNormError } from '../linalg/compare.ts';
import type { ExportModule } from '../adapters/peft.ts';
import { readPeftAdapter, type PeftAdapter } from '../adapters/peft-read.ts';
import { fixture } from '../testing/fixtures.ts';
import { useGpu } from '../testing/gpu.ts';
import { gpuCompute } from './compute.ts';
import { mergeAdapters } from './merge.ts';
import type { MergeMethod } from './spec.ts';

const gpu = useGpu();

async function mergeExact(
  inputs: { adapter: PeftAdapter; weight: number }[],
  method: MergeMethod,
  rank?: number,
) {
  const adapters = inputs.map((i) => ({ id: i.adapter.name, weight: i.weight }));
  return mergeAdapters(
    gpuCompute(gpu()),
    inputs.map((i) => i.adapter),
    { method, rank, adapters },
  );
}
const QWEN = 'adapters/qwen2.5-0.5b-instruct/';
const load = (dir: string) =>
  readPeftAdapter(
    new Map(
      ['adapter_config.json', 'adapter_model.safetensors'].map((f) => [
        f,
        fixture(`${QWEN}${dir}/${f}`),
      ]),
    ),
    dir,
  );
const r6 = load('MatthewZhang473_20251017_101834_r6_alpha32');
const r12 = load('MatthewZhang473_20251017_140153_r12_alpha32');
const PATHS = ['model.layers.0.self_attn.q_proj', 'model.layers.23.self_attn.v_proj'];

/** Dense Σ wᵢ·sᵢ·Bᵢ·Aᵢ of one module, in f64. */
function denseDelta(
  path: string,
  inputs: { adapter: PeftAdapter; weight: number }[],
): Float64Array {
  const first = inputs[0].adapter.modules.get(path);
  if (!first) throw new Error(path);
  const out = first.b.length / first.rank;
  const width = first.a.length / first.rank;
  const d = new Float64Array(out * width);
  for (const { adapter, weight } of inputs) {
    const m = adapter.modules.get(path);
    if (!m) continue;
    for (let o = 0; o < out; o++)
      for (let j = 0; j < m.rank; j++) {
        const coefficient = weight * m.scale * m.b[o * m.rank + j];
        for (let i = 0; i < width; i++) d[o * width + i] += coefficient * m.a[j * width + i];
      }
  }
  return d;
}

/** s·B·A of a merged module (scale alpha/r). */
function moduleDelta(m: ExportModule): Float64Array {
  const s = m.alpha / m.rank;
  const d = new Float64Array(m.out * m.in);
  for (let o = 0; o < m.out; o++)
    for (let j = 0; j < m.rank; j++) {
      const coefficient = s * m.b[o * m.rank + j];
      for (let i = 0; i < m.in; i++) d[o * m.in + i] += coefficient * m.a[j * m.in + i];
    }
  return d;
}

function check(
  modules: readonly ExportModule[],
  inputs: { adapter: PeftAdapter; weight: number }[],
  tolerance: number,
) {
  for (const path of PATHS) {
    const m = modules.find((x) => x.path === path);
    if (!m) throw new Error(`merged adapter lacks ${path}`);
    expect(relativeNormError(moduleDelta(m), denseDelta(path, inputs)), path).toBeLessThan(
      tolerance,
    );
  }
}

describe('exact merges', () => {
  it('identity: one adapter at weight 1 merges to its own ΔW, by cat and by svd at its rank', async () => {
    const inputs = [{ adapter: r6, weight: 1 }];
    const cat = await mergeExact(inputs, 'cat');
    expect(cat.adapter).toMatchObject({ rank: 6, alpha: 6, rslora: false });
    check(cat.adapter.modules, inputs, 1e-6);
    const svd = await mergeExact(inputs, 'svd', 6);
    check(svd.adapter.modules, inputs, 1e-5);
    expect(svd.lostEnergy).toBeLessThan(1e-6);
  });

  it('cat is the weighted sum of ΔW at rank Σrᵢ, negative weights included', async () => {
    const inputs = [
      { adapter: r6, weight: 0.7 },
      { adapter: r12, weight: -0.4 },
    ];
    const { adapter } = await mergeExact(inputs, 'cat');
    expect(adapter.rank).toBe(18);
    expect(adapter.modules).toHaveLength(48);
    check(adapter.modules, inputs, 1e-6);
  });

  it('svd at full rank equals cat; below it, the energy it drops is reported', async () => {
    const inputs = [
      { adapter: r6, weight: 1 },
      { adapter: r12, weight: 1 },
    ];
    const full = await mergeExact(inputs, 'svd', 18);
    check(full.adapter.modules, inputs, 1e-5);
    expect(full.lostEnergy).toBeLessThan(1e-6);
    const eight = await mergeExact(inputs, 'svd', 8);
    expect(eight.adapter).toMatchObject({ rank: 8, alpha: 8 });
    expect(eight.lostEnergy).toBeGreaterThan(0);
    expect(eight.lostEnergy).toBeLessThan(1);
  });

  it("linear (PEFT's) is exact for one adapter, and for two adds exactly the cross terms", async () => {
    const single = await mergeExact([{ adapter: r12, weight: 0.8 }], 'linear');
    check(single.adapter.modules, [{ adapter: r12, weight: 0.8 }], 1e-6);
    // Two rank-16 SmolLM adapters: B·A = Σ sᵢBᵢAᵢ + √(s₁s₂)(B₁A₂ + B₂A₁), the cross terms.
    const smol = (dir: string) =>
      readPeftAdapter(
        new Map(
          ['adapter_config.json', 'adapter_model.safetensors'].map((f) => [
            f,
            fixture(`adapters/smollm-135m-instruct/${dir}/${f}`),
          ]),
        ),
        dir,
      );
    const one = smol('medai_TFM-HITESH_5epochs');
    const two = smol('medai_TFM-HITESH_100epochs');
    const pair = [
      { adapter: one, weight: 1 },
      { adapter: two, weight: 1 },
    ];
    const { adapter } = await mergeExact(pair, 'linear');
    const path = 'model.layers.3.self_attn.v_proj';
    const merged = adapter.modules.find((m) => m.path === path);
    const [m1, m2] = [one.modules.get(path), two.modules.get(path)];
    if (!merged || !m1 || !m2) throw new Error(path);
    const width = m1.a.length / m1.rank;
    const cross = new Float64Array(merged.out * width);
    const root = Math.sqrt(m1.scale * m2.scale);
    for (let o = 0; o < merged.out; o++)
      for (let j = 0; j < m1.rank; j++)
        for (let i = 0; i < width; i++)
          cross[o * width + i] +=
            root *
            (m1.b[o * m1.rank + j] * m2.a[j * width + i] +
              m2.b[o * m1.rank + j] * m1.a[j * width + i]);
    const exact = denseDelta(path, pair);
    expect(
      relativeNormError(
        moduleDelta(merged),
        exact.map((v, k) => v + cross[k]),
      ),
    ).toBeLessThan(1e-5);
    expect(relativeNormError(moduleDelta(merged), exact)).toBeGreaterThan(1e-2);
    await expect(
      mergeExact(
        [
          { adapter: r6, weight: 1 },
          { adapter: r12, weight: 1 },
        ],
        'linear',
      ),
    ).rejects.toThrow(/equal ranks/);
  });

  it('refuses adapters for different bases and DoRA adapters, by name', async () => {
    const other = { ...r6, name: 'other', baseModel: 'HuggingFaceTB/SmolLM-135M' };
    await expect(
      mergeExact(
        [
          { adapter: r6, weight: 1 },
          { adapter: other, weight: 1 },
        ],
        'cat',
      ),
    ).rejects.toThrow(/different base models/);
    const dora = { ...r6, details: { ...r6.details, variant: 'dora' as const } };
    await expect(mergeExact([{ adapter: dora, weight: 1 }], 'svd')).rejects.toThrow(/DoRA/);
  });
});
