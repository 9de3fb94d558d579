// The merge part of the Studio API: bake a merge spec into a new library adapter (with its
// recipe and model card), compare adapters, and measure merges on eval texts (the merge report
// and the weight sweep) with the loaded model.
import { describeEntry, type AdapterLibrary, type LibraryEntry } from '../adapters/library.ts';
import { readPeftAdapter, type PeftAdapter } from '../adapters/peft-read.ts';
import type { MergeCompute } from '../merge/compute.ts';
import { compareAdapters } from '../analysis/diagnostics.ts';
import { mergeAdapters } from '../merge/merge.ts';
import { mergedFiles } from '../merge/recipe.ts';
import {
  cpuEvaluator,
  evalSequences,
  gpuEvaluator,
  mergeReport,
  weightSweep,
  type Evaluator,
  type ReportSource,
} from '../merge/report.ts';
import { newId } from './adapters.ts';
import type { EvalText, StudioApi } from './api.ts';
import type { LoadedModel } from './loaded.ts';
import type { Sequence } from '../train/data.ts';

export interface MergingDeps {
  /** Where merges and comparisons run: the GPU, or the CPU references without WebGPU. */
  compute(): MergeCompute;
  loaded(): LoadedModel | undefined;
  library: AdapterLibrary;
  parsedAdapter(id: string): Promise<PeftAdapter>;
}

type MergingApi = Pick<
  StudioApi,
  'merge' | 'compare' | 'mergeReport' | 'weightSweep' | 'cancelMergeJob'
>;

/** Eval windows: the model's context, at most 128 tokens (a report stays quick). */
const EVAL_WINDOW = 128;
/** Windows per eval text: enough for a stable mean, few enough to sweep interactively. */
export const EVAL_SEQUENCES = 16;

/** Losses under compositions of the loaded model's base, where the model runs. */
export function modelEvaluator({ model }: LoadedModel): Evaluator {
  return model.where === 'gpu'
    ? gpuEvaluator(model.gpu, model.model.base)
    : cpuEvaluator(model.config, model.weights);
}

/** An eval text as the windows reports score (none when it is too short). */
export function evalWindows({ model, tokenizer }: LoadedModel, text: string): Sequence[] {
  const seqLen = Math.min(EVAL_WINDOW, model.config.maxPositions);
  return evalSequences(tokenizer, text, 'eval.txt', seqLen);
}

export function createMergingApi(deps: MergingDeps): MergingApi {
  // A cancel request is seen at the job's next progress point (a module merged, a text
  // evaluated): the work in between finishes and releases its GPU memory as usual.
  let cancelRequested = false;
  function progress(onProgress?: (done: number, total: number) => void) {
    cancelRequested = false;
    return (done: number, total: number) => {
      if (cancelRequested) throw new Error('Cancelled.');
      onProgress?.(done, total);
    };
  }

  function requireModel() {
    const loaded = deps.loaded();
    if (!loaded) throw new Error('Load a model first: the report measures losses with it.');
    return loaded;
  }

  const evaluator = () => modelEvaluator(requireModel());

  async function sources(texts: readonly EvalText[]): Promise<ReportSource[]> {
    const loaded = requireModel();
    return Promise.all(
      texts.map(async ({ id, text }) => {
        const adapter = await deps.parsedAdapter(id);
        if (text.trim() === '') throw new Error(`The eval text for ${adapter.name} is empty.`);
        const evalTokens = evalWindows(loaded, text);
        if (evalTokens.length === 0)
          throw new Error(`The eval text for ${adapter.name} is too short to measure.`);
        return { name: adapter.name, adapter, evalTokens };
      }),
    );
  }

  return {
    async merge(spec, name, onProgress) {
      const adapters = await Promise.all(spec.adapters.map((a) => deps.parsedAdapter(a.id)));
      const loaded = deps.loaded();
      const outcome = await mergeAdapters(deps.compute(), adapters, spec, {
        numLayers: loaded?.model.config.numLayers,
        onProgress: progress(onProgress),
      });
      const files = mergedFiles(outcome, adapters, name);
      const entry: LibraryEntry = {
        id: newId('merged'),
        name,
        baseModel: outcome.adapter.baseModel || 'unknown',
        createdAt: Date.now(),
        origin: `merged: ${outcome.spec.method} of ${adapters.map((a) => a.name).join(', ')}`,
        files: Object.fromEntries(files),
        details: readPeftAdapter(files, name).details,
      };
      await deps.library.add(entry);
      return { item: describeEntry(entry), lostEnergy: outcome.lostEnergy };
    },
    async compare(ids) {
      const adapters = await Promise.all(ids.map((id) => deps.parsedAdapter(id)));
      return compareAdapters(deps.compute(), adapters);
    },
    async mergeReport(mergedId, texts, onProgress) {
      const merged = await deps.parsedAdapter(mergedId);
      return mergeReport(evaluator(), await sources(texts), merged, {
        maxSequences: EVAL_SEQUENCES,
        onProgress: progress(onProgress),
      });
    },
    async weightSweep(texts, weights, onProgress) {
      return weightSweep(evaluator(), await sources(texts), weights, {
        maxSequences: EVAL_SEQUENCES,
        onProgress: progress(onProgress),
      });
    },
    cancelMergeJob() {
      cancelRequested = true;
      return Promise.resolve();
    },
  };
}
