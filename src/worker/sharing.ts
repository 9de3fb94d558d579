// The sharing part of the Studio API: a library adapter compressed for sending (ComPEFT,
// src/adapters/compeft.ts) with what it costs on the adapter's eval text, one density or a curve
// over several.
import {
  COMPRESSED_FILE,
  compressAdapter,
  CURVE_DENSITIES,
  type Compression,
} from '../adapters/compeft.ts';
import type { LibraryEntry } from '../adapters/library.ts';
import { readPeftAdapter } from '../adapters/peft-read.ts';
import type { MergeCompute } from '../merge/compute.ts';
import { WEIGHTS } from '../adapters/peft-config.ts';
import { truncateAdapter } from '../adapters/truncate.ts';
import type { CompressionPoint, RankPoint, StudioApi } from './api.ts';
import type { LoadedModel } from './loaded.ts';
import { EVAL_SEQUENCES, evalWindows, modelEvaluator } from './merging.ts';

export interface SharingDeps {
  compute(): MergeCompute;
  loaded(): LoadedModel | undefined;
  entry(id: string): Promise<LibraryEntry>;
}

type SharingApi = Pick<StudioApi, 'compressAdapter' | 'compressionCurve' | 'rankCurve'>;

export function createSharingApi(deps: SharingDeps): SharingApi {
  /** The perplexity of the loaded model with an adapter's files applied, on the eval text. */
  function perplexityJudge(
    entry: LibraryEntry,
    evalText: string,
  ): (files: ReadonlyMap<string, Uint8Array>) => Promise<number> {
    const loaded = deps.loaded();
    if (!loaded)
      throw new Error('Load the model the adapter was trained on to measure its eval text.');
    const windows = evalWindows(loaded, evalText).slice(0, EVAL_SEQUENCES);
    if (windows.length === 0) throw new Error(`The eval text for ${entry.name} is too short.`);
    const evaluate = modelEvaluator(loaded);
    return async (files) => {
      const adapter = readPeftAdapter(files, entry.name);
      const [loss] = await evaluate([{ adapter, weight: 1 }], [windows]);
      return Math.exp(loss ?? NaN);
    };
  }

  /**
   * Compresses at one density; with eval text and a loaded model, α is the grid's best
   * perplexity and both perplexities are reported.
   */
  async function compressOne(
    id: string,
    density: number,
    evalText: string | null,
  ): Promise<{ compression: Compression; point: CompressionPoint }> {
    const entry = await deps.entry(id);
    const files = new Map(Object.entries(entry.files));
    const judge = evalText !== null ? perplexityJudge(entry, evalText) : undefined;
    const original = judge ? await judge(files) : null;
    const compression = await compressAdapter(
      files,
      entry.name,
      { target: 'factors', density },
      deps.compute(),
      judge,
    );
    return {
      compression,
      point: {
        density,
        bytes: compression.file.length,
        ratio: compression.ratio,
        alpha: compression.alpha,
        deltaError: compression.deltaError,
        perplexity:
          original === null || compression.score === undefined
            ? null
            : { original, compressed: compression.score },
      },
    };
  }

  return {
    async rankCurve(id, evalText, onProgress) {
      const entry = await deps.entry(id);
      const files = new Map(Object.entries(entry.files));
      const judge = evalText !== null ? perplexityJudge(entry, evalText) : undefined;
      const rank = readPeftAdapter(files, entry.name).details.rank;
      const points: RankPoint[] = [];
      for (let b = 1; b <= rank; b++) {
        onProgress?.(b - 1, rank);
        const cut = truncateAdapter(files, b, entry.name);
        points.push({
          rank: b,
          bytes: cut.get(WEIGHTS)?.length ?? 0,
          perplexity: judge ? await judge(cut) : null,
        });
      }
      onProgress?.(rank, rank);
      return points;
    },
    async compressAdapter(id, density, evalText) {
      if (!(density > 0 && density <= 1))
        throw new RangeError(`The density must be in (0, 1], not ${density}.`);
      const { compression, point } = await compressOne(id, density, evalText);
      const { name } = await deps.entry(id);
      const file = `${name.replace(/[^\w.-]+/g, '-')}.${COMPRESSED_FILE.split('.').pop()}`;
      return { ...point, name: file, file: compression.file };
    },
    async compressionCurve(id, evalText, onProgress) {
      const points: CompressionPoint[] = [];
      for (const [i, density] of CURVE_DENSITIES.entries()) {
        onProgress?.(i, CURVE_DENSITIES.length);
        points.push((await compressOne(id, density, evalText)).point);
      }
      onProgress?.(CURVE_DENSITIES.length, CURVE_DENSITIES.length);
      return points;
    },
  };
}
