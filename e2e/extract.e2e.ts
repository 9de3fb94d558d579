import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { modulePath } from '../src/model/architecture.ts';
import { hfFolderFiles } from '../src/model/hf-export.ts';
import { loadHfFolder } from '../src/model/hf-folder.ts';
import { findChromium, launchChromium } from '../src/testing/chromium.ts';
import { fixture } from '../src/testing/fixtures.ts';
import { randomArray, seededRandom } from '../src/testing/random.ts';
import { OUTPUT, watchProblems } from './studio-page.ts';

const LLAMA = 'models/gguf/llama/';

/** The tiny Llama fixture's weights with a rank-1 update of every linear module, as HF files. */
async function fineTuneFiles(): Promise<{ name: string; bytes: Uint8Array }[]> {
  const { config, weights } = await loadHfFolder(
    ['config.json', 'model.safetensors'].map((name) => ({
      name,
      bytes: () => Promise.resolve(fixture(`${LLAMA}hf/${name}`)),
    })),
  );
  const random = seededRandom(1);
  for (let l = 0; l < config.numLayers; l++)
    for (const m of config.arch.modules) {
      const w = weights.get(`${modulePath(config.arch, l, m)}.weight`)!;
      const b = randomArray(random, m.out, -0.2, 0.2);
      const a = randomArray(random, m.in, -0.2, 0.2);
      for (let o = 0; o < m.out; o++)
        for (let i = 0; i < m.in; i++) w.data[o * m.in + i] += b[o] * a[i];
    }
  return [...hfFolderFiles(config, weights)].map(([name, bytes]) => ({ name, bytes }));
}

describe.skipIf(!findChromium())('extracting a LoRA in the studio page', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
    mkdirSync(OUTPUT, { recursive: true });
  });
  afterAll(() => browser.close());

  it('extracts a fine-tune dropped beside its .gguf base into the library, and measures it', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
    const problems = watchProblems(page);
    await page.goto(inject('baseUrl'));
    await page.getByTestId('model-card').waitFor({ timeout: 60_000 });
    const gguf = {
      name: 'model-f32.gguf',
      mimeType: '',
      buffer: Buffer.from(fixture(`${LLAMA}model-f32.gguf`)),
    };
    // The base is also the loaded model, for the before and after.
    await page.getByTestId('model-files').setInputFiles([gguf]);
    await expect
      .poll(() => page.getByTestId('model-card').textContent(), { timeout: 60_000 })
      .toMatch(/model-f32\.gguf/);

    // The base dropped on its zone (the page leaves the drop to it), the fine-tune picked.
    const dataTransfer = await page.evaluateHandle((base64) => {
      const data = new DataTransfer();
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      data.items.add(new File([bytes], 'model-f32.gguf'));
      return data;
    }, gguf.buffer.toString('base64'));
    await page.getByTestId('extract-base').dispatchEvent('drop', { dataTransfer });
    expect(await page.getByTestId('extract-base-name').textContent()).toMatch(
      /^model-f32\.gguf GGUF, 1 file/,
    );
    // The fine-tune as a folder, picked with the folder picker (its files are read from disk).
    const temp = mkdtempSync(join(tmpdir(), 'extract-e2e-'));
    const dir = join(temp, 'fox-tune');
    mkdirSync(dir);
    for (const f of await fineTuneFiles()) writeFileSync(join(dir, f.name), f.bytes);
    await page.getByTestId('extract-tuned-folder').setInputFiles(dir);
    expect(await page.getByTestId('extract-tuned-name').textContent()).toMatch(
      /^fox-tune HF folder, 2 files/,
    );
    await page
      .getByTestId('extract-text')
      .fill(
        'Once upon a time there was a little fox who lived in the woods. Every day the fox ran to the river to drink, and every night it slept under an old oak tree.',
      );
    await page.getByTestId('extract-mode').selectOption('energy');
    await page.getByTestId('extract-energy').fill('99');
    await page.getByTestId('extract-max-rank').fill('4');
    await page.getByTestId('extract-run').click();

    const summary = page.getByTestId('extract-summary');
    await summary.or(page.getByTestId('extract-error')).waitFor({ timeout: 60_000 });
    expect(await summary.textContent()).toMatch(/14 modules, rank 1, keeping 100 % of ‖ΔW‖²/);
    const cells = page.getByTestId('extract-energy-grid').locator('td');
    expect(await cells.count()).toBe(14);
    for (const text of await cells.allTextContents()) expect(text).toBe('100');
    expect(await page.getByTestId('extract-not-carried').textContent()).toMatch(/Every weight/);
    const item = page.getByTestId('library-item').filter({ hasText: 'extracted: rank ≤ 1' });
    await item.waitFor({ timeout: 10_000 });
    expect(await item.textContent()).toMatch(
      /extracted: rank ≤ 1 \(99 % energy\) from fox-tune − model-f32\.gguf/,
    );

    // Measured at once on the text: the loaded model is the base.
    const table = page.getByTestId('extract-effect-table');
    await table.waitFor({ timeout: 60_000 });
    expect(await page.getByTestId('extract-effect').textContent()).toMatch(
      /The loaded model is the base/,
    );
    const rows = await table.locator('tbody tr').allTextContents();
    expect(rows).toHaveLength(2);
    const perplexities = await table.locator('tbody tr td:last-child').allTextContents();
    expect(perplexities.map(Number).every((p) => p > 1)).toBe(true);
    expect(perplexities[0]).not.toBe(perplexities[1]);
    await page.getByTestId('extract').screenshot({ path: `${OUTPUT}extract.png` });
    expect(problems).toEqual([]);
    rmSync(temp, { recursive: true, force: true });
  });
});
