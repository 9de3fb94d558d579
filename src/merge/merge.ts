// Merging adapters by a MergeSpec (spec.ts), as its method's entry (methods.ts) says, module by
// module over the union of the adapters' modules (one an adapter lacks counts as zero). Exact
// methods stay in factor space, PEFT's factor-space methods combine A and B separately, entrywise
// methods merge the dense ΔW (entrywise.ts) and come back to factors by SVD; compute.ts says where
// the heavy steps run. Per-layer weights, the layer × module grid and LiNeS scale each module; the
// output rank rule and the quantile clamp come last.
// The result has r = lora_alpha = rank per module and no rsLoRA, so its scaling is 1.
import type { ExportAdapter, ExportModule } from '../adapters/peft.ts';
import type { AdapterModule, PeftAdapter } from '../adapters/peft-read.ts';
import { mergeRefusal } from '../adapters/variants.ts';
import type { MergeCompute } from './compute.ts';
import { moduleKind } from '../model/families.ts';
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
import {
  MERGE_METHODS,
  type EntrywisePlan,
  type MergeMethodDefinition,
  type MethodImplementation,
} from './methods.ts';
import { opcmModules } from './opcm.ts';
import {
  outputScale,
  resolveSpec,
  weightAt,
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
    const refusal = mergeRefusal(a.name, a.details.variant);
    if (refusal) throw new RangeError(refusal);
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
      type: moduleKind(path),
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

/** An entrywise plan with the spec's values: source i's sparsification and the consensus. */
function entrywiseSteps(
  plan: EntrywisePlan,
  spec: ResolvedSpec,
): { sparsify: (i: number) => Sparsify; consensus: Consensus } {
  const { gamma, epsilon } = spec;
  const sparsify = (i: number): Sparsify => {
    // Source i's own density where it has one (mergekit's per-model density).
    const density = spec.adapters[i].density ?? spec.density;
    if (plan.sparsify === 'outliers') return { kind: 'outliers', density, gamma };
    if (plan.sparsify === 'della') return { kind: 'della', density, epsilon };
    return { kind: plan.sparsify, density };
  };
  const consensus: Consensus =
    plan.consensus === 'ties'
      ? {
          elect: spec.majoritySign,
          weighted: spec.tiesDivisor !== 'count',
          divisor: spec.tiesDivisor,
        }
      : PLAIN_SUM;
  return { sparsify, consensus };
}

/** PEFT's non-svd ties / dare / magnitude_prune: the entrywise method on A's and on B's. */
async function factorSpaceModule(
  compute: MergeCompute,
  job: ModuleJob,
  spec: ResolvedSpec,
  plan: EntrywisePlan,
): Promise<LowRank> {
  const rank = equalRank(job);
  const { sparsify, consensus } = entrywiseSteps(plan, spec);
  const sources = job.sources.map((s) => ({
    a: s.module?.a ?? new Float32Array(rank * job.in),
    b: s.module?.b ?? new Float32Array(job.out * rank),
    w: s.module ? factorWeights(s.module, s.weight) : { a: 0, b: 0 },
  }));
  const tasks = (side: 'a' | 'b', salt: number) =>
    sources.map((s, i) => ({
      weight: s.w[side],
      sparsify: sparsify(i),
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

const largestRank = (job: ModuleJob) => Math.max(...present(job).map((s) => s.module.rank));

async function denseModule(
  compute: MergeCompute,
  job: ModuleJob,
  spec: ResolvedSpec,
  plan: EntrywisePlan,
  rule: OutputRank | undefined,
): Promise<ModuleResult> {
  const { sparsify, consensus } = entrywiseSteps(plan, spec);
  const tasks = job.sources.map((s, i) => ({
    weight: s.weight,
    sparsify: sparsify(i),
    seed: taskSeed(spec.seed, job.salt, i),
  }));
  const cap = Math.min(
    job.out,
    job.in,
    present(job).reduce((t, s) => t + s.module.rank, 0),
  );
  return compute.mergeDense({
    out: job.out,
    in: job.in,
    // sᵢ·Bᵢ·Aᵢ: the weights are the tasks' (the consensus needs them apart).
    parts: job.sources.map((s) => (s.module ? weighted(s.module, 1) : null)),
    tasks,
    consensus,
    // No rank to reach: everything the SVD finds.
    rule: rule ?? cap,
    cap,
    seed: taskSeed(spec.seed, job.salt, -1),
  });
}

/**
 * One module's factors merged, before the output scale and rank. The method's default rank is
 * then reached by truncation, unless the combiner `ranksItself` (LoRA-LEGO: its k clusters).
 */
interface Combiner {
  merge: (compute: MergeCompute, job: ModuleJob, spec: ResolvedSpec) => LowRank | Promise<LowRank>;
  ranksItself?: true;
}

/** The combiners a method entry names (methods/method.ts). */
const COMBINERS: Record<Extract<MethodImplementation, { combine: string }>['combine'], Combiner> = {
  sum: { merge: (_, job) => weightedSum(job) },
  linear: { merge: (_, job) => linearModule(job) },
  slerp: { merge: (_, job, spec) => slerpModule(job, spec.t) },
  lora_lego: { merge: (_, job, spec) => legoModule(job, spec), ranksItself: true },
};

/** The rank a result is brought to: the one asked, else the method's default (when it has one). */
function rankRule(
  method: MergeMethodDefinition,
  job: ModuleJob,
  spec: ResolvedSpec,
  ranksItself = false,
): OutputRank | undefined {
  if (spec.rank !== undefined || ranksItself) return spec.rank;
  return method.defaultRank === 'largest' ? largestRank(job) : undefined;
}

/** The grid / LiNeS scale, then the output rank where one applies. */
async function finish(
  compute: MergeCompute,
  job: ModuleJob,
  factors: LowRank,
  spec: ResolvedSpec,
  numLayers: number,
  rule: OutputRank | undefined,
): Promise<ModuleResult> {
  const x = scaled(factors, outputScale(spec, job.layer, job.type, numLayers));
  if (rule === undefined) return exactResult(x);
  const t = await truncate(compute, x, rule);
  return { factors: t.factors, kept: t.kept, total: t.total };
}

/** A named combiner, or PEFT's entrywise merge of A and of B. */
function combinerOf(impl: Exclude<MethodImplementation, { sequence: string }>): Combiner {
  if ('combine' in impl) return COMBINERS[impl.combine];
  return {
    merge: (compute, job, spec) => factorSpaceModule(compute, job, spec, impl.entrywise),
  };
}

async function mergeModules(
  compute: MergeCompute,
  jobs: readonly ModuleJob[],
  spec: ResolvedSpec,
  numLayers: number,
  onProgress?: (done: number, total: number) => void,
): Promise<ModuleResult[]> {
  const method = MERGE_METHODS[spec.method];
  const impl = method.implementation;
  if ('sequence' in impl) {
    const factors = await opcmModules(compute, jobs, spec, onProgress);
    return Promise.all(
      factors.map((f, i) =>
        finish(compute, jobs[i], f, spec, numLayers, rankRule(method, jobs[i], spec)),
      ),
    );
  }
  const results: ModuleResult[] = [];
  for (const job of jobs) {
    if ('entrywise' in impl && method.family === 'dense') {
      // Scaled after merging: mergekit's divisor would cancel a scale on the weights.
      const r = await denseModule(compute, job, spec, impl.entrywise, rankRule(method, job, spec));
      const scale = outputScale(spec, job.layer, job.type, numLayers);
      results.push({ ...r, factors: scaled(r.factors, scale) });
    } else {
      const { merge, ranksItself } = combinerOf(impl);
      const factors = await merge(compute, job, spec);
      const rule = rankRule(method, job, spec, ranksItself);
      results.push(await finish(compute, job, factors, spec, numLayers, rule));
    }
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
  // A module the grid, LiNeS or the weights zeroed is no part of the result: PEFT would load it
  // as a LoRA that adds nothing, and target_modules would name it.
  const kept = jobs.flatMap((job, i) => {
    const { factors } = results[i];
    if (frobeniusInner(factors, factors) === 0) return [];
    const clamped = resolved.clamp === undefined ? factors : clampFactors(factors, resolved.clamp);
    return [{ job, module: toExportModule(job, clamped) }];
  });
  if (kept.length === 0)
    throw new RangeError(
      'merge: every module of the result is zero (the weights, the layer grid or LiNeS zero them all): there is no adapter to write',
    );
  const modules = kept.map((k) => k.module);
  const rank = Math.max(...modules.map((m) => m.rank));
  const total = results.reduce((t, r) => t + r.total, 0);
  const keptEnergy = results.reduce((t, r) => t + r.kept, 0);
  return {
    adapter: {
      modules,
      rank,
      alpha: rank,
      rslora: false,
      targets: [...new Set(kept.map((k) => k.job.type))],
      fanInFanOut: adapters.some((a) => a.details.fanInFanOut),
      dropout: 0,
      initLoraWeights: true,
      baseModel: adapters.find((a) => a.baseModel)?.baseModel ?? '',
      numLayers,
    },
    spec: resolved,
    lostEnergy: total > 0 ? Math.max(0, 1 - keptEnergy / total) : 0,
  };
}
