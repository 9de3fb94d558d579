// Adapter diagnostics against a dense f64 reference written here: ΔW = s·B·A formed entry by
// entry, its cosine, sign conflicts and (by dense SVD) principal angles and effective ranks.
// On random adapters with odd shapes (one module rank-deficient, one with out < rank, modules
// only some adapters have) and on the real fixture adapters (Qwen2.5 r6 / r12, SmolLM).
import { describe, expect, it } from 'vitest';
import type { AdapterModule, PeftAdapter } from '../adapters/peft-read.ts';
import { readPeftAdapter } from '../adapters/peft-read.ts';
import { columns, mat, multiply, transpose, type Mat } from '../linalg/cpu/dense.ts';
import { jacobiSvd } from '../linalg/cpu/svd.ts';
import { fixture } from '../testing/fixtures.ts';
import { mergeComputes, useGpu } from '../testing/gpu.ts';
import { randomArray, seededRandom } from '../testing/random.ts';
import { gpuCompute } from '../merge/compute.ts';
import { compareAdapters, type AdapterComparison, type ModuleDiagnostics } from './diagnostics.ts';

const gpu = useGpu();

function load(dir: string): PeftAdapter {
  const files = ['adapter_config.json', 'adapter_model.safetensors'].map(
    (f): [string, Uint8Array] => [f, fixture(`adapters/${dir}/${f}`)],
  );
  return readPeftAdapter(new Map(files), dir);
}

function randomModule(out: number, inputs: number, rank: number, scale: number, seed: number) {
  const random = seededRandom(seed);
  return {
    rank,
    scale,
    a: randomArray(random, rank * inputs),
    b: randomArray(random, out * rank),
  };
}

function adapter(
  name: string,
  modules: Record<string, AdapterModule>,
  baseModel: string | null = 'test/base',
): PeftAdapter {
  const map = new Map(Object.entries(modules));
  return {
    name,
    baseModel,
    modules: map,
    fullWeights: new Map(),
    details: { rank: 4, alpha: 4, rslora: false, modules: map.size, targets: [], variant: 'lora' },
    nonFinite: [],
  };
}

/** The adapter's modules in the given layers only (keeps the tests quick on SwiftShader). */
function inLayers(a: PeftAdapter, layers: readonly number[]): PeftAdapter {
  const kept = [...a.modules].filter(([path]) =>
    layers.some((l) => path.includes(`.layers.${l}.`)),
  );
  return { ...a, modules: new Map(kept) };
}

function negated(a: PeftAdapter): PeftAdapter {
  const modules = [...a.modules].map(([path, m]): [string, AdapterModule] => [
    path,
    { ...m, b: m.b.map((v) => -v) },
  ]);
  return { ...a, name: `−${a.name}`, modules: new Map(modules) };
}

// ---- The reference: dense ΔW in f64, straight from the definitions. ----

/** s·B·A, entry by entry (zeros for a missing module). */
function dense(m: AdapterModule | undefined, out: number, inputs: number): Float64Array {
  const d = new Float64Array(out * inputs);
  if (!m) return d;
  for (let o = 0; o < out; o++)
    for (let i = 0; i < inputs; i++) {
      let sum = 0;
      for (let j = 0; j < m.rank; j++) sum += m.b[o * m.rank + j] * m.a[j * inputs + i];
      d[o * inputs + i] = m.scale * sum;
    }
  return d;
}

const dot = (x: Float64Array, y: Float64Array) => x.reduce((t, v, k) => t + v * y[k], 0);
const frobenius = (x: Float64Array) => Math.sqrt(dot(x, x));

function denseCosine(x: Float64Array, y: Float64Array): number {
  const norms = frobenius(x) * frobenius(y);
  return norms === 0 ? 0 : dot(x, y) / norms;
}

const maxAbs = (x: Float64Array) => x.reduce((t, v) => Math.max(t, Math.abs(v)), 0);

/**
 * Shared (both nonzero) and conflicting entries; `nearZero` counts entries so close to 0
 * (within 1e-5 of the largest) that f32 rounding on the GPU may flip their sign or cancel them.
 */
function denseSigns(x: Float64Array, y: Float64Array) {
  let shared = 0;
  let conflicting = 0;
  let nearZero = 0;
  const [xBand, yBand] = [1e-5 * maxAbs(x), 1e-5 * maxAbs(y)];
  x.forEach((v, k) => {
    if (v === 0 || y[k] === 0) return;
    shared++;
    if (Math.sign(v) !== Math.sign(y[k])) conflicting++;
    if (Math.abs(v) <= xBand || Math.abs(y[k]) <= yBand) nearZero++;
  });
  return { shared, conflicting, nearZero };
}

