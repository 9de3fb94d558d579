// LoRA extraction: the difference between a fine-tuned model and its base, per linear module the
// truncated SVD of W_tuned − W_base at a fixed rank or a share of its energy (as
// mergekit-extract-lora and PEFT users do to turn a full fine-tune into an adapter, or to carry a
// fine-tune's update to another version of the base). The two models are read a weight at a
// time (WeightSource), so only one module's pair sits in memory.
import { modulePath, resolveTargets } from '../model/architecture.ts';
import type { ModelConfig } from '../model/config.ts';
import { FormatError } from '../model/errors.ts';
import type { HostTensor, WeightSource } from '../model/weights.ts';
import type { MergeCompute } from '../merge/compute.ts';
import type { LowRank, Truncated } from '../merge/low-rank.ts';
import type { OutputRank } from '../merge/spec.ts';
import type { ExportAdapter, ExportModule, WholeWeight } from './peft.ts';

/** What happens to the embedding and an untied output head, which are not linear modules here. */
export const EMBEDDING_CHOICES = ['skip', 'lora', 'save'] as const;
export type EmbeddingChoice = (typeof EMBEDDING_CHOICES)[number];
export const HEAD_CHOICES = ['skip', 'save'] as const;
export type HeadChoice = (typeof HEAD_CHOICES)[number];

export interface ExtractOptions {
  /** A fixed rank, or the smallest rank keeping a share of ‖ΔW‖² (at most `max`). */
  rule: OutputRank;
  /** Singular values at or below this are dropped (mergekit's sv_epsilon; 0 keeps all). */
  svEpsilon: number;
  /** Modules or keywords (`all-linear`, `attention`) to extract. */
  targets: readonly string[];
  /** skip; lora: PEFT's embedding LoRA of ΔEᵀ; save: the whole tuned table (modules_to_save). */
  embeddings: EmbeddingChoice;
  /** An untied head: skip, or save the whole tuned weight (modules_to_save). */
  head: HeadChoice;
  /** Seeds the truncated SVDs' random starts. */
  seed: number;
  /** The id written as base_model_name_or_path. */
  baseModel: string;
  onProgress?: (done: number, total: number, name: string) => void;
}

/** One extracted module: its rank and how much of ΔW it keeps. */
export interface ExtractedModule {
  path: string;
  rank: number;
  /** ‖ΔW‖_F, and the share of ‖ΔW‖² the rank keeps. */
  norm: number;
  energy: number;
  /** ‖ΔW‖ / ‖W_base‖: how much the fine-tune moved the module. */
  relative: number;
}

/** A weight the fine-tune changed that the adapter does not carry (norms, biases, skipped). */
export interface NotCarried {
  name: string;
  relative: number;
}

export interface Extraction {
  adapter: ExportAdapter;
  modules: ExtractedModule[];
  notCarried: NotCarried[];
  /** The share of the extracted modules' ‖ΔW‖² the adapter keeps, all modules together. */
  energy: number;
}

/** Why two configs are not one architecture, or null. */
export function architectureMismatch(base: ModelConfig, tuned: ModelConfig): string | null {
  const keys = [
    'hiddenSize',
    'intermediateSize',
    'numLayers',
    'numHeads',
    'numKvHeads',
    'headDim',
    'vocabSize',
  ] as const;
  if (base.arch.family !== tuned.arch.family)
    return `the base is a ${base.arch.family} model, the tuned one a ${tuned.arch.family}`;
  const differ = keys.filter((k) => base[k] !== tuned[k]);
  if (differ.length === 0) return null;
  return differ.map((k) => `${k} ${base[k]} vs ${tuned[k]}`).join(', ');
}

/** The file beside the adapter that says, per module, the rank and the energy kept. */
export const EXTRACTION_REPORT = 'extraction.json';

/** extraction.json: the energy kept in all, per module, and the changed weights not carried. */
export function extractionReport(e: Extraction): Uint8Array {
  const report = { energy: e.energy, modules: e.modules, not_carried: e.notCarried };
  return new TextEncoder().encode(JSON.stringify(report, null, 1) + '\n');
}

const squaredSum = (x: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return s;
};

/** tuned − base, and the relative size of the change. */
function difference(base: HostTensor, tuned: HostTensor, name: string) {
  if (base.shape.join() !== tuned.shape.join())
    throw new FormatError(
      name,
      `is ${base.shape.join('×')} in the base, ${tuned.shape.join('×')} tuned`,
    );
  const delta = new Float32Array(base.data.length);
  for (let i = 0; i < delta.length; i++) delta[i] = tuned.data[i] - base.data[i];
  const norm = Math.sqrt(squaredSum(delta));
  const baseNorm = Math.sqrt(squaredSum(base.data));
  return { delta, norm, relative: baseNorm > 0 ? norm / baseNorm : norm > 0 ? Infinity : 0 };
}

