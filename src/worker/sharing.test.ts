// Sharing compressed through the Studio API: an adapter trained in the studio compressed at a
// density with its perplexity cost on its eval text measured by the loaded model, the file
// imported back as the plain adapter it restores, and the size/quality curve over densities.
import { nodeStudio } from '../testing/studio.ts';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCompressedFile, restoredFiles, CURVE_DENSITIES } from '../adapters/compeft.ts';
import { readPeftAdapter } from '../adapters/peft-read.ts';
import { cpuCompute } from '../merge/cpu/compute.ts';
import { SNORP_STYLE } from '../studies/style-corpus.ts';
import { DEFAULT_SETTINGS } from '../train/settings.ts';
import type { StudioApi } from './api.ts';

describe('sharing compressed adapters through the studio API', () => {
  let studio: StudioApi;
  let id = '';
  const evalText = SNORP_STYLE.stories(2, 99);

  beforeAll(async () => {
    studio = nodeStudio();
    await studio.connect(() => undefined);
    await studio.loadBuiltinModel();
    await studio.prepareData(SNORP_STYLE.stories(24, 1), 'snorp.txt', {
      seqLen: 64,
      validationFraction: 0,
      seed: 1,
    });
    const outcome = await studio.startTraining({
      lora: {
        rank: 4,
        alpha: 8,
        rslora: false,
        targets: ['q_proj', 'v_proj', 'down_proj'],
        dropout: 0,
        init: 'lora',
      },
      train: {
        ...DEFAULT_SETTINGS,
        steps: 8,
        lr: 2e-2,
        batchSize: 4,
        warmupSteps: 0,
        evalEvery: 0,
        checkpointEvery: 0,
      },
    });
    id = outcome.adapterId ?? '';
  }, 120_000);

  it('compresses with the perplexity cost measured, and imports the file back as what it restores', async () => {
    const result = await studio.compressAdapter(id, 0.3, evalText);
    expect(result.name).toMatch(/\.compeft$/);
    expect(result.bytes).toBe(result.file.length);
    const { perplexity } = result;
    expect(perplexity).not.toBeNull();
    // The adapter learned the style: the compressed one keeps some of it, at a cost.
    const base = (await studio.perplexity(evalText)).perplexity;
    expect(perplexity!.original).toBeLessThan(base);
    expect(perplexity!.compressed).toBeGreaterThan(perplexity!.original * 0.999);
    expect(result.alpha).toBeGreaterThan(0);

    const { item } = await studio.importAdapter([{ name: result.name, bytes: result.file }]);
    expect(item.name).toBe(result.name.replace(/\.compeft$/, ''));
    const imported = await studio.adapterFiles(item.id);
    const { adapter, alpha } = readCompressedFile(result.file);
    const expected = await restoredFiles(adapter, alpha, cpuCompute);
    const byName = new Map(imported.map((f) => [f.name, f.bytes]));
    expect(byName.get('adapter_model.safetensors')).toEqual(
      expected.get('adapter_model.safetensors'),
    );
    expect(readPeftAdapter(byName, 'imported').modules.size).toBe(3 * 5);
    // Applied, it costs what the report says it does: some of the adapter's gain.
    const score = async (applied: string) => {
      await studio.applyAdapters([{ id: applied, weight: 1 }]);
      return (await studio.perplexity(evalText)).perplexity;
    };
    const [original, compressed] = [await score(id), await score(item.id)];
    expect(original).toBeLessThan(base);
    expect(compressed).toBeGreaterThan(original);
    expect(Math.sign(compressed - original)).toBe(
      Math.sign(perplexity!.compressed - perplexity!.original),
    );
    await studio.applyAdapters([]);
  }, 120_000);

  it('draws the size/quality curve: smaller files at lower densities, no eval without text', async () => {
    const progress: number[] = [];
    const curve = await studio.compressionCurve(id, null, (done) => progress.push(done));
    expect(curve.map((p) => p.density)).toEqual(CURVE_DENSITIES);
    expect(progress.at(-1)).toBe(CURVE_DENSITIES.length);
    for (let i = 1; i < curve.length; i++)
      expect(curve[i].bytes).toBeGreaterThan(curve[i - 1].bytes);
    expect(curve.every((p) => p.perplexity === null)).toBe(true);
    await expect(studio.compressAdapter(id, 0, null)).rejects.toThrow(/density must be in/);
  }, 120_000);
});
