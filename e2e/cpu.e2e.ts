// The studio in a Chromium without WebGPU: it says how to turn WebGPU on, and meanwhile runs on
// the CPU references: the built-in model generates llama2.c's story, adapters import, apply,
// compare and merge, the merged adapter downloads; training says why it cannot run.
import { mkdirSync, readFileSync } from 'node:fs';
import { unzipSync, zipSync } from 'fflate';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { peftFiles } from '../src/adapters/peft.ts';
import { gaussian } from '../src/linalg/random.ts';
import { findChromium, launchChromium } from '../src/testing/chromium.ts';
import { fixture } from '../src/testing/fixtures.ts';
import { greedyText, OUTPUT, watchProblems } from './studio-page.ts';

/** stories260K: 5 layers, hidden 64, 4 KV heads of 8. */
const SHAPES = { q_proj: { out: 64, in: 64 }, v_proj: { out: 32, in: 64 } };

/** A PEFT adapter for stories260K with random q/v factors, zipped in a folder named `name`. */
function randomAdapterZip(name: string, seed: number) {
  const rank = 4;
  const modules = Array.from({ length: 5 }, (_, layer) =>
    Object.entries(SHAPES).map(([type, shape], k) => ({
      path: `model.layers.${layer}.self_attn.${type}`,
      layer,
      rank,
      alpha: 8,
      ...shape,
      a: gaussian(rank * shape.in, seed + 10 * layer + k).map((v) => v * 0.3),
      b: gaussian(shape.out * rank, seed + 10 * layer + k + 5).map((v) => v * 0.3),
    })),
  ).flat();
  const files = peftFiles({
    modules,
    rank,
    alpha: 8,
    rslora: false,
    targets: Object.keys(SHAPES),
    dropout: 0,
    initLoraWeights: true,
    baseModel: 'stories260K (built-in)',
    numLayers: 5,
  });
  const zip = zipSync(Object.fromEntries([...files].map(([f, b]) => [`${name}/${f}`, b])));
  return { name: `${name}.zip`, mimeType: 'application/zip', buffer: Buffer.from(zip) };
}

describe.skipIf(!findChromium())('the studio page without WebGPU', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium(['--disable-features=WebGPU'], false);
    mkdirSync(OUTPUT, { recursive: true });
  });
  afterAll(() => browser.close());

  it('runs on the CPU: generates, imports, applies, compares and merges adapters, but does not train', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
    const problems = watchProblems(page);
    await page.goto(inject('baseUrl'));

    const help = page.getByTestId('webgpu-help');
    await help.waitFor({ timeout: 30_000 });
    expect(await help.textContent()).toMatch(/enable-unsafe-webgpu/);
    expect(await page.getByTestId('cpu-mode').textContent()).toMatch(/runs on your CPU/);
    expect(await page.getByTestId('gpu-badge').textContent()).toBe('No WebGPU: on the CPU');
    expect(await page.getByTestId('cpu-banner').textContent()).toMatch(/runs on your CPU/);

    // The built-in model, on the CPU reference forward: llama2.c's own greedy story.
    await page.getByTestId('model-card').waitFor({ timeout: 60_000 });
    expect(await page.getByTestId('model-card').textContent()).toMatch(/Memory \(CPU\)/);
    const story = new TextDecoder()
      .decode(fixture('models/llama2c/stories260K.greedy200.txt'))
      .trimEnd();
    expect(await greedyText(page, '', 200)).toBe(story);
    expect(await page.getByTestId('train-needs-webgpu').textContent()).toMatch(
      /Training needs WebGPU/,
    );
    expect(await page.getByTestId('data').count()).toBe(0);

    // Two adapters in, one applied at a weight: the playground's text changes.
    for (const [i, zip] of [randomAdapterZip('alpha', 1), randomAdapterZip('beta', 2)].entries()) {
      await page.getByTestId('adapter-files').setInputFiles(zip);
      await expect
        .poll(() => page.getByTestId('library-item').count(), { timeout: 30_000 })
        .toBe(i + 1);
    }
    const base = await greedyText(page, 'Once upon a time', 40);
    const compose = page.getByTestId('compose');
    await compose.getByRole('checkbox', { name: 'alpha' }).check();
    await compose.getByRole('checkbox', { name: 'beta' }).check();
    await compose.getByRole('switch', { name: 'Apply alpha in the composition' }).check();
    await expect
      .poll(() => page.getByTestId('active-adapters').textContent(), { timeout: 10_000 })
      .toBe('Base model + alpha × 1.00');
    expect(await greedyText(page, 'Once upon a time', 40)).not.toBe(base);

    // Compared and merged on the CPU references; the merge downloads with its recipe.
    const matrix = compose.getByTestId('similarity-matrix');
    await matrix.waitFor({ timeout: 30_000 });
    const cells = await matrix.locator('td').allTextContents();
    expect([cells[0], cells[3]]).toEqual(['1.00', '1.00']);
    await compose.getByRole('switch', { name: 'Apply beta in the composition' }).check();
    await compose.getByTestId('merge-method').selectOption('ties_svd');
    await compose.getByRole('button', { name: 'Bake' }).click();
    const result = compose.getByTestId('bake-result');
    await result.waitFor({ timeout: 60_000 });
    const merged = 'ties_svd of alpha + beta';
    expect(await result.textContent()).toMatch(`${merged} is in the library`);
    await expect.poll(() => page.getByTestId('library-item').count(), { timeout: 10_000 }).toBe(3);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      result.getByRole('button', { name: `Download ${merged} as a zip` }).click(),
    ]);
    const zip = unzipSync(new Uint8Array(readFileSync(await download.path())));
    expect(
      Object.keys(zip)
        .map((p) => p.split('/').at(-1))
        .sort(),
    ).toEqual([
      'README.md',
      'adapter_config.json',
      'adapter_model.safetensors',
      'merge_recipe.json',
    ]);

    await page.screenshot({ path: `${OUTPUT}cpu.png`, fullPage: true });
    expect(problems).toEqual([]);
  });
});
