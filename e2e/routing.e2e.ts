import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { unzipSync, zipSync } from 'fflate';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadModelFromPath } from '../src/model/load-node.ts';
import { findChromium, launchChromium } from '../src/testing/chromium.ts';
import { BUILT_IN } from '../src/testing/fixtures.ts';
import { randomAdapterFiles } from '../src/testing/random-adapter.ts';
import { greedyText, OUTPUT, seriousAccessibilityProblems, watchProblems } from './studio-page.ts';

const DATASETS = new URL('../public/datasets/', import.meta.url).pathname;
const BIN = fileURLToPath(new URL('../src/cli/bin.js', import.meta.url));
const stories = (file: string, count: number) =>
  readFileSync(`${DATASETS}${file}`, 'utf8')
    .trim()
    .split(/\n\s*\n/)
    .slice(0, count)
    .join('\n\n');

describe.skipIf(!findChromium())('routing in the studio page', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
    mkdirSync(OUTPUT, { recursive: true });
  });
  afterAll(() => browser.close());

  it('trains a token router between two board adapters, and the playground colours each token by its adapter', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
    const problems = watchProblems(page);
    await page.goto(inject('baseUrl'));
    await page.getByTestId('model-card').waitFor({ timeout: 60_000 });

    // Two adapters for the built-in model, imported as zips named after their folders.
    const { config } = await loadModelFromPath(`${BUILT_IN}stories260K.bin`);
    const zips = ['alpha', 'beta'].map((name, i) => {
      const files = randomAdapterFiles(config, {
        seed: i + 1,
        rank: 2,
        alpha: 4,
        range: 0.3,
        baseModel: 'stories260K (built-in)',
      });
      const zip = zipSync(
        Object.fromEntries([...files].map(([f, bytes]) => [`${name}/${f}`, bytes])),
      );
      return { name: `${name}.zip`, mimeType: 'application/zip', buffer: Buffer.from(zip) };
    });
    for (const [i, zip] of zips.entries()) {
      await page.getByTestId('adapter-files').setInputFiles([zip]);
      await expect
        .poll(() => page.getByTestId('library-item').count(), { timeout: 30_000 })
        .toBe(i + 1);
    }
    for (const name of ['alpha', 'beta'])
      await page.getByRole('switch', { name: `Use ${name}` }).check();

    const card = page.getByTestId('route-card');
    await card.getByTestId('route-mode').selectOption('token');
    await card.getByTestId('route-top-k').fill('1');
    await card.getByTestId('route-steps').fill('3');
    await card.getByTestId('route-text-0').fill(stories('zimmy-stories.txt', 8));
    await card.getByTestId('route-text-1').fill(stories('snorp-stories.txt', 8));
    await card.getByTestId('route-train').click();
    const result = card.getByTestId('route-result');
    await result.waitFor({ timeout: 120_000 });
    // The curve was drawn, and each text's held-out loss measured with and without the router.
    expect(await card.getByTestId('route-loss-chart').count()).toBe(1);
    const rows = result.locator('.report-table tbody tr');
    expect(await rows.count()).toBe(2);
    expect(await rows.nth(0).innerText()).toMatch(/alpha\s+\d\.\d{3}\s+\d\.\d{3}\s+\d+ %/);
    // Where the gates opened: a row per layer, a mean gate per adapter (top-1: the chosen one's
    // probability, at least a half of two).
    const usage = card.getByTestId('route-usage').locator('tbody tr');
    expect(await usage.count()).toBe(config.numLayers);
    const gates = (await usage.nth(0).locator('td').allInnerTexts()).map(Number);
    expect(gates[0] + gates[1]).toBeGreaterThanOrEqual(0.49);
    expect(gates[0] + gates[1]).toBeLessThanOrEqual(1.01);

    // Downloaded, the router is a folder with its adapters that the CLI's --router loads.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      card.getByTestId('route-download').click(),
    ]);
    const zip = unzipSync(new Uint8Array(readFileSync(await download.path())));
    const dir = mkdtempSync(join(tmpdir(), 'studio-router-'));
    for (const [path, bytes] of Object.entries(zip)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), bytes);
    }
    const folder = join(dir, Object.keys(zip)[0].split('/')[0]);
    expect(
      Object.keys(zip)
        .map((p) => p.slice(p.indexOf('/') + 1))
        .sort(),
    ).toEqual([
      'experts/alpha/adapter_config.json',
      'experts/alpha/adapter_model.safetensors',
      'experts/beta/adapter_config.json',
      'experts/beta/adapter_model.safetensors',
      'router.json',
      'router.safetensors',
    ]);
    const cli = await promisify(execFile)(process.execPath, [
      BIN,
      'logits',
      '--model',
      `${BUILT_IN}stories260K.bin`,
      '--router',
      folder,
      '--ids',
      '1,400,30',
      '--positions',
      'last',
    ]);
    const logits = (JSON.parse(cli.stdout) as { logits: number[][][] }).logits[0][0];
    expect(logits.every(Number.isFinite)).toBe(true);

    // Baked by its mean gates into one plain adapter in the library, with the cost said.
    await card.getByTestId('route-bake').click();
    await expect.poll(() => card.getByTestId('route-baked').count(), { timeout: 60_000 }).toBe(1);
    expect(await card.getByTestId('route-baked').innerText()).toMatch(
      /^router of alpha \+ beta is in the library\. Held-out loss routed \d\.\d{3}, baked \d\.\d{3}\.$/,
    );
    await expect.poll(() => page.getByTestId('library-item').count()).toBe(3);

    // Generated through the router: every new token on its adapter's colour, with the legend.
    expect(await page.getByTestId('active-adapters').textContent()).toBe(
      'Base model + a router between alpha, beta',
    );
    const text = await greedyText(page, 'Once upon a time', 16);
    expect(text.startsWith('Once upon a time')).toBe(true);
    const tokens = page.getByTestId('output').locator('.routed-token');
    expect(await tokens.count()).toBe(16);
    const legend = await page.getByTestId('route-legend').innerText();
    const counts = [...legend.matchAll(/\((\d+) tokens?\)/g)].map((m) => Number(m[1]));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(16);
    // One layer's choices instead of the mean: still every token coloured.
    await page.getByTestId('route-layer').selectOption('0');
    const layerCounts = [
      ...(await page.getByTestId('route-legend').innerText()).matchAll(/\((\d+) tokens?\)/g),
    ].map((m) => Number(m[1]));
    expect(layerCounts.reduce((a, b) => a + b, 0)).toBe(16);
    expect(await seriousAccessibilityProblems(page)).toEqual([]);
    await page.getByTestId('compose').screenshot({ path: `${OUTPUT}route-card.png` });
    await page.getByTestId('playground').screenshot({ path: `${OUTPUT}routed-text.png` });

    // Ended: the board's composition generates again, uncoloured.
    await card.getByTestId('route-end').click();
    await expect.poll(() => card.innerText()).toMatch(/Routing ended/);
    await greedyText(page, 'Once upon a time', 8);
    expect(await page.getByTestId('route-legend').count()).toBe(0);
    expect(await page.getByTestId('active-adapters').textContent()).toBe(
      'Base model + beta × 1.00 + alpha × 1.00',
    );
    expect(problems).toEqual([]);
  }, 300_000);
});
