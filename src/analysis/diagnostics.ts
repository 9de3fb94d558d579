// Diagnostics for comparing adapters before merging them (docs/design.md §5): per module,
// each adapter's ‖ΔW‖_F, singular values and effective rank; per pair of adapters, the cosine
// of their ΔW, the principal angles between their column spaces and the rate of sign conflicts
// (the entrywise disagreement TIES resolves); summed up per pair and as layer × module grids.
// ΔW = s·B·A. Everything but the sign conflicts works on the factors (r×r products, f64 on the
// host); sign conflicts need the entries, formed (compute.ts) a block of rows at a time.
// A module an adapter lacks counts as a zero ΔW. Whole weights (modules_to_save) are not ΔW
// factors and are left out. The result is plain JSON.
import type { AdapterModule, PeftAdapter } from '../adapters/peft-read.ts';
import { compareRefusal } from '../adapters/variants.ts';
import { columns, identity, mat, multiply, transpose, type Mat } from '../linalg/cpu/dense.ts';
import { householderQr } from '../linalg/cpu/qr.ts';
import { jacobiSvd } from '../linalg/cpu/svd.ts';
import type { MergeCompute } from '../merge/compute.ts';
import { frobeniusInner, unscaled, weighted } from '../merge/low-rank.ts';
import { moduleKind, moduleOrder } from '../model/families.ts';

/** One adapter's ΔW on one module. */
export interface AdapterModuleDiagnostics {
  /** Whether the adapter has the module (if not, its ΔW counts as zero). */
  present: boolean;
  /** ‖ΔW‖_F. */
  norm: number;
  /** Singular values of ΔW, descending ([] where the module is missing). */
  singularValues: number[];
  /** Fewest singular directions holding 90 % of ‖ΔW‖²_F (0 for a zero ΔW). */
  effectiveRank90: number;
  /** Likewise for 99 %. */
  effectiveRank99: number;
}

/** Two adapters' ΔW on one module. */
export interface ModulePairDiagnostics {
  /** Indices into AdapterComparison.adapters, first < second. */
  first: number;
  second: number;
  /** ⟨ΔW₁, ΔW₂⟩_F / (‖ΔW₁‖·‖ΔW₂‖); 0 when either ΔW is zero (no direction to compare). */
  cosine: number;
  /** Cosines of the principal angles between the column spaces, descending, min(k₁, k₂) of them. */
  principalCosines: number[];
  /** Mean cos² of those angles, in [0, 1]: 1 when one space contains the other, 0 when orthogonal or a ΔW is zero. */
  overlap: number;
  /** Entries where both ΔW are nonzero. */
  sharedEntries: number;
  /** Of those, the entries whose signs differ. */
  conflictingEntries: number;
  /** conflictingEntries / sharedEntries; null when there are no shared entries. */
  signConflict: number | null;
}

export interface ModuleDiagnostics {
  /** `model.layers.3.self_attn.q_proj`. */
  path: string;
  /** The layer number in the path; null when it names none (`lm_head`). */
  layer: number | null;
  /** The module type: the path's last part (`q_proj`, `c_attn`). */
  type: string;
  /** ΔW is out × in. */
  out: number;
  in: number;
  /** One per adapter, in the order given. */
  adapters: AdapterModuleDiagnostics[];
  /** One per pair, in the order of AdapterComparison.pairs. */
  pairs: ModulePairDiagnostics[];
}

/** Two adapters over all modules. */
export interface PairSummary {
  first: number;
  second: number;
  /** Cosine of the whole ΔW (all modules concatenated): similarity[first][second]. */
  cosine: number;
  /** Mean overlap over the modules either adapter has (one-sided ones count 0); null if none. */
  meanOverlap: number | null;
  /** Conflicting entries over shared entries, all modules together; null if none are shared. */
  signConflict: number | null;
  /** grid[layer][column of moduleTypes]: the module's cosine; null where neither adapter has it. */
  grid: (number | null)[][];
}

export interface AdapterSummary {
  name: string;
  baseModel: string | null;
  rank: number;
  /** ‖ΔW‖_F of the whole adapter (all modules concatenated). */
  norm: number;
}

export interface AdapterComparison {
  adapters: AdapterSummary[];
  /** The union of the adapters' modules, by layer then module type. */
  modules: ModuleDiagnostics[];
  /** similarity[i][j]: cosine of adapter i's whole ΔW with adapter j's (1 on the diagonal). */
  similarity: number[][];
  /** Every pair i < j: (0, 1), (0, 2), …, (1, 2), … */
  pairs: PairSummary[];
  /** The grids' columns. */
  moduleTypes: string[];
  /** The grids' rows: layers 0 … layers − 1. */
  layers: number;
}