/** Singular values and the column-space basis (σ above σ₁·max(m, n)·ε_f32) by dense SVD. */
function denseSvd(x: Float64Array, out: number, inputs: number) {
  const { u, s } = jacobiSvd(mat(out, inputs, x));
  const k = [...s].filter((v) => v > s[0] * Math.max(out, inputs) * 2 ** -23).length;
  return { s: [...s], basis: columns(u, 0, k) };
}

/** Cosines of the principal angles between the spans of two orthonormal bases. */
function densePrincipalCosines(u1: Mat, u2: Mat): number[] {
  if (u1.cols === 0 || u2.cols === 0) return [];
  return [...jacobiSvd(multiply(transpose(u1), u2)).s];
}

const meanSquare = (v: readonly number[]) =>
  v.length ? v.reduce((t, c) => t + c * c, 0) / v.length : 0;

function denseEffectiveRank(s: readonly number[], share: number): number {
  const energy = s.map((v) => v * v);
  const total = energy.reduce((t, e) => t + e, 0);
  for (let k = 1; k <= s.length; k++)
    if (energy.slice(0, k).reduce((t, e) => t + e, 0) >= share * total) return k;
  return 0;
}

function moduleOf(c: AdapterComparison, path: string): ModuleDiagnostics {
  const m = c.modules.find((x) => x.path === path);
  if (!m) throw new Error(`no diagnostics for ${path}`);
  return m;
}

/** Checks one module's cosine and sign counts for every pair against the dense reference. */
function checkCosinesAndSigns(c: AdapterComparison, adapters: PeftAdapter[], path: string) {
  const m = moduleOf(c, path);
  const deltas = adapters.map((a) => dense(a.modules.get(path), m.out, m.in));
  deltas.forEach((d, i) => {
    expect(m.adapters[i].norm, `${path} ‖ΔW${i}‖`).toBeCloseTo(frobenius(d), 6);
  });
  for (const pair of m.pairs) {
    const [x, y] = [deltas[pair.first], deltas[pair.second]];
    const what = `${path} (${pair.first}, ${pair.second})`;
    expect(pair.cosine, `${what} cosine`).toBeCloseTo(denseCosine(x, y), 9);
    const { shared, conflicting, nearZero } = denseSigns(x, y);
    expect(Math.abs(pair.sharedEntries - shared), `${what} shared entries`).toBeLessThanOrEqual(
      nearZero,
    );
    expect(
      Math.abs(pair.conflictingEntries - conflicting),
      `${what} conflicts`,
    ).toBeLessThanOrEqual(nearZero);
    expect(pair.signConflict).toBe(
      shared > 0 ? pair.conflictingEntries / pair.sharedEntries : null,
    );
  }
}

/** Checks singular values, effective ranks and principal angles against dense SVDs. */
function checkSpectra(c: AdapterComparison, adapters: PeftAdapter[], path: string) {
  const m = moduleOf(c, path);
  const svds = adapters.map((a) => denseSvd(dense(a.modules.get(path), m.out, m.in), m.out, m.in));
  svds.forEach(({ s: all }, i) => {
    const got = m.adapters[i];
    const rank = adapters[i].modules.get(path)?.rank ?? 0;
    const s = all.slice(0, Math.min(m.out, m.in, rank));
    expect(got.singularValues.length, `${path} σ count of ${i}`).toBe(s.length);
    got.singularValues.forEach((v, k) => {
      expect(v, `${path} σ${k} of ${i}`).toBeCloseTo(s[k], 8);
    });
    expect(got.effectiveRank90, `${path} rank90 of ${i}`).toBe(denseEffectiveRank(s, 0.9));
    expect(got.effectiveRank99, `${path} rank99 of ${i}`).toBe(denseEffectiveRank(s, 0.99));
  });
  for (const pair of m.pairs) {
    const want = densePrincipalCosines(svds[pair.first].basis, svds[pair.second].basis);
    const what = `${path} (${pair.first}, ${pair.second})`;
    expect(pair.principalCosines.length, `${what} angles`).toBe(want.length);
    pair.principalCosines.forEach((cos, k) => {
      expect(cos, `${what} cos θ${k}`).toBeCloseTo(want[k], 8);
    });
    expect(pair.overlap, `${what} overlap`).toBeCloseTo(meanSquare(want), 8);
  }
}

