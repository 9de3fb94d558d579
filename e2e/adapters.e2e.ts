import { mkdirSync, readFileSync } from 'node:fs';
import { zipSync } from 'fflate';
import type { Browser, Download, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { findChromium, launchChromium } from '../src/testing/chromium.ts';
import { FIXTURES, fixture } from '../src/testing/fixtures.ts';
import { greedyText, OUTPUT, prepareQuickRun, watchProblems } from './studio-page.ts';

const QWEN = 'adapters/qwen2.5-0.5b-instruct/MatthewZhang473_20251017_101834_r6_alpha32';
const PEFT_FILES = ['adapter_config.json', 'adapter_model.safetensors'];

interface NamedBytes {
  name: string;
  bytes: Uint8Array;
}

/** Trains the Quick preset on the example dataset for `steps` steps, through the UI. */
async function trainQuick(page: Page, steps: number): Promise<void> {
  await prepareQuickRun(page, steps);
  const start = page.getByRole('button', { name: 'Start training' });
  await start.click();
  await page.getByTestId('train-outcome').waitFor({ timeout: 90_000 });
  expect(await page.getByTestId('train-outcome').textContent()).toMatch(/^Done/);
}

/** Greedy text from "Once upon a time" with whatever the playground says it uses. */
const greedy = (page: Page) => greedyText(page, 'Once upon a time', 60);

const activeLabel = (page: Page) => page.getByTestId('active-adapters').textContent();

async function downloaded(download: Download): Promise<NamedBytes> {
  return { name: download.suggestedFilename(), bytes: readFileSync(await download.path()) };
}

/** Files handed to an <input type="file">. */
const asInput = (files: readonly NamedBytes[]) =>
  files.map((f) => ({ name: f.name, mimeType: '', buffer: Buffer.from(f.bytes) }));

/** Drops files on an element the way a file manager would (a DataTransfer with File items). */
async function dropFiles(page: Page, testId: string, files: readonly NamedBytes[]) {
  const payload = files.map((f) => ({
    name: f.name,
    base64: Buffer.from(f.bytes).toString('base64'),
  }));
  const dataTransfer = await page.evaluateHandle((list) => {
    const data = new DataTransfer();
    for (const f of list) {
      const bytes = Uint8Array.from(atob(f.base64), (c) => c.charCodeAt(0));
      data.items.add(new File([bytes], f.name));
    }
    return data;
  }, payload);
  await page.getByTestId(testId).dispatchEvent('drop', { dataTransfer });
}

describe.skipIf(!findChromium())('adapters in the studio page', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
    mkdirSync(OUTPUT, { recursive: true });
  });
  afterAll(() => browser.close());

  it('applies a trained adapter with a weight in the playground, and imports its files back', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
    const problems = watchProblems(page);
    await page.goto(inject('baseUrl'));
    await trainQuick(page, 10);
    const item = page.getByTestId('library-item');
    await expect.poll(() => item.count(), { timeout: 10_000 }).toBe(1);
    expect(await item.getByTestId('adapter-details').textContent()).toMatch(
      /rank 8.*alpha 16.*35 modules.*q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj/,
    );

    expect(await activeLabel(page)).toBe('Base model');
    const base = await greedy(page);
    await page.getByRole('switch', { name: 'Use zimmy-stories · lora r8' }).check();
    expect(await activeLabel(page)).toBe('Base model + zimmy-stories · lora r8 × 1.00');
    const adapted = await greedy(page);
    expect(adapted).not.toBe(base);
    expect(adapted).toMatch(/^Once upon a time.*Zimmy/s);
    await page.screenshot({ path: `${OUTPUT}adapters-in-use.png`, fullPage: true });

    // The slider answers the arrow keys in steps of 0.05; the number field follows it.
    const slider = page.getByRole('slider', { name: 'Weight of zimmy-stories · lora r8' });
    await slider.focus();
    await page.keyboard.press('ArrowLeft');
    expect(await item.getByTestId('adapter-weight').inputValue()).toBe('0.95');
    expect(await activeLabel(page)).toBe('Base model + zimmy-stories · lora r8 × 0.95');
    await item.getByTestId('adapter-weight').fill('0');
    expect(await slider.inputValue()).toBe('0');
    expect(await greedy(page)).toBe(base);

    // Download both files, remove the adapter in use, and import the files again.
    const files: NamedBytes[] = [];
    for (const name of PEFT_FILES) {
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        item.getByRole('button', { name: `Download ${name} of zimmy-stories · lora r8` }).click(),
      ]);
      files.push(await downloaded(download));
    }
    await page.getByRole('button', { name: 'Remove zimmy-stories · lora r8' }).click();
    await expect.poll(() => item.count(), { timeout: 10_000 }).toBe(0);
    expect(await activeLabel(page)).toBe('Base model');

    await page.getByTestId('adapter-files').setInputFiles(asInput(files));
    await expect.poll(() => item.count(), { timeout: 30_000 }).toBe(1);
    // Loose files are named after what they are: the base model in their config, variant, rank.
    const imported = 'stories260K (built-in) · lora r8';
    expect(await page.getByTestId('import-status').textContent()).toBe(`Imported ${imported}.`);
    expect(await item.textContent()).toMatch(/lora r8.*imported · for stories260K \(built-in\)/);
    expect(await item.getByTestId('adapter-details').textContent()).toMatch(
      /rank 8.*alpha 16.*35 modules/,
    );
    await page.getByRole('switch', { name: `Use ${imported}` }).check();
    expect(await greedy(page)).toBe(adapted);

    // A .zip of the adapter in a folder, dropped on the Model panel, goes to the library.
    const zip = zipSync(Object.fromEntries(files.map((f) => [`zimmy/${f.name}`, f.bytes])));
    await dropFiles(page, 'model', [{ name: 'zimmy.zip', bytes: zip }]);
    await expect.poll(() => item.count(), { timeout: 30_000 }).toBe(2);
    expect(await item.first().textContent()).toMatch(/^zimmy/);
    // Said where the user is looking, not only in the Library panel.
    await expect
      .poll(() => page.getByTestId('toast').textContent(), { timeout: 10_000 })
      .toMatch(/^zimmy.* is in the library\./);
    expect(await page.getByTestId('model-error').count()).toBe(0);
    await page.getByTestId('library').screenshot({ path: `${OUTPUT}adapters-library.png` });
    expect(problems).toEqual([]);
  });

  it('refuses an adapter for another model until told to keep it, then will not apply it', async () => {
    const page = await browser.newPage({
      viewport: { width: 1100, height: 1000 },
      colorScheme: 'dark',
    });
    const problems = watchProblems(page);
    await page.goto(inject('baseUrl'));
    await page.getByTestId('model-card').waitFor({ timeout: 60_000 });
    const qwen = PEFT_FILES.map((name) => ({ name, bytes: fixture(`${QWEN}/${name}`) }));

    // Dropped on the Data panel: the library takes it, the dataset is left alone.
    await dropFiles(page, 'data', qwen);
    const refusal = page.getByTestId('import-error');
    await refusal.waitFor({ timeout: 30_000 });
    expect(await refusal.innerText()).toMatch(
      /^Qwen2\.5-0\.5B-Instruct · lora r6: an adapter for Qwen\/Qwen2\.5-0\.5B-Instruct; the loaded model is stories260K \(built-in\)\. It does not fit this model:\n {2}model\.layers\.0\.self_attn\.q_proj: adapter expects in=896, model has 64/,
    );
    expect(await page.getByTestId('data-error').count()).toBe(0);
    expect(await page.getByTestId('data-summary').count()).toBe(0);
    const toast = page.getByTestId('toast');
    expect(await toast.getAttribute('role')).toBe('alert');
    expect(await toast.textContent()).toMatch(
      /^Not imported: Qwen2\.5-0\.5B-Instruct · lora r6: an adapter for Qwen\/Qwen2\.5-0\.5B-Instruct; .*\(details in the Library\)/,
    );
    await toast.getByRole('button', { name: 'Close the message' }).click();
    expect(await toast.count()).toBe(0);
    await page.getByTestId('library').screenshot({ path: `${OUTPUT}adapters-refused.png` });

    await refusal.getByRole('button', { name: 'Import anyway' }).click();
    const item = page.getByTestId('library-item');
    await expect.poll(() => item.count(), { timeout: 30_000 }).toBe(1);
    const warnings = await item.getByTestId('adapter-warnings').textContent();
    expect(warnings).toMatch(/does not fit stories260K \(built-in\)/);
    expect(warnings).toMatch(/trained on Qwen\/Qwen2\.5-0\.5B-Instruct/);
    expect(await item.getByTestId('adapter-details').textContent()).toMatch(
      /rank 6.*alpha 32.*48 modules.*q_proj, v_proj/,
    );

    // Using it fails in place and switches it off again (quickly: click, not check, which would
    // insist on seeing it on).
    const use = page.getByRole('switch', { name: 'Use Qwen2.5-0.5B-Instruct · lora r6' });
    await use.click();
    await expect
      .poll(() => item.getByTestId('adapter-use-error').count(), { timeout: 30_000 })
      .toBe(1);
    const useError = item.getByTestId('adapter-use-error');
    expect(await useError.innerText()).toMatch(
      /^Qwen2\.5-0\.5B-Instruct · lora r6: does not fit this model:\n {2}model\.layers/,
    );
    // 58 modules: the first eight are named, the rest counted.
    expect(await useError.innerText()).toMatch(/…and 50 more$/);
    expect(await use.isChecked()).toBe(false);
    expect(await activeLabel(page)).toBe('Base model');

    // The folder picker sends the files with their paths: the folder names the adapter.
    await page.getByTestId('adapter-folder').setInputFiles(`${FIXTURES}${QWEN}`);
    await expect
      .poll(() => refusal.innerText(), { timeout: 30_000 })
      .toMatch(
        /^MatthewZhang473_20251017_101834_r6_alpha32: an adapter for Qwen\/Qwen2\.5-0\.5B-Instruct; .* It does not fit this model/,
      );

    // PyTorch pickles are never loaded.
    await page
      .getByTestId('adapter-files')
      .setInputFiles(
        asInput([{ name: 'adapter_model.bin', bytes: new Uint8Array([0x80, 0x02, 0x7d, 0x71]) }]),
      );
    await expect
      .poll(() => page.getByTestId('import-error').textContent(), { timeout: 30_000 })
      .toMatch(/adapter_model\.bin: is a PyTorch pickle/);
    expect(await refusal.getByRole('button', { name: 'Import anyway' }).count()).toBe(0);

    // A truncated safetensors file is explained, not a crash.
    const config = fixture(`${QWEN}/adapter_config.json`);
    await page.getByTestId('adapter-files').setInputFiles(
      asInput([
        { name: 'adapter_config.json', bytes: config },
        {
          name: 'adapter_model.safetensors',
          bytes: fixture(`${QWEN}/adapter_model.safetensors`).subarray(0, 1000),
        },
      ]),
    );
    await expect
      .poll(() => page.getByTestId('import-error').textContent(), { timeout: 30_000 })
      .toMatch(/adapter_model\.safetensors: /);

    // A data file that is not UTF-8 is refused with what to do about it.
    await page
      .getByTestId('data-file')
      .setInputFiles(
        asInput([{ name: 'latin1.txt', bytes: Uint8Array.from([0x43, 0x61, 0x66, 0xe9, 0x0a]) }]),
      );
    await expect
      .poll(() => page.getByTestId('data-error').textContent(), { timeout: 30_000 })
      .toMatch(/latin1\.txt is not UTF-8 text: save it as UTF-8/);
    // …and the app keeps working: the library is still there and usable.
    expect(await page.getByTestId('library-item').count()).toBeGreaterThan(0);
    await page.screenshot({ path: `${OUTPUT}adapters-foreign.png`, fullPage: true });
    expect(problems).toEqual([]);
  });
});
