// Merging adapters by a MergeSpec (spec.ts), module by module over the union of the adapters'
// modules (one an adapter lacks counts as zero). Exact methods stay in factor space, PEFT's
// factor-space methods combine A and B separately, entrywise methods merge the dense ΔW
// (entrywise.ts) and come back to factors by SVD; compute.ts says where the heavy steps run. Per-layer weights, the layer × module grid
// and LiNeS scale each module; the output rank rule and the quantile clamp come last.
// The result has r = lora_alpha = rank per module and no rsLoRA, so its scaling is 1.
import type { ExportAdapter, ExportModule } from '../adapters/peft.ts';
import type { AdapterModule, PeftAdapter } from '../adapters/peft-read.ts';
import type { MergeCompute } from './compute.ts';
import { PLAIN_SUM, taskSeed, type Consensus, type Sparsify } from './entrywise.ts';
import { legoModule } from './lego.ts';
import {
  clampFactors,
  frobeniusInner,
  scaled,
  stack,
  truncate,
  weighted,
  type LowRank,
} from './low-rank.ts';
import { opcmModules } from './opcm.ts';
import {
  MERGE_METHODS,
  outputScale,
  resolveSpec,
  weightAt,
  type MergeMethod,
  type MergeSpec,
  type OutputRank,
  type ResolvedSpec,
} from './spec.ts';

/** One module path with, per source adapter, its factors (or null) and weight at this layer. */
export interface ModuleJob {
  path: string;
  layer: number;
  type: string;
  out: number;
  in: number;
  /** Seed salt: a hash of the path, so a module's draws do not depend on the others. */
  salt: number;
  /** PEFT's embedding LoRA: the result is written as lora_embedding_A/B. */
  embedding: boolean;
  sources: { module: AdapterModule | null; weight: number; name: string }[];
}

export interface MergeOutcome {
  adapter: ExportAdapter;
  spec: ResolvedSpec;
  /** Share of ‖ΔW‖²_F (all modules together) the output rank dropped; 0 when exact. */
  lostEnergy: number;
}

export interface MergeOptions {
  /** Layers of the base model (gradient weights and LiNeS spread over them); else inferred. */
  numLayers?: number;
  onProgress?: (done: number, total: number) => void;
}