describe('compareAdapters on random adapters', () => {
  const Q = 'model.layers.0.self_attn.q_proj'; // 13×21
  const K = 'model.layers.1.self_attn.k_proj'; // 3×17: fewer outputs than rank 5
  const V = 'model.layers.2.self_attn.v_proj'; // 5×13, only z has it
  const DOWN = 'model.layers.2.mlp.down_proj'; // 19×11
  const HEAD = 'lm_head'; // 7×9, no layer
  const x = adapter('x', {
    [Q]: randomModule(13, 21, 5, 1.7, 1),
    [K]: randomModule(3, 17, 5, 0.5, 2),
    [DOWN]: randomModule(19, 11, 5, 1.7, 3),
    [HEAD]: randomModule(7, 9, 5, 1.7, 4),
  });
  // y's down_proj has two equal rows of A: ΔW has rank 2 although B has 3 columns.
  const yDown = randomModule(19, 11, 3, 0.6, 5);
  yDown.a.copyWithin(11, 0, 11);
  // y's q_proj leaves output 4 alone (a zero row of B): those entries are not shared.
  const yQ = randomModule(13, 21, 3, 0.6, 6);
  yQ.b.fill(0, 4 * 3, 5 * 3);
  const y = adapter('y', {
    [Q]: yQ,
    [K]: randomModule(3, 17, 3, 0.6, 7),
    [DOWN]: yDown,
  });
  // z's q_proj writes into a space holding x's: its B is x's B beside two more columns.
  const zQ = randomModule(13, 21, 7, 2, 8);
  const xQ = x.modules.get(Q);
  if (!xQ) throw new Error(Q);
  for (let o = 0; o < 13; o++) zQ.b.set(xQ.b.subarray(o * 5, o * 5 + 5), o * 7);
  const z = adapter('z', {
    [Q]: zQ,
    [V]: randomModule(5, 13, 4, 1, 9),
    [HEAD]: randomModule(7, 9, 2, 3, 10),
  });
  const all = [x, y, z];

  it.each(mergeComputes(gpu))(
    'matches the dense reference per module: norms, cosines, sign conflicts, spectra, angles (%s)',
    async (_, compute) => {
      const c = await compareAdapters(compute(), all);
      expect(c.modules.map((m) => m.path)).toEqual([Q, K, V, DOWN, HEAD]);
      expect(c.modules.map((m) => [m.layer, m.type, m.out, m.in])).toEqual([
        [0, 'q_proj', 13, 21],
        [1, 'k_proj', 3, 17],
        [2, 'v_proj', 5, 13],
        [2, 'down_proj', 19, 11],
        [null, 'lm_head', 7, 9],
      ]);
      for (const path of [Q, K, V, DOWN, HEAD]) {
        checkCosinesAndSigns(c, all, path);
        checkSpectra(c, all, path);
      }
      // The constructions did what they claim, so the checks above covered those cases.
      expect(moduleOf(c, DOWN).adapters[1].effectiveRank99).toBe(2);
      expect(moduleOf(c, DOWN).pairs[0].principalCosines).toHaveLength(2);
      const xz = moduleOf(c, Q).pairs[1];
      expect(xz.overlap).toBeCloseTo(1, 9);
      expect(Math.abs(xz.cosine)).toBeLessThan(0.9);
      expect(moduleOf(c, Q).pairs[0].sharedEntries).toBe(12 * 21);
    },
  );

  it('missing modules count as zero ΔW', async () => {
    const c = await compareAdapters(gpuCompute(gpu()), all);
    const v = moduleOf(c, V);
    expect(v.adapters.map((a) => a.present)).toEqual([false, false, true]);
    expect(v.adapters[0]).toEqual({
      present: false,
      norm: 0,
      singularValues: [],
      effectiveRank90: 0,
      effectiveRank99: 0,
    });
    for (const pair of v.pairs)
      expect(pair).toMatchObject({
        cosine: 0,
        principalCosines: [],
        overlap: 0,
        sharedEntries: 0,
        signConflict: null,
      });
  });

  it('sums modules into whole-adapter similarity, mean overlap, conflict rate and grids', async () => {
    const c = await compareAdapters(gpuCompute(gpu()), all);
    const paths = [Q, K, V, DOWN, HEAD];
    const shapes = c.modules.map((m) => [m.out, m.in] as const);
    const deltas = all.map((a) => paths.map((p, k) => dense(a.modules.get(p), ...shapes[k])));
    const whole = (i: number) => {
      const parts = deltas[i];
      const merged = new Float64Array(parts.reduce((n, d) => n + d.length, 0));
      parts.reduce((offset, d) => (merged.set(d, offset), offset + d.length), 0);
      return merged;
    };
    expect(c.moduleTypes).toEqual(['q_proj', 'k_proj', 'v_proj', 'down_proj', 'lm_head']);
    expect(c.layers).toBe(3);
    expect(c.pairs.map((p) => [p.first, p.second])).toEqual([
      [0, 1],
      [0, 2],
      [1, 2],
    ]);
    all.forEach((_, i) => {
      expect(c.adapters[i].norm).toBeCloseTo(frobenius(whole(i)), 6);
      all.forEach((_, j) => {
        expect(c.similarity[i][j], `similarity ${i} ${j}`).toBeCloseTo(
          denseCosine(whole(i), whole(j)),
          9,
        );
      });
    });
    for (const pair of c.pairs) {
      const { first: i, second: j } = pair;
      const either = paths.filter((p) => all[i].modules.has(p) || all[j].modules.has(p));
      const overlaps = either.map((p) => {
        const k = paths.indexOf(p);
        const [u1, u2] = [i, j].map((a) => denseSvd(deltas[a][k], ...shapes[k]).basis);
        return meanSquare(densePrincipalCosines(u1, u2));
      });
      expect(pair.meanOverlap).toBeCloseTo(overlaps.reduce((t, o) => t + o) / overlaps.length, 8);
      const signs = paths.map((_, k) => denseSigns(deltas[i][k], deltas[j][k]));
      const shared = signs.reduce((t, s) => t + s.shared, 0);
      const conflicting = signs.reduce((t, s) => t + s.conflicting, 0);
      const nearZero = signs.reduce((t, s) => t + s.nearZero, 0);
      expect(Math.abs((pair.signConflict ?? NaN) * shared - conflicting)).toBeLessThanOrEqual(
        nearZero + 1e-9,
      );
      const grid = Array.from({ length: 3 }, () => c.moduleTypes.map((): number | null => null));
      paths.forEach((p, k) => {
        const layer = c.modules[k].layer;
        if (layer !== null && either.includes(p))
          grid[layer][c.moduleTypes.indexOf(c.modules[k].type)] = denseCosine(
            deltas[i][k],
            deltas[j][k],
          );
      });
      expect(pair.grid.length).toBe(3);
      pair.grid.forEach((row, l) => {
        row.forEach((cell, t) => {
          const want = grid[l][t];
          if (want === null) expect(cell, `grid ${l} ${t}`).toBeNull();
          else expect(cell, `grid ${l} ${t}`).toBeCloseTo(want, 9);
        });
      });
    }
    // x and y lack v_proj: their grid has null there, while x and z's has z's 0.
    expect(c.pairs[0].grid[2][2]).toBeNull();
    expect(c.pairs[1].grid[2][2]).toBe(0);
    expect(JSON.parse(JSON.stringify(c))).toEqual(c);
  });

  it('handles Qwen2.5-0.5B MLP modules (896×4864) against the dense reference', async () => {
    const DOWN_PROJ = 'model.layers.0.mlp.down_proj';
    const big = [1, 2].map((seed) =>
      adapter(`big${seed}`, { [DOWN_PROJ]: randomModule(896, 4864, 16, 2, seed) }),
    );
    const c = await compareAdapters(gpuCompute(gpu()), big);
    checkCosinesAndSigns(c, big, DOWN_PROJ);
    // One module: the summaries are its own figures.
    const [module] = c.modules;
    expect(c.pairs[0]).toMatchObject({
      cosine: module.pairs[0].cosine,
      meanOverlap: module.pairs[0].overlap,
      signConflict: module.pairs[0].signConflict,
    });
  });

  it('refuses adapters for different base models, clashing shapes, DoRA or nothing', async () => {
    const other = adapter('other', { [Q]: randomModule(13, 21, 2, 1, 11) }, 'other/base');
    await expect(compareAdapters(gpuCompute(gpu()), [x, other])).rejects.toThrow(
      new RangeError('compare: the adapters are for different base models (test/base, other/base)'),
    );
    const wide = adapter('wide', { [Q]: randomModule(13, 22, 2, 1, 12) });
    await expect(compareAdapters(gpuCompute(gpu()), [x, wide])).rejects.toThrow(
      /q_proj is 13×21 in x but 13×22 in wide/,
    );
    const dora = { ...y, details: { ...y.details, variant: 'dora' as const } };
    await expect(compareAdapters(gpuCompute(gpu()), [x, dora])).rejects.toThrow(
      /y is a DoRA adapter/,
    );
    await expect(compareAdapters(gpuCompute(gpu()), [])).rejects.toThrow(RangeError);
  });
});

