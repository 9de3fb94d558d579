// Evidence for a merge, on held-out text in each source adapter's style: the loss (and
// perplexity) of the base model, of every source adapter alone, and of the merged adapter, and
// the share of each source's improvement over the base that the merge keeps; and a sweep of the
// weight given to the sources together, to choose it by measurement rather than by guess.
// Losses come from an Evaluator: on the GPU, adapters applied at run time (W x + Σ wᵢ·sᵢ·Bᵢ·Aᵢ·x)
// on views of the model's base that it builds and drops; on the CPU, composed into a copy of the
// weights. Either way the model itself, with whatever adapters the user applied to it, is never
// changed, so there is nothing to restore and a generation in progress is unaffected.
import { composeWeights, type Composition } from '../adapters/compose.ts';
import { peftFiles, type ExportAdapter } from '../adapters/peft.ts';
import { adapterTerms, readPeftAdapter, type PeftAdapter } from '../adapters/peft-read.ts';
import type { Gpu } from '../gpu/device.ts';
import { releaseTensor, type Tensor } from '../gpu/tensor.ts';
import type { ModelConfig } from '../model/config.ts';
import { cpuRunner } from '../model/cpu/runner.ts';
import type { TextTokenizer } from '../model/tokenizer.ts';
import type { AdapterTerm, Transformer } from '../model/transformer.ts';
import type { ModelWeights } from '../model/weights.ts';
import { prepareDataset, type Sequence } from '../train/data.ts';
import { batchedScorer, meanLoss, runnerScorer } from '../train/evaluate.ts';

/** A source adapter of the merge, with held-out text in its style. */
export interface ReportSource {
  /** Unique among the sources: rows and sweeps name adapters and texts by it. */
  name: string;
  adapter: PeftAdapter;
  /** The held-out text as sequences (see evalSequences), scored by train/evaluate.ts. */
  evalTokens: readonly Sequence[];
}

export interface EvalOptions {
  /** At most this many sequences of each eval text (default all): a quicker, rougher report. */
  maxSequences?: number;
  /** After every eval text evaluated: (done, total). */
  onProgress?: (done: number, total: number) => void;
}

/** Mean next-token cross-entropy in nats per predicted token, and its exponential. */
export interface LossCell {
  loss: number;
  perplexity: number;
}

/** Everything measured on one source's eval text. */
export interface ReportRow {
  /** Whose eval text. */
  source: string;
  /** Predicted tokens the losses average over. */
  tokens: number;
  base: LossCell;
  /** Each source adapter alone at weight 1, by name: this row's own and the others'. */
  adapters: Record<string, LossCell>;
  merged: LossCell;
  /**
   * (loss_base − loss_merged) / (loss_base − loss_own): 1 keeps all of the source's improvement,
   * 0 none, below 0 is worse than the base. null when the source does not improve on the base.
   */
  kept: number | null;
}

export interface MergeReport {
  merged: string;
  rows: ReportRow[];
}

/** One weight of the sweep: the losses on each source's eval text, by source name. */
export interface SweepPoint {
  weight: number;
  losses: Record<string, LossCell>;
}

/**
 * Eval text (plain text with documents split at blank lines, or JSONL as training reads it)
 * packed into windows of `seqLen` tokens, every one of them kept for evaluation.
 */
export function evalSequences(
  tokenizer: TextTokenizer,
  text: string,
  fileName: string,
  seqLen: number,
): Sequence[] {
  return prepareDataset(text, fileName, tokenizer, { seqLen, validationFraction: 0, seed: 0 })
    .train;
}

/** A merge result as the PEFT adapter its files describe: what a user who downloads it loads. */
export function peftAdapterOf(merged: ExportAdapter, name: string): PeftAdapter {
  return readPeftAdapter(peftFiles(merged), name);
}

function checkSources(sources: readonly ReportSource[], options: EvalOptions): void {
  if (sources.length === 0) throw new RangeError('merge report: no source adapters given');
  const names = new Set(sources.map((s) => s.name));
  if (names.size !== sources.length)
    throw new RangeError('merge report: the source adapters need distinct names');
  const empty = sources.find((s) => s.evalTokens.length === 0);
  if (empty) throw new RangeError(`merge report: ${empty.name} has no eval text`);
  if ((options.maxSequences ?? 1) < 1)
    throw new RangeError('merge report: at least one sequence of each eval text is needed');
}

/** Counts the evaluations done and passes them on. */
function progress(total: number, onProgress: EvalOptions['onProgress']): () => void {
  let done = 0;
  onProgress?.(done, total);
  return () => onProgress?.(++done, total);
}

/**
 * The mean loss per target token of each set of sequences under a composition (the base model
 * with adapters at weights), in order; null for a set with nothing to score. `onEach` hears
 * every set done.
 */
export type Evaluator = (
  composition: Composition,
  sets: readonly (readonly Sequence[])[],
  onEach?: () => void,
) => Promise<(number | null)[]>;