function pathHash(path: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < path.length; i++) h = Math.imul(h ^ path.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Refuses what a merge cannot represent honestly, by name. */
function checkMergeable(adapters: readonly PeftAdapter[]): void {
  const bases = [...new Set(adapters.map((a) => a.baseModel).filter((b) => b !== null))];
  if (bases.length > 1)
    throw new RangeError(`merge: the adapters are for different base models (${bases.join(', ')})`);
  for (const a of adapters) {
    if (a.nonFinite.length > 0)
      throw new RangeError(`merge: ${a.name} holds NaN or Inf (${a.nonFinite[0].tensor})`);
    if (a.details.dora)
      throw new RangeError(
        `merge: ${a.name} is a DoRA adapter, whose ΔW is not a low-rank product; merging DoRA is not supported yet`,
      );
    if (a.fullWeights.size > 0)
      throw new RangeError(
        `merge: ${a.name} replaces whole weights (modules_to_save), which merges do not combine yet`,
      );
  }
}

export function moduleJobs(
  adapters: readonly PeftAdapter[],
  spec: MergeSpec,
  numLayers: number,
): ModuleJob[] {
  const paths = [...new Set(adapters.flatMap((a) => [...a.modules.keys()]))];
  const jobs = paths.map((path) => {
    const layer = Number(/\.(\d+)\./.exec(path)?.[1] ?? 0);
    const sources = adapters.map((a, i) => ({
      module: a.modules.get(path) ?? null,
      weight: weightAt(spec.adapters[i].weight, layer, numLayers),
      name: a.name,
    }));
    const first = sources.find((s) => s.module !== null)!.module!;
    const out = first.b.length / first.rank;
    const width = first.a.length / first.rank;
    for (const s of sources)
      if (
        s.module &&
        (s.module.b.length / s.module.rank !== out || s.module.a.length / s.module.rank !== width)
      )
        throw new RangeError(
          `merge: ${path} has different shapes in ${sources[0].name} and ${s.name}`,
        );
    return {
      path,
      layer,
      embedding: first.embedding === true,
      type: path.slice(path.lastIndexOf('.') + 1),
      out,
      in: width,
      salt: pathHash(path),
      sources,
    };
  });
  return jobs.sort((a, b) => a.layer - b.layer || a.path.localeCompare(b.path));
}

const present = (job: ModuleJob) =>
  job.sources.filter(
    (s): s is { module: AdapterModule; weight: number; name: string } => s.module !== null,
  );

/** Σ wᵢ·sᵢ·Bᵢ·Aᵢ, exact. */
function weightedSum(job: ModuleJob): LowRank {
  return stack(present(job).map((s) => weighted(s.module, s.weight)));
}

/**
 * Mergekit's SLERP on the two ΔW (flattened): the angle from their normalised inner product,
 * then sin((1−t)θ)/sin θ and sin(tθ)/sin θ on the originals; nearly parallel ones interpolate
 * linearly. Both are low-rank, so the result is an exact two-term sum.
 */
function slerpModule(job: ModuleJob, t: number): LowRank {
  const [x, y] = job.sources.map((s) => (s.module ? weighted(s.module, s.weight) : null));
  if (!x || !y) return x ? scaled(x, 1 - t) : scaled(y!, t);
  const cos = frobeniusInner(x, y) / Math.sqrt(frobeniusInner(x, x) * frobeniusInner(y, y));
  if (!(Math.abs(cos) < 0.9995)) return stack([scaled(x, 1 - t), scaled(y, t)]);
  const theta = Math.acos(cos);
  const s = Math.sin(theta);
  return stack([scaled(x, Math.sin((1 - t) * theta) / s), scaled(y, Math.sin(t * theta) / s)]);
}

/** PEFT's factor-space weights: A gets sign(ws)·√|ws|, B gets √|ws|. */
function factorWeights(m: AdapterModule, w: number): { a: number; b: number } {
  const ws = w * m.scale;
  return { a: Math.sign(ws) * Math.sqrt(Math.abs(ws)), b: Math.sqrt(Math.abs(ws)) };
}

function equalRank(job: ModuleJob): number {
  const ranks = [...new Set(present(job).map((s) => s.module.rank))];
  if (ranks.length > 1)
    throw new RangeError(
      `merge: PEFT's factor-space methods need equal ranks; ${job.path} has ranks ${ranks.join(', ')} (use a *_svd method)`,
    );
  return ranks[0];
}

/** Sparsification and consensus of an entrywise method, per PEFT / mergekit. */
function entrywisePlan(
  method: MergeMethod,
  spec: ResolvedSpec,
): { sparsify: Sparsify; consensus: Consensus } {
  const { density, gamma, epsilon } = spec;
  const ties: Consensus = {
    elect: spec.majoritySign,
    weighted: spec.tiesDivisor !== 'count',
    divisor: spec.tiesDivisor,
  };
  switch (method) {
    case 'ties':
    case 'ties_svd':
      return { sparsify: { kind: 'magnitude', density }, consensus: ties };
    case 'dare_linear':
    case 'dare_linear_svd':
      return { sparsify: { kind: 'random', density }, consensus: PLAIN_SUM };
    case 'dare_ties':
    case 'dare_ties_svd':
      return { sparsify: { kind: 'random', density }, consensus: ties };
    case 'magnitude_prune':
    case 'magnitude_prune_svd':
      return { sparsify: { kind: 'magnitude', density }, consensus: PLAIN_SUM };
    case 'breadcrumbs_svd':
      return { sparsify: { kind: 'outliers', density, gamma }, consensus: PLAIN_SUM };
    case 'della_svd':
      return { sparsify: { kind: 'della', density, epsilon }, consensus: ties };
    default:
      throw new Error(`${method} is not an entrywise method`);
  }
}

/** Source i's sparsification: the method's, at its own density where it has one. */
function sparsifyFor(spec: ResolvedSpec, i: number): Sparsify {
  const density = spec.adapters[i].density ?? spec.density;
  return entrywisePlan(spec.method, { ...spec, density }).sparsify;
}

/** PEFT's non-svd ties / dare / magnitude_prune: the entrywise method on A's and on B's. */
async function factorSpaceModule(
  compute: MergeCompute,
  job: ModuleJob,
  spec: ResolvedSpec,
): Promise<LowRank> {
  const rank = equalRank(job);
  const { consensus } = entrywisePlan(spec.method, spec);
  const sources = job.sources.map((s) => ({
    a: s.module?.a ?? new Float32Array(rank * job.in),
    b: s.module?.b ?? new Float32Array(job.out * rank),
    w: s.module ? factorWeights(s.module, s.weight) : { a: 0, b: 0 },
  }));
  const tasks = (side: 'a' | 'b', salt: number) =>
    sources.map((s, i) => ({
      weight: s.w[side],
      sparsify: sparsifyFor(spec, i),
      seed: taskSeed(spec.seed, salt, i),
    }));
  const a = await compute.mergeArrays(
    sources.map((s) => s.a),
    tasks('a', job.salt),
    consensus,
    job.in,
  );
  const b = await compute.mergeArrays(
    sources.map((s) => s.b),
    tasks('b', job.salt ^ 0x5bd1e995),
    consensus,
    rank,
  );
  return { out: job.out, in: job.in, rank, a, b };
}

interface ModuleResult {
  factors: LowRank;
  kept: number;
  total: number;
}

const exactResult = (factors: LowRank): ModuleResult => ({ factors, kept: 0, total: 0 });

/** Where an exact method's result is truncated: `svd` always, others when a rank is asked. */
function exactRankRule(spec: ResolvedSpec, job: ModuleJob): OutputRank | undefined {
  if (spec.method === 'svd')
    return spec.rank ?? Math.max(...present(job).map((s) => s.module.rank));
  return spec.rank;
}

async function denseModule(
  compute: MergeCompute,
  job: ModuleJob,
  spec: ResolvedSpec,
): Promise<ModuleResult> {
  const { consensus } = entrywisePlan(spec.method, spec);
  const tasks = job.sources.map((s, i) => ({
    weight: s.weight,
    sparsify: sparsifyFor(spec, i),
    seed: taskSeed(spec.seed, job.salt, i),
  }));
  const ranks = present(job).map((s) => s.module.rank);
  return compute.mergeDense({
    out: job.out,
    in: job.in,
    // sᵢ·Bᵢ·Aᵢ: the weights are the tasks' (the consensus needs them apart).
    parts: job.sources.map((s) => (s.module ? weighted(s.module, 1) : null)),
    tasks,
    consensus,
    rule: spec.rank ?? Math.max(...ranks),
    cap: Math.min(
      job.out,
      job.in,
      ranks.reduce((a, b) => a + b, 0),
    ),
    seed: taskSeed(spec.seed, job.salt, -1),
  });
}

/** The merged factors of one module, before the output scale and rank. */
async function exactFactors(
  compute: MergeCompute,
  job: ModuleJob,
  spec: ResolvedSpec,
): Promise<LowRank> {
  if (spec.method === 'linear') return linearModule(job);
  if (MERGE_METHODS[spec.method].family === 'factor') return factorSpaceModule(compute, job, spec);
  if (spec.method === 'slerp') return slerpModule(job, spec.t);
  if (spec.method === 'lora_lego') return legoModule(job, spec);
  return weightedSum(job);
}

/** The grid / LiNeS scale, then the output rank where one applies. */
async function finish(
  compute: MergeCompute,
  job: ModuleJob,
  factors: LowRank,
  spec: ResolvedSpec,
  numLayers: number,
): Promise<ModuleResult> {
  const x = scaled(factors, outputScale(spec, job.layer, job.type, numLayers));
  const rule = exactRankRule(spec, job);
  if (rule === undefined) return exactResult(x);
  const t = await truncate(compute, x, rule);
  return { factors: t.factors, kept: t.kept, total: t.total };
}

async function mergeModules(
  compute: MergeCompute,
  jobs: readonly ModuleJob[],
  spec: ResolvedSpec,
  numLayers: number,
  onProgress?: (done: number, total: number) => void,
): Promise<ModuleResult[]> {
  if (spec.method === 'opcm') {
    const factors = await opcmModules(compute, jobs, spec, onProgress);
    return Promise.all(factors.map((f, i) => finish(compute, jobs[i], f, spec, numLayers)));
  }
  const results: ModuleResult[] = [];
  for (const job of jobs) {
    if (MERGE_METHODS[spec.method].family === 'dense') {
      // Scaled after merging: mergekit's divisor would cancel a scale on the weights.
      const r = await denseModule(compute, job, spec);
      const scale = outputScale(spec, job.layer, job.type, numLayers);
      results.push({ ...r, factors: scaled(r.factors, scale) });
    } else
      results.push(
        await finish(compute, job, await exactFactors(compute, job, spec), spec, numLayers),
      );
    onProgress?.(results.length, jobs.length);
  }
  return results;
}

/** PEFT's `linear`: Σ (factor weights) on A and on B separately: cross terms Bᵢ·Aⱼ included. */
function linearModule(job: ModuleJob): LowRank {
  const rank = equalRank(job);
  const a = new Float32Array(rank * job.in);
  const b = new Float32Array(job.out * rank);
  for (const { module: m, weight } of present(job)) {
    const w = factorWeights(m, weight);
    m.a.forEach((v, i) => (a[i] += w.a * v));
    m.b.forEach((v, i) => (b[i] += w.b * v));
  }
  return { out: job.out, in: job.in, rank, a, b };
}

function toExportModule(job: ModuleJob, f: LowRank): ExportModule {
  return {
    path: job.path,
    layer: job.layer,
    rank: f.rank,
    alpha: f.rank,
    in: f.in,
    out: f.out,
    a: f.a,
    b: f.b,
    ...(job.embedding ? { embedding: true as const } : {}),
  };
}

/** Merges `adapters` (in the order of spec.adapters) as the spec says. */
export async function mergeAdapters(
  compute: MergeCompute,
  adapters: readonly PeftAdapter[],
  spec: MergeSpec,
  options: MergeOptions = {},
): Promise<MergeOutcome> {
  const resolved = resolveSpec(spec);
  if (adapters.length !== resolved.adapters.length)
    throw new RangeError(
      `merge: the spec names ${resolved.adapters.length} adapters, ${adapters.length} given`,
    );
  checkMergeable(adapters);
  const maxLayer = Math.max(
    ...adapters.flatMap((a) =>
      [...a.modules.keys()].map((p) => Number(/\.(\d+)\./.exec(p)?.[1] ?? 0)),
    ),
  );
  const numLayers = options.numLayers ?? maxLayer + 1;
  const jobs = moduleJobs(adapters, resolved, numLayers);
  const results = await mergeModules(compute, jobs, resolved, numLayers, options.onProgress);
  const modules = results.map((r, i) =>
    toExportModule(
      jobs[i],
      resolved.clamp === undefined ? r.factors : clampFactors(r.factors, resolved.clamp),
    ),
  );
  const rank = Math.max(...modules.map((m) => m.rank));
  const total = results.reduce((t, r) => t + r.total, 0);
  const kept = results.reduce((t, r) => t + r.kept, 0);
  return {
    adapter: {
      modules,
      rank,
      alpha: rank,
      rslora: false,
      targets: [...new Set(jobs.map((j) => j.type))],
      dropout: 0,
      initLoraWeights: true,
      baseModel: adapters.find((a) => a.baseModel)?.baseModel ?? '',
      numLayers,
    },
    spec: resolved,
    lostEnergy: total > 0 ? Math.max(0, 1 - kept / total) : 0,
  };
}