/** f32 machine epsilon. */
const F32_EPSILON = 2 ** -23;
/** Entries of ΔW formed per adapter at a time for the sign pass (4 MiB of f32). */
const CHUNK_ENTRIES = 2 ** 20;

/** One adapter's ΔW = scale·B·A on one module, with its SVD taken from the factors. */
interface FactoredDelta {
  module: AdapterModule;
  /** r × in, f64. */
  a: Mat;
  /** out × r, f64. */
  b: Mat;
  /** Orthonormal basis (out × k) of ΔW's column space, k its numerical rank. */
  basis: Mat;
  singularValues: number[];
}

type Pair = readonly [number, number];

function checkComparable(adapters: readonly PeftAdapter[]): void {
  if (adapters.length === 0) throw new RangeError('compare: no adapters given');
  const bases = [...new Set(adapters.map((a) => a.baseModel).filter((b) => b !== null))];
  if (bases.length > 1)
    throw new RangeError(
      `compare: the adapters are for different base models (${bases.join(', ')})`,
    );
  for (const a of adapters) {
    const refusal = compareRefusal(a.name, a.details.variant);
    if (refusal) throw new RangeError(refusal);
  }
}

function layerOf(path: string): number | null {
  const match = /\.(\d+)\./.exec(path);
  return match ? Number(match[1]) : null;
}

/** Known module types in forward order, then any others by name. */
function orderedTypes(paths: readonly string[]): string[] {
  return [...new Set(paths.map(moduleKind))].sort(moduleOrder);
}

/** Paths by layer (layerless last), then module type, then name. */
function orderedPaths(paths: readonly string[], types: readonly string[]): string[] {
  const layer = (p: string) => layerOf(p) ?? Infinity;
  return [...paths].sort(
    (x, y) =>
      layer(x) - layer(y) ||
      types.indexOf(moduleKind(x)) - types.indexOf(moduleKind(y)) ||
      x.localeCompare(y),
  );
}

function adapterPairs(count: number): Pair[] {
  const pairs: Pair[] = [];
  for (let i = 0; i < count; i++) for (let j = i + 1; j < count; j++) pairs.push([i, j]);
  return pairs;
}

/** ΔW's shape (out × in), the same in every adapter that has the module. */
function moduleShape(path: string, adapters: readonly PeftAdapter[]): { out: number; in: number } {
  const shapes = adapters.flatMap((adapter) => {
    const m = adapter.modules.get(path);
    return m ? [{ out: m.b.length / m.rank, in: m.a.length / m.rank, name: adapter.name }] : [];
  });
  const mismatch = shapes.find((s) => s.out !== shapes[0].out || s.in !== shapes[0].in);
  if (mismatch)
    throw new RangeError(
      `compare: ${path} is ${shapes[0].out}×${shapes[0].in} in ${shapes[0].name} but ${mismatch.out}×${mismatch.in} in ${mismatch.name}`,
    );
  return shapes[0];
}

/** X = Q·R with orthonormal Q (rows × min(rows, cols)): Householder when X is tall, else Q = I. */
function thinQr(x: Mat): { q: Mat; r: Mat } {
  return x.rows >= x.cols ? householderQr(x) : { q: identity(x.rows), r: x };
}

/**
 * How many singular values count: numpy's matrix_rank rule at f32 precision (σ > σ₁·max(m, n)·ε),
 * since the factors come from f32 (or coarser) training: weaker directions are rounding, not
 * signal, and would dilute the overlap.
 */
function numericalRank(sigma: readonly number[], out: number, inputs: number): number {
  const tolerance = (sigma[0] ?? 0) * Math.max(out, inputs) * F32_EPSILON;
  return sigma.filter((s) => s > tolerance).length;
}

/**
 * The SVD of ΔW from its factors, on the host in f64: B = Q_b·R_b and Aᵀ = Q_a·R_a make
 * ΔW = s·Q_b·(R_b·R_aᵀ)·Q_aᵀ, so the r×r core's SVD X·Σ·Yᵀ gives U = Q_b·X and s·Σ. Chosen over
 * lowRankProductSvd on the GPU: the work is O((out + in)·r²), tiny next to the sign pass, f64
 * is more accurate than the GPU's f32 QR, and no round trip per module is needed. Unlike taking
 * col(B) as the column space, it stays right when A or B is rank-deficient.
 */