/** The base with these terms and overrides applied, leaving the model's own adapters alone. */
function composedView(
  base: Transformer,
  terms: ReadonlyMap<string, readonly AdapterTerm[]>,
  overrides: ReadonlyMap<string, Tensor>,
): Transformer {
  return {
    config: base.config,
    ropeTables: base.ropeTables,
    weight: (name) => overrides.get(name) ?? base.weight(name),
    adapterTerms: (path) => terms.get(path) ?? [],
  };
}

/** On the GPU: run-time terms on a view of the base, sequences in micro-batches of `batchSize`. */
export function gpuEvaluator(gpu: Gpu, base: Transformer, batchSize = 4): Evaluator {
  return async (composition, sets, onEach) => {
    const { terms, overrides, tensors } = await adapterTerms(gpu, base, composition);
    try {
      const view = composedView(base, terms, overrides);
      const losses: (number | null)[] = [];
      for (const set of sets) {
        losses.push((await meanLoss(batchedScorer(gpu, view, batchSize), set))?.loss ?? null);
        onEach?.();
      }
      return losses;
    } finally {
      releaseTensor(gpu, ...tensors);
    }
  };
}

/** On the CPU (no WebGPU): the composition composed into a copy of the weights, the reference forward. */
export function cpuEvaluator(config: ModelConfig, weights: ModelWeights): Evaluator {
  return async (composition, sets, onEach) => {
    const composed = composeWeights(config, weights, composition);
    const runner = cpuRunner(composed.config, composed.weights);
    const losses: (number | null)[] = [];
    for (const set of sets) {
      losses.push((await meanLoss(runnerScorer(runner), set))?.loss ?? null);
      onEach?.();
    }
    return losses;
  };
}

function lossCell(loss: number): LossCell {
  return { loss, perplexity: Math.exp(loss) };
}

/** The loss under `composition` on each source's eval text, in source order. */
async function lossesUnder(
  evaluate: Evaluator,
  composition: Composition,
  sources: readonly ReportSource[],
  options: EvalOptions,
  tick: () => void,
): Promise<LossCell[]> {
  const sets = sources.map((s) => s.evalTokens.slice(0, options.maxSequences ?? Infinity));
  // checkSources made sure every eval text has a sequence to read, so there is a loss.
  return (await evaluate(composition, sets, tick)).map((loss) => lossCell(loss ?? NaN));
}

function predictedTokens(source: ReportSource, options: EvalOptions): number {
  return source.evalTokens
    .slice(0, options.maxSequences ?? Infinity)
    .reduce((n, s) => n + s.target.reduce((m, t) => m + (t >= 0 ? 1 : 0), 0), 0);
}

/** The share of the improvement kept, or null where there was none to keep. */
function keptShare(base: number, own: number, merged: number): number | null {
  return base > own ? (base - merged) / (base - own) : null;
}

/**
 * Losses of the base, of each source alone (weight 1) and of `merged` (weight 1) on each source's
 * eval text: (sources + 2) × sources evaluations.
 */
export async function mergeReport(
  evaluate: Evaluator,
  sources: readonly ReportSource[],
  merged: PeftAdapter,
  options: EvalOptions = {},
): Promise<MergeReport> {
  checkSources(sources, options);
  const tick = progress((sources.length + 2) * sources.length, options.onProgress);
  const measure = (composition: Composition) =>
    lossesUnder(evaluate, composition, sources, options, tick);
  const base = await measure([]);
  const alone: LossCell[][] = [];
  for (const { adapter } of sources) alone.push(await measure([{ adapter, weight: 1 }]));
  const withMerge = await measure([{ adapter: merged, weight: 1 }]);
  const rows = sources.map((source, i): ReportRow => {
    const adapters = Object.fromEntries(sources.map((s, j) => [s.name, alone[j][i]]));
    return {
      source: source.name,
      tokens: predictedTokens(source, options),
      base: base[i],
      adapters,
      merged: withMerge[i],
      kept: keptShare(base[i].loss, alone[i][i].loss, withMerge[i].loss),
    };
  });
  return { merged: merged.name, rows };
}

/**
 * Losses on each source's eval text of the run-time composition Σ w·ΔWᵢ, every source at the same
 * weight w, for each w in `weights`. That one number is the free parameter of task arithmetic
 * (the sum of the task vectors scaled by λ): 0 gives the base, 1 the plain sum (what `cat` merges
 * at weights 1, 1, …), and the curve shows whether interference calls for less or room for more.
 * The trade-off between sources shows in mergeReport's rows. weights × sources evaluations.
 */
export async function weightSweep(
  evaluate: Evaluator,
  sources: readonly ReportSource[],
  weights: readonly number[],
  options: EvalOptions = {},
): Promise<SweepPoint[]> {
  checkSources(sources, options);
  const odd = weights.find((w) => !Number.isFinite(w));
  if (odd !== undefined) throw new RangeError(`weight sweep: ${odd} is not a weight`);
  const tick = progress(weights.length * sources.length, options.onProgress);
  const points: SweepPoint[] = [];
  for (const weight of weights) {
    const composition = sources.map(({ adapter }) => ({ adapter, weight }));
    const cells = await lossesUnder(evaluate, composition, sources, options, tick);
    points.push({ weight, losses: Object.fromEntries(sources.map((s, i) => [s.name, cells[i]])) });
  }
  return points;
}
