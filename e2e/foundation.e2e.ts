import { mkdirSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { findChromium, launchChromium } from '../src/testing/chromium.ts';
import { hfFolderFiles } from '../src/model/hf-export.ts';
import { readLlama2c } from '../src/model/llama2c.ts';
import { startFakeHub } from '../src/testing/fake-hub.ts';
import { BUILT_IN, builtIn, fixture } from '../src/testing/fixtures.ts';
import { greedyText, OUTPUT, seriousAccessibilityProblems, watchProblems } from './studio-page.ts';

describe.skipIf(!findChromium())('the studio page in Chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
    mkdirSync(OUTPUT, { recursive: true });
  });
  afterAll(() => browser.close());

  it('shows the WebGPU adapter acquired inside the worker, and the kernels pass their self-check', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems = watchProblems(page);
    await page.goto(inject('baseUrl'));

    await expect
      .poll(() => page.getByTestId('gpu-badge').textContent(), { timeout: 30_000 })
      .toMatch(/GPU ready/);
    expect(await page.getByTestId('adapter-name').textContent()).toMatch(/swiftshader/i);
    expect(await page.getByTestId('limits').textContent()).toMatch(/Max buffer/);
    // The adapter really was acquired in the worker, not on the page's main thread.
    expect(page.workers().map((w) => w.url())).toEqual([expect.stringMatching(/studio\.worker/)]);

    const rows = page.locator('[data-testid=self-check] tbody tr');
    // Every kernel family (matmul with B in f32, f16 and bf16, QR, the SVDs) against its CPU
    // reference in Chromium.
    await expect.poll(() => rows.count(), { timeout: 90_000 }).toBe(11);
    expect(await rows.allTextContents()).toEqual(Array(11).fill(expect.stringContaining('pass')));
    expect(await page.getByTestId('self-check-kept').count()).toBe(0);

    await page.screenshot({ path: `${OUTPUT}foundation.png`, fullPage: true });
    // Once per browser and GPU: after a reload the kept result is shown at once, not run again.
    await page.reload();
    await page.getByTestId('self-check-kept').waitFor({ timeout: 30_000 });
    expect(await rows.count()).toBe(11);
    // The built page declares its Content-Security-Policy (vite.config.ts), and nothing above
    // broke it (a violation would be among the console problems).
    const csp = await page
      .locator('meta[http-equiv="Content-Security-Policy"]')
      .getAttribute('content');
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain('connect-src');
    expect(problems).toEqual([]);
  });

  it('loads the built-in model with no network and reproduces llama2.c’s greedy story in the playground', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const outside: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(inject('baseUrl'))) outside.push(r.url());
    });
    await page.goto(inject('baseUrl'));
    await page.getByTestId('model-card').waitFor({ timeout: 60_000 });
    expect(await page.getByTestId('model-card').textContent()).toMatch(/260,032/);
    const expected = new TextDecoder()
      .decode(fixture('models/llama2c/stories260K.greedy200.txt'))
      .trimEnd();
    expect(await greedyText(page, '', 200)).toBe(expected);
    expect(outside).toEqual([]);
    await page.screenshot({ path: `${OUTPUT}playground.png`, fullPage: true });
    expect(await seriousAccessibilityProblems(page)).toEqual([]);
  });

  it('fits a phone: no sideways scroll at 390 px, and the accessibility scan finds nothing serious', async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
    const problems = watchProblems(page);
    await page.goto(inject('baseUrl'));
    await page.getByTestId('model-card').waitFor({ timeout: 60_000 });
    await page.getByRole('button', { name: 'Use example dataset' }).click();
    await page.getByTestId('data-summary').waitFor({ timeout: 30_000 });
    // Wide tables scroll inside their panels; the page itself is as wide as the phone.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBe(390);
    expect(await seriousAccessibilityProblems(page)).toEqual([]);
    await page.screenshot({ path: `${OUTPUT}phone-390.png`, fullPage: true });
    expect(problems).toEqual([]);
  });

  it('loads model files the user picks, and explains files that are not a model', async () => {
    const page = await browser.newPage();
    await page.goto(inject('baseUrl'));
    await page.getByTestId('model-card').waitFor({ timeout: 60_000 });
    await page.getByTestId('model-files').setInputFiles({
      name: 'notes.txt',
      mimeType: 'text/plain',
      buffer: Buffer.from('hello'),
    });
    await expect
      .poll(() => page.getByTestId('model-error').textContent(), { timeout: 30_000 })
      .toMatch(
        /neither config\.json \(a Hugging Face model\), a llama\.cpp \.gguf model nor a llama2\.c \.bin checkpoint/,
      );
    // The failed load left the built-in model in place, and the playground with it.
    expect(await page.getByTestId('model-card').textContent()).toMatch(/stories260K \(built-in\)/);
    expect(await page.getByTestId('playground').count()).toBe(1);
    await page
      .getByTestId('model-files')
      .setInputFiles([`${BUILT_IN}stories260K.bin`, `${BUILT_IN}tok512.bin`]);
    await expect
      .poll(() => page.getByTestId('model-card').textContent(), { timeout: 30_000 })
      .toMatch(/stories260K\.bin, tok512\.bin.*260,032/);
    // The memory table lists every precision; picking one loads the same files again at it.
    expect(await page.locator('[data-testid=memory-table] tbody tr').count()).toBe(7);
    expect(await page.getByTestId('memory-file').textContent()).toMatch(
      /as stored \(f32\).*loaded/,
    );
    await page.getByTestId('memory-q8_0').getByRole('button').click();
    await expect
      .poll(() => page.getByTestId('model-memory').textContent(), { timeout: 30_000 })
      .toMatch(/weights q8_0/);
    expect(await page.getByTestId('memory-q8_0').textContent()).toMatch(/loaded/);
  });

  it('loads a model from the Hub by repo id (a local server in the Hub layout)', async () => {
    const { config, weights } = readLlama2c(builtIn('stories260K.bin'), 'stories260K.bin');
    const files = hfFolderFiles(config, weights);
    files.set('tok512.bin', builtIn('tok512.bin'));
    const hub = await startFakeHub({ 'karpathy/stories260K': files });
    try {
      const page = await browser.newPage();
      await page.goto(`${inject('baseUrl')}?hub=${encodeURIComponent(hub.baseUrl)}`);
      await page.getByTestId('model-card').waitFor({ timeout: 60_000 });
      await page.getByTestId('hub-id').fill('karpathy/stories260K');
      await page.getByRole('button', { name: 'Load from the Hub' }).click();
      await expect
        .poll(() => page.getByTestId('model-card').textContent(), { timeout: 60_000 })
        .toMatch(/karpathy\/stories260K.*260,032/);
      expect(hub.requests).toContain('/karpathy/stories260K/resolve/main/model.safetensors');
      await page.getByTestId('hub-id').fill('nobody/nothing');
      await page.getByRole('button', { name: 'Load from the Hub' }).click();
      await expect
        .poll(() => page.getByTestId('model-error').textContent(), { timeout: 30_000 })
        .toMatch(/nobody\/nothing: has no config.json on the Hub/);
    } finally {
      await hub.close();
    }
  });
});