function factorDelta(module: AdapterModule): FactoredDelta {
  const { rank } = module;
  const a = mat(rank, module.a.length / rank, module.a);
  const b = mat(module.b.length / rank, rank, module.b);
  const qb = thinQr(b);
  const qa = thinQr(transpose(a));
  const core = jacobiSvd(multiply(qb.r, transpose(qa.r)));
  const singularValues = Array.from(core.s, (s) => s * Math.abs(module.scale));
  const k = numericalRank(singularValues, b.rows, a.cols);
  return { module, a, b, basis: multiply(qb.q, columns(core.u, 0, k)), singularValues };
}

/** The fewest leading singular values holding `share` of Σσ². */
function effectiveRank(sigma: readonly number[], share: number): number {
  const total = sigma.reduce((t, s) => t + s * s, 0);
  if (total === 0) return 0;
  let kept = 0;
  for (let k = 0; k < sigma.length; k++) {
    kept += sigma[k] ** 2;
    if (kept >= share * total) return k + 1;
  }
  return sigma.length;
}

function norm(delta: FactoredDelta | null): number {
  return Math.sqrt(delta?.singularValues.reduce((t, s) => t + s * s, 0) ?? 0);
}

function adapterModuleDiagnostics(delta: FactoredDelta | null): AdapterModuleDiagnostics {
  const singularValues = delta?.singularValues ?? [];
  return {
    present: delta !== null,
    norm: norm(delta),
    singularValues,
    effectiveRank90: effectiveRank(singularValues, 0.9),
    effectiveRank99: effectiveRank(singularValues, 0.99),
  };
}

/** ⟨ΔW₁, ΔW₂⟩_F from the factors (low-rank.ts): r₁×r₂ products, never the out × in matrices. */
function innerProduct(x: FactoredDelta, y: FactoredDelta): number {
  const { module: mx } = x;
  const { module: my } = y;
  return mx.scale * my.scale * frobeniusInner(unscaled(mx), unscaled(my));
}

function cosine(x: FactoredDelta | null, y: FactoredDelta | null): number {
  const norms = norm(x) * norm(y);
  if (!x || !y || norms === 0) return 0;
  return Math.min(1, Math.max(-1, innerProduct(x, y) / norms));
}

/** Singular values of U₁ᵀ·U₂: the cosines of the principal angles between the two spaces. */
function principalCosines(x: FactoredDelta | null, y: FactoredDelta | null): number[] {
  if (!x || !y || x.basis.cols === 0 || y.basis.cols === 0) return [];
  const { s } = jacobiSvd(multiply(transpose(x.basis), y.basis));
  return Array.from(s, (c) => Math.min(1, c));
}

interface SignCount {
  shared: number;
  conflicting: number;
}

/** Counts entries nonzero in both x and y, and those of them whose signs differ. */
function tallySigns(x: Float32Array, y: Float32Array, count: SignCount): void {
  let agreeing = 0;
  let conflicting = 0;
  for (let k = 0; k < x.length; k++) {
    // In f64 the product of two nonzero f32 values never underflows to 0.
    const product = x[k] * y[k];
    if (product > 0) agreeing++;
    else if (product < 0) conflicting++;
  }
  count.shared += agreeing + conflicting;
  count.conflicting += conflicting;
}

/**
 * Sign agreement per pair: needs ΔW's entries, so each adapter's ΔW is formed (compute.ts) a
 * block of rows at a time, bounding memory for the largest modules, and compared on the host.
 */
async function signCounts(
  compute: MergeCompute,
  deltas: readonly (FactoredDelta | null)[],
  pairs: readonly Pair[],
  out: number,
  inputs: number,
): Promise<SignCount[]> {
  const counts = pairs.map(() => ({ shared: 0, conflicting: 0 }));
  // One adapter alone (inspection) has no pairs: no dense ΔW is needed at all.
  if (pairs.length === 0) return counts;
  const factors = deltas.map((d) => (d ? weighted(d.module, 1) : null));
  const rowsPerChunk = Math.max(1, Math.floor(CHUNK_ENTRIES / inputs));
  for (let from = 0; from < out; from += rowsPerChunk) {
    const rows = await compute.denseRows(factors, from, Math.min(out, from + rowsPerChunk));
    pairs.forEach(([i, j], p) => {
      const [x, y] = [rows[i], rows[j]];
      if (x && y) tallySigns(x, y, counts[p]);
    });
  }
  return counts;
}

