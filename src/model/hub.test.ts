import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryFileCache, startFakeHub } from '../testing/fake-hub.ts';
import { builtIn, fixture } from '../testing/fixtures.ts';
import { useGpu } from '../testing/gpu.ts';
import { createGpuModel } from './forward.ts';
import { generateAll } from './generate.ts';
import { hfFolderFiles } from './hf-export.ts';
import { hubModelFiles, type DownloadProgress } from './hub.ts';
import { readLlama2c } from './llama2c.ts';
import { loadModelFiles, type LoadedModelFiles } from './load.ts';

const gpu = useGpu();
let hub: Awaited<ReturnType<typeof startFakeHub>>;

beforeAll(async () => {
  const { config, weights } = readLlama2c(builtIn('stories260K.bin'), 'stories260K.bin');
  const files = hfFolderFiles(config, weights);
  files.set('tok512.bin', builtIn('tok512.bin'));
  hub = await startFakeHub({ 'karpathy/stories260K': files });
});
afterAll(() => hub.close());

/** The loaded model tells llama2.c's published greedy story: every byte arrived intact. */
async function expectLlama2cStory(loaded: LoadedModelFiles): Promise<void> {
  const model = createGpuModel(gpu(), loaded.config, loaded.weights);
  try {
    const tokens = await generateAll(model, [1], { maxNewTokens: 200 });
    const expected = new TextDecoder()
      .decode(fixture('models/llama2c/stories260K.greedy200.txt'))
      .trimEnd();
    expect(loaded.tokenizer.decode([1, ...tokens])).toBe(expected);
  } finally {
    model.dispose();
  }
}

describe('loading from the Hub by repo id (a local server in the Hub layout)', () => {
  it('downloads with progress, loads and generates llama2.c’s story; a cache serves the second load', async () => {
    const cache = memoryFileCache();
    const progress: DownloadProgress[] = [];
    const options = {
      baseUrl: hub.baseUrl,
      cache,
      onProgress: (p: DownloadProgress) => progress.push(p),
    };
    const loaded = await loadModelFiles(
      await hubModelFiles('karpathy/stories260K', options),
      'karpathy/stories260K',
    );
    const last = progress.findLast((p) => p.file === 'model.safetensors');
    expect(last?.loaded).toBe(last?.total);
    expect(last?.total).toBeGreaterThan(1_000_000);

    await expectLlama2cStory(loaded);

    const before = hub.requests.length;
    await loadModelFiles(await hubModelFiles('karpathy/stories260K', options), 'again');
    // Probes for optional files that do not exist (404s are not cached) are all that remain.
    expect(
      hub.requests.slice(before).every((r) => /index\.json|tokenizer(_config)?\.json/.test(r)),
    ).toBe(true);
  });

  it('continues an interrupted download where it stopped (Range), after a reload', async () => {
    const cache = memoryFileCache();
    const options = { baseUrl: hub.baseUrl, cache, partBytes: 64 * 1024 };
    hub.interruptNext('model.safetensors', 300_000);
    const interrupted = await loadModelFiles(
      await hubModelFiles('karpathy/stories260K', options),
      'first try',
    ).catch((e: unknown) => e);
    expect(interrupted).toBeInstanceOf(Error);
    const url = `${hub.baseUrl}/karpathy/stories260K/resolve/main/model.safetensors`;
    const { parts } = await cache.parts(url);
    // Of the 300 000 bytes that arrived, the whole parts (≥ 64 KiB each) were kept.
    const kept = parts.reduce((n, p) => n + p.byteLength, 0);
    expect(kept).toBeGreaterThanOrEqual(2 * 64 * 1024);
    expect(kept).toBeLessThanOrEqual(300_000);

    const before = hub.requests.length;
    const progress: DownloadProgress[] = [];
    const loaded = await loadModelFiles(
      await hubModelFiles('karpathy/stories260K', {
        ...options,
        onProgress: (p) => progress.push(p),
      }),
      'reloaded',
    );
    expect(hub.requests.slice(before)).toContain(
      `/karpathy/stories260K/resolve/main/model.safetensors range=bytes=${kept}-`,
    );
    // Progress starts where the kept parts end.
    expect(progress.find((p) => p.file === 'model.safetensors')?.loaded).toBe(kept);
    expect((await cache.parts(url)).parts).toHaveLength(0);
    await expectLlama2cStory(loaded);
  });

  it('says clearly when a repo does not exist or the id is malformed', async () => {
    await expect(hubModelFiles('nobody/nothing', { baseUrl: hub.baseUrl })).rejects.toThrow(
      /nobody\/nothing: has no config.json on the Hub \(HTTP 404 for config.json\)/,
    );
    await expect(hubModelFiles('../etc/passwd', { baseUrl: hub.baseUrl })).rejects.toThrow(
      /is not a Hub repo id/,
    );
  });
});
