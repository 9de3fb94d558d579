// Routing through the Studio API: a token router between two library adapters trained on their
// eval texts, measured on each text's held-out part; the playground then generates through it,
// hearing which adapter each token chose, until a composition is applied again.
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModelFromPath } from '../model/load-node.ts';
import { SNORP_STYLE, ZIMMY_STYLE } from '../studies/style-corpus.ts';
import { BUILT_IN } from '../testing/fixtures.ts';
import { randomAdapterFiles } from '../testing/random-adapter.ts';
import { nodeStudio } from '../testing/studio.ts';
import type { RoutePoint, StudioApi } from './api.ts';

describe('routing through the studio API', () => {
  let studio: StudioApi;
  const ids: string[] = [];
  const texts = () => [
    { id: ids[0], text: ZIMMY_STYLE.stories(8, 3) },
    { id: ids[1], text: SNORP_STYLE.stories(8, 3) },
  ];

  beforeAll(async () => {
    studio = nodeStudio();
    await studio.connect(() => undefined);
    await studio.loadBuiltinModel();
    const { config } = await loadModelFromPath(`${BUILT_IN}stories260K.bin`);
    for (const seed of [1, 2]) {
      const files = randomAdapterFiles(config, {
        seed,
        rank: 2,
        alpha: 4,
        range: 0.3,
        baseModel: 'stories260K',
      });
      const { item } = await studio.importAdapter(
        [...files].map(([name, bytes]) => ({ name, bytes })),
        { name: `style ${seed}` },
      );
      ids.push(item.id);
    }
  }, 60_000);

  it('trains a token router with a live curve, measures it, and generation says who chose each token', async () => {
    const points: RoutePoint[] = [];
    const outcome = await studio.trainRouter(
      { adapters: ids, texts: texts(), mode: 'token', topK: 1, steps: 3, lr: 0.05 },
      (point) => points.push(point),
    );
    expect(points.filter((p) => p.loss !== undefined).map((p) => p.step)).toEqual([1, 2, 3]);
    expect(points.some((p) => p.valLoss !== undefined)).toBe(true);
    expect(outcome.experts.map((e) => e.name)).toEqual(['style 1', 'style 2']);
    for (const row of outcome.rows) {
      expect(row.base).toBeGreaterThan(0);
      expect(row.routed).toBeGreaterThan(0);
      expect(row.ownShare).toBeGreaterThanOrEqual(0);
      expect(row.ownShare).toBeLessThanOrEqual(1);
    }
    const result = await studio.generate('Once upon a time', {
      maxNewTokens: 12,
      temperature: 0,
      topP: 1,
      topK: 0,
      seed: 0,
    });
    expect(result.routing?.experts).toEqual(['style 1', 'style 2']);
    expect(result.routing?.tokens).toHaveLength(result.newTokens);
    expect(result.routing!.prompt + result.routing!.tokens.map((t) => t.text).join('')).toBe(
      result.text,
    );
    for (const t of result.routing!.tokens) {
      expect([0, 1]).toContain(t.expert);
      expect(t.layers).toHaveLength(5);
      for (const e of t.layers) expect([0, 1]).toContain(e);
    }
    expect(outcome.layerUsage).toHaveLength(5);
    // Baked by its mean gates: a plain adapter in the library, and the cost measured.
    const baked = await studio.bakeRouter('routed');
    expect(baked.item.details?.rank).toBe(4);
    expect(Number.isFinite(baked.bakedLoss)).toBe(true);
    const zip = await studio.routerZip();
    expect(zip.name).toBe('router-style-1-style-2.zip');

    // A composition applied again ends routing.
    await studio.applyAdapters([{ id: ids[0], weight: 1 }]);
    const plain = await studio.generate('Once upon a time', {
      maxNewTokens: 4,
      temperature: 0,
      topP: 1,
      topK: 0,
      seed: 0,
    });
    expect(plain.routing).toBeUndefined();
    await studio.applyAdapters([]);
  });

  it('learned scales start at the average and report one weight per adapter; a missing text is said', async () => {
    const outcome = await studio.trainRouter({
      adapters: ids,
      texts: texts(),
      mode: 'scales',
      topK: 0,
      steps: 2,
      lr: 0.05,
    });
    expect(outcome.scales).toHaveLength(2);
    expect(outcome.scales!.some((w) => Math.abs(w - 0.5) > 1e-4)).toBe(true);
    expect(outcome.rows.every((r) => r.ownShare === null)).toBe(true);
    expect(outcome.layerUsage).toBeNull();
    // Baked, learned scales are the same model: their gates are constants.
    const baked = await studio.bakeRouter('scaled');
    expect(baked.item.name).toBe('scaled');
    expect(baked.item.origin).toMatch(/^baked router \(scales\) of style 1, style 2$/);
    expect(Math.abs(baked.bakedLoss! - baked.routedLoss!)).toBeLessThan(1e-4);
    expect((await studio.listAdapters()).map((a) => a.name)).toContain('scaled');
    await expect(
      studio.trainRouter({
        adapters: ids,
        texts: texts().slice(0, 1),
        mode: 'token',
        topK: 0,
        steps: 1,
        lr: 0.01,
      }),
    ).rejects.toThrow(/Paste an eval text for style 2/);
    await studio.applyAdapters([]);
  });
});
