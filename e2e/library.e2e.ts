import { mkdirSync, readFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { findChromium, launchChromium } from '../src/testing/chromium.ts';
import { startFakeHub } from '../src/testing/fake-hub.ts';
import { fixture } from '../src/testing/fixtures.ts';
import {
  OUTPUT,
  prepareQuickRun,
  watchProblems,
  seriousAccessibilityProblems,
} from './studio-page.ts';

const TRAINED = 'zimmy-stories · lora r8';
const QWEN = 'adapters/qwen2.5-0.5b-instruct/MatthewZhang473_20251017_101834_r6_alpha32';
/** What the library calls the Qwen adapter's loose files: its base model, variant and rank. */
const QWEN_NAME = 'Qwen2.5-0.5B-Instruct · lora r6';

/** The library row whose title is exactly `name`. */
const row = (page: Page, name: string) =>
  page
    .getByTestId('library-item')
    .filter({ has: page.getByRole('button', { name: `Rename ${name}`, exact: true }) });

async function renameTo(page: Page, from: string, to: string): Promise<void> {
  await page.getByRole('button', { name: `Rename ${from}`, exact: true }).click();
  const field = page.getByRole('textbox', { name: `New name for ${from}` });
  await field.fill(to);
  await field.press('Enter');
  await row(page, to).waitFor({ timeout: 10_000 });
}

describe.skipIf(!findChromium())('the adapter library', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
    mkdirSync(OUTPUT, { recursive: true });
  });
  afterAll(() => browser.close());

  it('renames, duplicates, inspects (intruders too), exports as GGUF, shares compressed and cuts the rank of a library adapter', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1300 } });
    const problems = watchProblems(page);
    await page.goto(inject('baseUrl'));
    // A few steps are enough for an adapter that fits the built-in model; DyLoRA, so that the
    // Library offers to cut its rank.
    await prepareQuickRun(page, 3);
    await page.getByText('Advanced settings').click();
    // Orthogonal adaptation shows its basis (seed, slice, the next free slice); back to LoRA.
    await page.getByTestId('init').selectOption('orthogonal');
    expect(await page.getByTestId('basis-slice').inputValue()).toBe('0');
    expect(await page.getByTestId('next-free-slice').innerText()).toBe('Next free slice (0)');
    await page.getByTestId('init').selectOption('lora');
    expect(await page.getByTestId('basis-seed').count()).toBe(0);
    await page.getByTestId('dylora').check();
    await page.getByRole('button', { name: 'Start training' }).click();
    await row(page, TRAINED).waitFor({ timeout: 90_000 });
    expect(await row(page, TRAINED).getByTestId('fits-chip').textContent()).toBe(
      'fits stories260K (built-in)',
    );

    // A blank name is refused in place; Escape leaves the name and hands the focus back to the
    // Rename button; Enter renames.
    await page.getByRole('button', { name: `Rename ${TRAINED}` }).click();
    await page.keyboard.press('Delete');
    await page.keyboard.press('Enter');
    expect(await page.getByTestId('rename-error').innerText()).toBe('An adapter needs a name.');
    await page.keyboard.type('never saved');
    await page
      .getByTestId('library-item')
      .filter({ has: page.getByTestId('rename-input') })
      .screenshot({ path: `${OUTPUT}library-rename.png` });
    await page.keyboard.press('Escape');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe(
      `Rename ${TRAINED}`,
    );
    await renameTo(page, TRAINED, 'zimmy v1');
    await page.reload();
    await row(page, 'zimmy v1').getByTestId('fits-chip').waitFor({ timeout: 60_000 });

    await page.getByRole('button', { name: 'Duplicate zimmy v1' }).click();
    await row(page, 'zimmy v1 (copy)').waitFor({ timeout: 10_000 });
    expect(await page.getByTestId('library-item').count()).toBe(2);

    // Inspection: a number per module (5 layers × 7 types), then a cell's spectrum.
    const original = row(page, 'zimmy v1');
    await original.getByRole('button', { name: 'Inspect zimmy v1' }).click();
    const cells = original.getByTestId('inspect-heatmap').getByRole('button');
    await expect.poll(() => cells.count(), { timeout: 30_000 }).toBe(35);
    for (const text of await cells.allTextContents()) expect(text).toMatch(/^\d[\d.e-]*$/);
    await original.getByTestId('inspector').screenshot({ path: `${OUTPUT}library-norms.png` });
    await original.getByRole('button', { name: 'rank 90 %' }).click();
    for (const text of await cells.allTextContents()) expect(text).toMatch(/^[1-8]$/);
    await original.getByRole('button', { name: /^model\.layers\.2\.self_attn\.k_proj:/ }).click();
    const chart = original.getByTestId('spectrum-chart');
    expect(Number(await chart.getAttribute('data-values'))).toBeGreaterThan(1);
    expect(await chart.locator('.spectrum-bars rect').count()).toBe(
      Number(await chart.getAttribute('data-values')),
    );
    expect(await original.getByTestId('spectrum').locator('h4').textContent()).toMatch(
      /^model\.layers\.2\.self_attn\.k_proj 32 × 64$/,
    );
    // Intruder dimensions against the loaded model: a count (0…10) per module, and a total.
    await original.getByRole('button', { name: 'intruders' }).click();
    await original
      .getByTestId('intruders-status')
      .getByText(/in all\.$/)
      .waitFor({ timeout: 60_000 });
    await expect.poll(() => cells.count(), { timeout: 10_000 }).toBe(35);
    for (const text of await cells.allTextContents()) expect(text).toMatch(/^(\d|10)$/);
    await original.getByTestId('inspector').screenshot({ path: `${OUTPUT}library-intruders.png` });

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download zimmy v1 as a GGUF LoRA for llama.cpp' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe('zimmy-v1.gguf');
    const gguf = readFileSync(await download.path());
    expect(gguf.subarray(0, 4).toString('latin1')).toBe('GGUF');

    // Shared compressed: the cost on an eval text, the .compeft file, imported back as an adapter.
    await original.getByRole('button', { name: 'Share compressed… (zimmy v1)' }).click();
    const share = original.getByTestId('compress-share');
    await share.getByTestId('compress-density').selectOption('0.3');
    await share
      .getByTestId('compress-eval-text')
      .fill('Zimmy the robot rolled to the park. Zimmy saw a big red ball and said beep beep.');
    await share.getByRole('button', { name: 'Compress', exact: true }).click();
    const compressed = share.getByRole('button', { name: '⤓ zimmy-v1.compeft' });
    await compressed.waitFor({ timeout: 90_000 });
    expect(await share.getByTestId('compress-status').innerText()).toMatch(
      /^Share compressed: [\d.]+× smaller \([\d.]+ [KMG]iB\), [+-][\d.]+ % perplexity \([\d.]+ → [\d.]+\)/,
    );
    const [shared] = await Promise.all([page.waitForEvent('download'), compressed.click()]);
    await page.getByTestId('adapter-files').setInputFiles({
      name: 'zimmy-v1.compeft',
      mimeType: '',
      buffer: readFileSync(await shared.path()),
    });
    await row(page, 'zimmy-v1').waitFor({ timeout: 30_000 });

    // Trained with DyLoRA: the perplexity at every rank on the same eval text, and a cut to rank 4
    // added beside it (a plain PEFT LoRA of rank 4).
    await original.getByRole('button', { name: 'Cut rank… (zimmy v1)' }).click();
    const cut = original.getByTestId('rank-cut');
    await cut.getByRole('button', { name: 'Measure every rank' }).click();
    const rows = cut.getByTestId('rank-cut-table').locator('tbody tr');
    await expect.poll(() => rows.count(), { timeout: 60_000 }).toBe(8);
    for (const text of await rows.allInnerTexts())
      expect(text).toMatch(/^\d\s+[\d.]+ [KM]iB\s+[\d.]+$/);
    await cut.getByTestId('rank-cut-rank').fill('4');
    expect(await cut.getByTestId('rank-cut-cost').innerText()).toMatch(
      /^Rank 4: [\d.]+ KiB, perplexity [\d.]+$/,
    );
    await cut.screenshot({ path: `${OUTPUT}library-rank-cut.png` });
    await cut.getByRole('button', { name: 'Cut to rank 4' }).click();
    await row(page, 'zimmy v1 · rank 4').waitFor({ timeout: 30_000 });
    expect(await row(page, 'zimmy v1 · rank 4').innerText()).toMatch(/cut to rank 4 from zimmy v1/);

    // An adapter for another model: kept on request, marked, and no GGUF for this model.
    await page.getByTestId('adapter-files').setInputFiles(
      ['adapter_config.json', 'adapter_model.safetensors'].map((name) => ({
        name,
        mimeType: '',
        buffer: Buffer.from(fixture(`${QWEN}/${name}`)),
      })),
    );
    await page.getByRole('button', { name: 'Import anyway' }).click();
    const foreign = row(page, QWEN_NAME);
    await foreign.waitFor({ timeout: 30_000 });
    const chip = foreign.getByTestId('fits-chip');
    expect(await chip.textContent()).toBe('does not fit');
    expect(await chip.getAttribute('title')).toMatch(
      /^does not fit this model:\n {2}model\.layers/,
    );
    await page
      .getByRole('button', { name: `Download ${QWEN_NAME} as a GGUF LoRA for llama.cpp` })
      .click();
    await foreign.getByTestId('gguf-error').waitFor({ timeout: 10_000 });
    expect(await foreign.getByTestId('gguf-error').innerText()).toMatch(
      /^No GGUF of Qwen2\.5-0\.5B-Instruct · lora r6 for stories260K \(built-in\): it is an adapter for Qwen\/Qwen2\.5-0\.5B-Instruct, and a GGUF LoRA is written from its base model's config/,
    );

    await page.getByTestId('library').screenshot({ path: `${OUTPUT}library-inspect.png` });
    // The page as the run left it: the accessibility scan finds nothing serious.
    expect(await seriousAccessibilityProblems(page)).toEqual([]);
    expect(problems).toEqual([]);
  });

  it('pushes a library adapter to the Hub (a fake one on 127.0.0.1) under the built CSP', async () => {
    const token = 'hf_e2e_write_token_0123456789';
    const hub = await startFakeHub({}, { tokens: { [token]: 'write' } });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      const problems = watchProblems(page);
      await page.goto(`${inject('baseUrl')}?hub=${encodeURIComponent(hub.baseUrl)}`);
      const files = ['adapter_config.json', 'adapter_model.safetensors'];
      await page.getByTestId('adapter-files').setInputFiles(
        files.map((name) => ({
          name,
          mimeType: '',
          buffer: Buffer.from(fixture(`${QWEN}/${name}`)),
        })),
      );
      await page.getByRole('button', { name: 'Import anyway' }).click();
      const item = row(page, QWEN_NAME);
      await item.waitFor({ timeout: 30_000 });
      await item.getByRole('button', { name: `Push to Hub… (${QWEN_NAME})` }).click();
      await item.getByTestId('push-repo').fill('erin/qwen-adapter');
      await item.getByTestId('push-token').fill(token);
      expect(await item.getByTestId('push-token').getAttribute('type')).toBe('password');
      await item.getByRole('button', { name: `Push ${QWEN_NAME} to the Hub` }).click();
      await item.getByTestId('push-result').waitFor({ timeout: 60_000 });
      expect(await item.getByTestId('push-result').innerText()).toMatch(
        /^Pushed 3 files to erin\/qwen-adapter \(new repo, model card written\): commit [0-9a-f]{7}/,
      );
      // The library now knows the adapter by that repo and commit: a link can name it.
      const commit = hub.commits.at(-1)!.oid;
      await expect
        .poll(() => item.getByTestId('adapter-hub').innerText(), { timeout: 10_000 })
        .toBe(`On the Hub: erin/qwen-adapter@${commit.slice(0, 7)}`);
      const pushed = hub.repoFiles('erin/qwen-adapter')!;
      for (const name of files) expect(pushed.get(name), name).toEqual(fixture(`${QWEN}/${name}`));
      expect(new TextDecoder().decode(pushed.get('README.md'))).toMatch(
        /^---\nbase_model: Qwen\/Qwen2\.5-0\.5B-Instruct\n/,
      );
      // The weights went to the storage without the token; the token was kept nowhere.
      expect(hub.uploads.filter((c) => c.path.startsWith('/lfs-storage/'))).toEqual([
        expect.objectContaining({ method: 'PUT', authorization: false }),
      ]);
      expect(page.url()).not.toContain(token);
      expect(await page.evaluate(() => JSON.stringify(localStorage))).not.toContain(token);
      await item.getByTestId('hub-push').screenshot({ path: `${OUTPUT}library-push.png` });
      expect(problems).toEqual([]);
    } finally {
      await hub.close();
    }
  });
});
