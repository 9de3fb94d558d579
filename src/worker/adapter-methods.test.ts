// The second wave's methods through the Studio API: a DyLoRA run's library entry offers its ranks
// (size and perplexity at each, a cut added beside it), and an orthogonal run's entry records the
// basis slice it took, so "next free slice" can skip it.
import { beforeAll, describe, expect, it } from 'vitest';
import { nextFreeSlice, type LoraSpec } from '../adapters/config.ts';
import { SNORP_STYLE } from '../studies/style-corpus.ts';
import { DEFAULT_SETTINGS } from '../train/settings.ts';
import { nodeStudio } from '../testing/studio.ts';
import type { StudioApi } from './api.ts';

describe('adapter methods through the studio API', () => {
  let studio: StudioApi;
  const evalText = SNORP_STYLE.stories(2, 99);
  const lora: LoraSpec = {
    rank: 4,
    alpha: 8,
    rslora: false,
    targets: ['q_proj', 'v_proj', 'down_proj'],
    dropout: 0,
    init: 'lora',
  };
  const trainOn = async (spec: LoraSpec) => {
    const outcome = await studio.startTraining({
      lora: spec,
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
    const item = (await studio.listAdapters()).find((i) => i.id === outcome.adapterId);
    if (!item) throw new Error('the run added no adapter');
    return item;
  };

  beforeAll(async () => {
    studio = nodeStudio();
    await studio.connect(() => undefined);
    await studio.loadBuiltinModel();
    await studio.prepareData(SNORP_STYLE.stories(24, 1), 'snorp.txt', {
      seqLen: 64,
      validationFraction: 0,
      seed: 1,
    });
  }, 60_000);

  it(
    'a DyLoRA adapter is measured at every rank and cut to one',
    { timeout: 120_000 },
    async () => {
      const item = await trainOn({ ...lora, dylora: true });
      expect(item.dylora).toBe(true);
      const progress: number[] = [];
      const curve = await studio.rankCurve(item.id, evalText, (done) => progress.push(done));
      expect(curve.map((p) => p.rank)).toEqual([1, 2, 3, 4]);
      expect(progress.at(-1)).toBe(4);
      for (const [i, p] of curve.entries()) {
        if (i > 0) expect(p.bytes).toBeGreaterThan(curve[i - 1].bytes);
        expect(p.perplexity).toBeGreaterThan(1);
      }
      // Fewer components, less of what it learned: rank 1 costs more than rank 4.
      expect(curve[0].perplexity).toBeGreaterThan(curve[3].perplexity ?? Infinity);
      const cut = await studio.cutAdapter(item.id, 2);
      expect(cut).toMatchObject({ name: `${item.name} · rank 2`, dylora: true });
      expect(cut.details?.rank).toBe(2);
      expect((await studio.listAdapters()).map((i) => i.id)).toContain(cut.id);
      // Without eval text: sizes only.
      expect((await studio.rankCurve(item.id, null)).every((p) => p.perplexity === null)).toBe(
        true,
      );
    },
  );

  it(
    'an orthogonal adapter records its basis slice, which the next free slice skips',
    { timeout: 120_000 },
    async () => {
      const item = await trainOn({ ...lora, init: 'orthogonal', basis: { seed: 3, slice: 1 } });
      expect(item.basis).toEqual({ seed: 3, slice: 1 });
      const taken = [{ basis: { seed: 3, slice: 1 }, rank: item.details?.rank ?? 0 }];
      expect(nextFreeSlice(taken, 3, 4)).toBe(2);
      expect(nextFreeSlice(taken, 3, 8)).toBe(1);
      expect(nextFreeSlice(taken, 4, 4)).toBe(0);
    },
  );
});