describe('GPT-2: two module types that share a last name', () => {
  it('keeps attn.c_proj and mlp.c_proj apart, every module in its own column', async () => {
    const files = new Map(
      ['adapter_config.json', 'adapter_model.safetensors'].map((f) => [
        f,
        fixture(`models/arch/gpt2/lora/${f}`),
      ]),
    );
    const gpt2 = readPeftAdapter(files, 'gpt2');
    const c = await compareAdapters(gpuCompute(gpu()), [gpt2]);
    // A name that is unique stays short; the two c_proj keep their block's name.
    expect(c.moduleTypes).toEqual(['c_attn', 'attn.c_proj', 'c_fc', 'mlp.c_proj']);
    // Every module of the adapter has a cell of its own: none hidden behind another.
    expect(c.modules).toHaveLength(gpt2.modules.size);
    const cells = new Set(c.modules.map((m) => `${m.layer}/${m.type}`));
    expect(cells.size).toBe(gpt2.modules.size);
  });
});

describe('compareAdapters on the real fixture adapters', () => {
  const r6 = load('qwen2.5-0.5b-instruct/MatthewZhang473_20251017_101834_r6_alpha32');
  const r12 = load('qwen2.5-0.5b-instruct/MatthewZhang473_20251017_140153_r12_alpha32');

  it('an adapter against itself: cosine 1, overlap 1, no conflicts; against its negation: −1, 1, all', async () => {
    const some = inLayers(r6, [0, 1, 23]);
    const c = await compareAdapters(gpuCompute(gpu()), [some, some, negated(some)]);
    expect(c.modules).toHaveLength(6);
    expect(c.moduleTypes).toEqual(['q_proj', 'v_proj']);
    expect(c.layers).toBe(24);
    const [same, opposite] = c.pairs;
    expect(same).toMatchObject({ first: 0, second: 1, signConflict: 0 });
    expect(same.cosine).toBeCloseTo(1, 12);
    expect(same.meanOverlap).toBeCloseTo(1, 9);
    expect(opposite).toMatchObject({ first: 0, second: 2, signConflict: 1 });
    expect(opposite.cosine).toBeCloseTo(-1, 12);
    expect(opposite.meanOverlap).toBeCloseTo(1, 9);
    for (const m of c.modules) {
      expect(m.pairs[0].cosine).toBeCloseTo(1, 12);
      expect(m.pairs[1].cosine).toBeCloseTo(-1, 12);
      expect(m.pairs[0].principalCosines).toHaveLength(6);
      for (const cos of m.pairs[1].principalCosines) expect(cos).toBeCloseTo(1, 9);
      expect(m.pairs[1].sharedEntries).toBe(m.out * m.in);
      m.adapters[2].singularValues.forEach((v, k) => {
        expect(v).toBeCloseTo(m.adapters[0].singularValues[k], 9);
      });
    }
    const signs = [1, 1, -1];
    expect(c.similarity.flat().map((v) => Math.round(v * 1e9) / 1e9)).toEqual(
      signs.flatMap((s) => signs.map((t) => s * t)),
    );
    same.grid.forEach((row, layer) => {
      for (const cell of row)
        if ([0, 1, 23].includes(layer)) expect(cell).toBeCloseTo(1, 12);
        else expect(cell).toBeNull();
    });
  });

  it.each(mergeComputes(gpu))(
    'Qwen2.5 r6 against r12 matches the dense reference (%s)',
    async (_, compute) => {
      const pair = [inLayers(r6, [0, 23]), inLayers(r12, [0, 23])];
      const c = await compareAdapters(compute(), pair);
      checkCosinesAndSigns(c, pair, 'model.layers.0.self_attn.q_proj');
      const V = 'model.layers.23.self_attn.v_proj';
      checkCosinesAndSigns(c, pair, V);
      checkSpectra(c, pair, V);
      expect(c.adapters.map((a) => a.rank)).toEqual([6, 12]);
      expect(c.similarity[0][1]).toBe(c.pairs[0].cosine);
      expect(c.pairs[0].signConflict).toBeGreaterThan(0);
      expect(c.pairs[0].signConflict).toBeLessThan(1);
    },
  );

  it('the SmolLM pair matches the dense reference; mixing base models is refused', async () => {
    const five = inLayers(load('smollm-135m-instruct/medai_TFM-HITESH_5epochs'), [3]);
    const hundred = inLayers(load('smollm-135m-instruct/medai_TFM-HITESH_100epochs'), [3]);
    const c = await compareAdapters(gpuCompute(gpu()), [five, hundred]);
    checkCosinesAndSigns(c, [five, hundred], 'model.layers.3.self_attn.v_proj');
    await expect(compareAdapters(gpuCompute(gpu()), [r6, five])).rejects.toThrow(
      /different base models/,
    );
  });
});