function pairDiagnostics(
  [first, second]: Pair,
  x: FactoredDelta | null,
  y: FactoredDelta | null,
  signs: SignCount,
): ModulePairDiagnostics {
  const cosines = principalCosines(x, y);
  const overlap =
    cosines.length === 0 ? 0 : cosines.reduce((t, c) => t + c * c, 0) / cosines.length;
  return {
    first,
    second,
    cosine: cosine(x, y),
    principalCosines: cosines,
    overlap,
    sharedEntries: signs.shared,
    conflictingEntries: signs.conflicting,
    signConflict: signs.shared > 0 ? signs.conflicting / signs.shared : null,
  };
}

async function moduleDiagnostics(
  compute: MergeCompute,
  path: string,
  adapters: readonly PeftAdapter[],
  pairs: readonly Pair[],
): Promise<ModuleDiagnostics> {
  const shape = moduleShape(path, adapters);
  const deltas = adapters.map((adapter) => {
    const m = adapter.modules.get(path);
    return m ? factorDelta(m) : null;
  });
  const signs = await signCounts(compute, deltas, pairs, shape.out, shape.in);
  return {
    path,
    layer: layerOf(path),
    type: moduleKind(path),
    out: shape.out,
    in: shape.in,
    adapters: deltas.map(adapterModuleDiagnostics),
    pairs: pairs.map((pair, p) =>
      pairDiagnostics(pair, deltas[pair[0]], deltas[pair[1]], signs[p]),
    ),
  };
}

/** ‖ΔW‖_F of adapter i over all modules. */
function wholeNorm(modules: readonly ModuleDiagnostics[], i: number): number {
  return Math.sqrt(modules.reduce((t, m) => t + m.adapters[i].norm ** 2, 0));
}

/** Sums the per-module inner products (cosine·‖ΔW₁‖·‖ΔW₂‖) into the pair's summary. */
function pairSummary(
  modules: readonly ModuleDiagnostics[],
  [first, second]: Pair,
  p: number,
  types: readonly string[],
  layers: number,
): PairSummary {
  const shared = modules.filter((m) => m.adapters[first].present || m.adapters[second].present);
  let inner = 0;
  let sharedEntries = 0;
  let conflicting = 0;
  const grid: (number | null)[][] = Array.from({ length: layers }, () => types.map(() => null));
  for (const m of shared) {
    const pair = m.pairs[p];
    inner += pair.cosine * m.adapters[first].norm * m.adapters[second].norm;
    sharedEntries += pair.sharedEntries;
    conflicting += pair.conflictingEntries;
    if (m.layer !== null) grid[m.layer][types.indexOf(m.type)] = pair.cosine;
  }
  const norms = wholeNorm(modules, first) * wholeNorm(modules, second);
  return {
    first,
    second,
    cosine: norms === 0 ? 0 : Math.min(1, Math.max(-1, inner / norms)),
    meanOverlap:
      shared.length === 0
        ? null
        : shared.reduce((t, m) => t + m.pairs[p].overlap, 0) / shared.length,
    signConflict: sharedEntries > 0 ? conflicting / sharedEntries : null,
    grid,
  };
}

/** Cosine matrix from the pairs: symmetric, 1 on the diagonal (0 for an all-zero adapter). */
function similarityMatrix(norms: readonly number[], pairs: readonly PairSummary[]): number[][] {
  const similarity = norms.map((n, i) => norms.map((_, j): number => (i === j && n > 0 ? 1 : 0)));
  for (const { first, second, cosine: c } of pairs) {
    similarity[first][second] = c;
    similarity[second][first] = c;
  }
  return similarity;
}

/** Compares adapters for one base model module by module; see the types above for each figure. */
export async function compareAdapters(
  compute: MergeCompute,
  adapters: readonly PeftAdapter[],
): Promise<AdapterComparison> {
  checkComparable(adapters);
  const allPaths = [...new Set(adapters.flatMap((a) => [...a.modules.keys()]))];
  const moduleTypes = orderedTypes(allPaths);
  const pairs = adapterPairs(adapters.length);
  const modules: ModuleDiagnostics[] = [];
  for (const path of orderedPaths(allPaths, moduleTypes))
    modules.push(await moduleDiagnostics(compute, path, adapters, pairs));
  const layers = Math.max(-1, ...modules.map((m) => m.layer ?? -1)) + 1;
  const summaries = pairs.map((pair, p) => pairSummary(modules, pair, p, moduleTypes, layers));
  const norms = adapters.map((_, i) => wholeNorm(modules, i));
  return {
    adapters: adapters.map((a, i) => ({
      name: a.name,
      baseModel: a.baseModel,
      rank: a.details.rank,
      norm: norms[i],
    })),
    modules,
    similarity: similarityMatrix(norms, summaries),
    pairs: summaries,
    moduleTypes,
    layers,
  };
}