/** Drops the triplets whose singular value (the norm of B's column, U orthonormal) is ≤ ε. */
function withoutSmall(t: Truncated, epsilon: number): Truncated {
  const { factors: f } = t;
  const keep: number[] = [];
  for (let j = 0; j < f.rank; j++) {
    let s = 0;
    for (let o = 0; o < f.out; o++) s += f.b[o * f.rank + j] ** 2;
    if (Math.sqrt(s) > epsilon) keep.push(j);
  }
  if (keep.length === f.rank) return t;
  const rank = keep.length;
  const b = new Float32Array(f.out * rank);
  const a = new Float32Array(rank * f.in);
  let kept = 0;
  keep.forEach((j, k) => {
    for (let o = 0; o < f.out; o++) {
      b[o * rank + k] = f.b[o * f.rank + j];
      kept += f.b[o * f.rank + j] ** 2;
    }
    a.set(f.a.subarray(j * f.in, (j + 1) * f.in), k * f.in);
  });
  const factors: LowRank = { out: f.out, in: f.in, rank, b, a };
  return { factors, kept, total: t.total };
}

/** The rows × cols matrix transposed. */
function transposed(x: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(x.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j];
  return t;
}

export async function extractLora(
  base: WeightSource,
  tuned: WeightSource,
  compute: MergeCompute,
  options: ExtractOptions,
): Promise<Extraction> {
  const config = base.config;
  const mismatch = architectureMismatch(config, tuned.config);
  if (mismatch) throw new FormatError('--tuned', `is not the base's architecture: ${mismatch}`);
  const { arch } = config;
  const targets = new Set(resolveTargets(arch, options.targets));
  const linear = new Map<string, { path: string; layer: number; module: string }>();
  for (let l = 0; l < config.numLayers; l++)
    for (const m of arch.modules)
      if (targets.has(m.name)) {
        const path = modulePath(arch, l, m);
        linear.set(`${path}.weight`, { path, layer: l, module: m.name });
      }
  const embedding = `${arch.embedding}.weight`;
  const head = arch.head === arch.embedding ? null : `${arch.head}.weight`;

  const modules: ExportModule[] = [];
  const extracted: ExtractedModule[] = [];
  const whole: WholeWeight[] = [];
  const notCarried: NotCarried[] = [];
  let kept = 0;
  let total = 0;
  const names = base.names;
  for (const [index, name] of names.entries()) {
    options.onProgress?.(index, names.length, name);
    const b = await base.read(name);
    const t = await tuned.read(name);
    const { delta, norm, relative } = difference(b, t, name);
    if (norm === 0) continue;
    const target = linear.get(name);
    const isEmbedding = name === embedding && options.embeddings === 'lora';
    if (target || isEmbedding) {
      // PEFT's embedding LoRA holds ΔEᵀ (dim × vocab) as B·A.
      const [rows, cols] = b.shape;
      const matrix = isEmbedding ? transposed(delta, rows, cols) : delta;
      const shape = isEmbedding ? { out: cols, in: rows } : { out: rows, in: cols };
      const cap = Math.min(shape.out, shape.in);
      const truncated = withoutSmall(
        await compute.truncateDense(matrix, shape, options.rule, cap, options.seed + index),
        options.svEpsilon,
      );
      const { factors } = truncated;
      const path = target?.path ?? arch.embedding;
      kept += truncated.kept;
      total += truncated.total;
      extracted.push({
        path,
        rank: factors.rank,
        norm,
        energy: truncated.total > 0 ? truncated.kept / truncated.total : 1,
        relative,
      });
      if (factors.rank === 0) continue;
      modules.push({
        path,
        layer: target?.layer ?? 0,
        rank: factors.rank,
        // alpha = r: PEFT's scale is 1 and B·A is ΔW itself.
        alpha: factors.rank,
        in: factors.in,
        out: factors.out,
        a: factors.a,
        b: factors.b,
        ...(isEmbedding && { embedding: true as const }),
      });
      continue;
    }
    const saved =
      (name === embedding && options.embeddings === 'save') ||
      (name === head && options.head === 'save');
    if (saved) whole.push({ name, shape: t.shape, data: t.data });
    else notCarried.push({ name, relative });
  }
  options.onProgress?.(names.length, names.length, '');
  if (modules.length === 0 && whole.length === 0)
    throw new FormatError('--tuned', 'differs from the base in no module the adapter can carry');
  const rank = Math.max(0, ...modules.map((m) => m.rank));
  return {
    adapter: {
      modules,
      rank,
      alpha: rank,
      rslora: false,
      // PEFT matches target names against the ends of module paths.
      targets: [
        ...new Set(
          modules.map((m) =>
            m.embedding ? arch.embedding.split('.').pop()! : linear.get(`${m.path}.weight`)!.module,
          ),
        ),
      ],
      fanInFanOut: arch.modules.some((m) => m.conv1d),
      dropout: 0,
      initLoraWeights: true,
      baseModel: options.baseModel,
      numLayers: config.numLayers,
      wholeWeights: whole,
    },
    modules: extracted,
    notCarried,
    energy: total > 0 ? kept / total : 1,
  };
}
