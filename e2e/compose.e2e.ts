import { mkdirSync, readFileSync } from 'node:fs';
import { strFromU8, unzipSync } from 'fflate';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { findChromium, launchChromium } from '../src/testing/chromium.ts';
import {
  greedyText,
  OUTPUT,
  prepareQuickRun,
  watchProblems,
  seriousAccessibilityProblems,
} from './studio-page.ts';

const DATASETS = new URL('../public/datasets/', import.meta.url).pathname;
const ZIMMY = 'zimmy-stories · lora r8';
const SNORP = 'snorp-stories · lora r8';
/** Enough steps for each adapter to pick up its style (the report needs an improvement to keep). */
const STEPS = 8;

/** The last stories of a dataset: text in its style for the report. */
const lastStories = (file: string, count: number) =>
  readFileSync(`${DATASETS}${file}`, 'utf8')
    .trim()
    .split(/\n\s*\n/)
    .slice(-count)
    .join('\n\n');

/** Trains the Quick preset on the page's dataset; resolves once the library holds `expected` adapters. */
async function trainInto(page: Page, expected: number): Promise<void> {
  await page.getByRole('button', { name: 'Start training' }).click();
  await expect
    .poll(() => page.getByTestId('library-item').count(), { timeout: 90_000 })
    .toBe(expected);
}

/** Trains a zimmy and a snorp adapter through the UI. */
async function trainTwoStyles(page: Page): Promise<void> {
  await prepareQuickRun(page, STEPS);
  await trainInto(page, 1);
  await page.getByTestId('data-file').setInputFiles(`${DATASETS}snorp-stories.txt`);
  await expect
    .poll(() => page.getByTestId('data-summary').textContent(), { timeout: 30_000 })
    .toMatch(/snorp-stories\.txt/);
  await expect
    .poll(() => page.getByRole('button', { name: 'Start training' }).isEnabled(), {
      timeout: 30_000,
    })
    .toBe(true);
  await trainInto(page, 2);
}

const previewTexts = (page: Page) => page.getByTestId('compose').getByTestId('preview-text');

/** The preview's texts once every one has finished, by kind. */
async function finishedPreview(page: Page, count: number) {
  await expect
    .poll(
      async () => {
        const texts = previewTexts(page);
        const pending = await texts.and(page.locator('[data-pending="true"]')).count();
        return pending === 0 ? await texts.count() : -1;
      },
      { timeout: 60_000 },
    )
    .toBe(count);
  const texts = previewTexts(page);
  const byKind = async (kind: string) =>
    await texts
      .and(page.locator(`[data-kind="${kind}"]`))
      .locator('p')
      .allTextContents();
  return {
    base: (await byKind('base'))[0],
    alone: await byKind('alone'),
    composition: (await byKind('composition'))[0],
  };
}

describe.skipIf(!findChromium())('composing adapters in the studio page', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
    mkdirSync(OUTPUT, { recursive: true });
  });
  afterAll(() => browser.close());

  it('compares, previews and bakes two adapters, and reports on the merge', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
    const problems = watchProblems(page);
    await page.goto(inject('baseUrl'));
    await trainTwoStyles(page);
    const compose = page.getByTestId('compose');

    // On the board: the similarity matrix of the two, and their pair layer by layer.
    await compose.getByRole('checkbox', { name: ZIMMY }).check();
    await compose.getByRole('checkbox', { name: SNORP }).check();
    const matrix = compose.getByTestId('similarity-matrix');
    await matrix.waitFor({ timeout: 30_000 });
    const cells = await matrix.locator('td').allTextContents();
    expect(cells).toHaveLength(4);
    expect([cells[0], cells[3]]).toEqual(['1.00', '1.00']);
    expect(cells[1]).toMatch(/^-?[01]\.\d\d$/);
    expect(cells[2]).toBe(cells[1]);
    expect(await compose.getByTestId('pair-heatmap').locator('tbody tr').count()).toBe(5);

    // The board's switches and weights are the library's run-time composition.
    await compose.getByRole('switch', { name: `Apply ${ZIMMY} in the composition` }).check();
    await compose.getByRole('switch', { name: `Apply ${SNORP} in the composition` }).check();
    await compose.getByRole('slider', { name: `${SNORP}: composition weight` }).focus();
    for (let i = 0; i < 4; i++) await page.keyboard.press('ArrowLeft');
    expect(
      await compose
        .getByRole('spinbutton', { name: `${SNORP}: composition weight (number)` })
        .inputValue(),
    ).toBe('0.8');
    // In library order, the newest first.
    expect(await page.getByTestId('active-adapters').textContent()).toBe(
      `Base model + ${SNORP} × 0.80 + ${ZIMMY} × 1.00`,
    );

    // Preview: the base, each adapter alone and the composition, then the composition restored.
    await compose.getByRole('button', { name: 'Preview', exact: true }).click();
    const preview = await finishedPreview(page, 4);
    expect(preview.base).toMatch(/^Once upon a time/);
    expect(preview.alone).toHaveLength(2);
    expect(preview.composition).toMatch(/^Once upon a time/);
    expect(preview.composition).not.toBe(preview.base);
    await page.getByTestId('prompt').fill('Once upon a time');
    await page.getByTestId('max-new-tokens').fill('40');
    await page.getByTestId('temperature').fill('0');
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.getByTestId('generation-stats').waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('output').textContent()).toBe(preview.composition);

    // The merge card shows what the method reads; the factor-space ones say they approximate.
    const method = compose.getByTestId('merge-method');
    await method.selectOption('ties');
    expect(await compose.getByTestId('method-summary').textContent()).toMatch(
      /approximate: cross terms/,
    );
    await method.selectOption('ties_svd');
    const card = compose.getByTestId('merge-card');
    expect(await compose.getByTestId('method-summary').textContent()).not.toMatch(/approximate/);
    for (const field of ['Density', 'Majority sign', 'TIES divisor', 'Output rank'])
      expect(await card.getByLabel(field).count(), field).toBe(1);
    expect(await card.getByLabel('Gamma').count()).toBe(0);
    await compose.getByRole('button', { name: 'Ramp up' }).click();

    await compose.getByRole('button', { name: 'Bake' }).click();
    const result = compose.getByTestId('bake-result');
    await result.waitFor({ timeout: 60_000 });
    const merged = `ties_svd of ${ZIMMY} + ${SNORP}`;
    expect(await result.textContent()).toMatch(`${merged} is in the library`);
    expect(await compose.getByTestId('merged-rank').textContent()).toBe('8');
    await expect.poll(() => page.getByTestId('library-item').count(), { timeout: 10_000 }).toBe(3);
    expect(await page.getByTestId('library-item').first().textContent()).toMatch(
      /merged: ties_svd of/,
    );

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      result.getByRole('button', { name: `Download ${merged} as a zip` }).click(),
    ]);
    const zip = unzipSync(new Uint8Array(readFileSync(await download.path())));
    const recipePath = Object.keys(zip).find((p) => p.endsWith('merge_recipe.json'));
    expect(recipePath, Object.keys(zip).join(', ')).toBeDefined();
    const recipe = JSON.parse(strFromU8(zip[recipePath!])) as {
      spec: { method: string; adapters: { weight: number }[]; layerGrid?: unknown };
    };
    expect(recipe.spec.method).toBe('ties_svd');
    expect(recipe.spec.adapters.map((a) => a.weight)).toEqual([1, 0.8]);
    expect(recipe.spec.layerGrid).toBeDefined();

    // The board as mergekit YAML, and back; the grid has no mergekit form, and that is said.
    const [yamlFile] = await Promise.all([
      page.waitForEvent('download'),
      card.getByRole('button', { name: 'Export mergekit YAML' }).click(),
    ]);
    const yaml = readFileSync(await yamlFile.path(), 'utf8');
    expect(yaml).toMatch(/^merge_method: ties$/m);
    expect(yaml).toContain(ZIMMY);
    expect(yaml).toContain(SNORP);
    expect(await card.getByTestId('mergekit-status').textContent()).toMatch(
      /mergekit cannot say: .*the layer × module grid/,
    );
    await method.selectOption('svd');
    await card.getByTestId('mergekit-file').setInputFiles({
      name: 'mergekit.yaml',
      mimeType: 'application/yaml',
      buffer: Buffer.from(yaml),
    });
    await expect
      .poll(() => card.getByTestId('mergekit-status').textContent(), { timeout: 10_000 })
      .toMatch(/^2 adapters from mergekit\.yaml on the board/);
    expect(await method.inputValue()).toBe('ties_svd');
    expect(
      await compose
        .getByRole('spinbutton', { name: `${SNORP}: composition weight (number)` })
        .inputValue(),
    ).toBe('0.8');

    // The report: losses per eval text, the share kept; the sweep marks its best weight.
    const texts = compose.getByTestId('eval-text');
    await texts.nth(0).fill(lastStories('zimmy-stories.txt', 3));
    await texts.nth(1).fill(lastStories('snorp-stories.txt', 3));
    await compose.getByRole('button', { name: 'Run report' }).click();
    const rows = compose.getByTestId('report-row');
    await expect.poll(() => rows.count(), { timeout: 60_000 }).toBe(2);
    // Its eval text, tokens, four losses (base, each alone, merged) and the share kept.
    expect(await rows.nth(0).textContent()).toMatch(
      new RegExp(`^${ZIMMY}\\d+(\\d\\.\\d{3}){4}-?\\d+ %$`),
    );
    await compose.getByRole('button', { name: 'Sweep' }).click();
    const sweep = compose.getByTestId('sweep-chart');
    await sweep.waitFor({ timeout: 60_000 });
    expect(Number(await sweep.getAttribute('data-best-weight'))).toBeGreaterThanOrEqual(0);
    // Intruder dimensions of the merge and of each source: a count per adapter.
    await compose.getByRole('button', { name: 'Intruder dimensions' }).click();
    const intruders = compose.getByTestId('merge-intruders-table').locator('tbody tr');
    await expect.poll(() => intruders.count(), { timeout: 60_000 }).toBe(3);
    expect(await intruders.nth(0).innerText()).toMatch(/\(merged\)\s+\d+\s+\d+$/);
    for (const name of [ZIMMY, SNORP])
      expect(await intruders.filter({ hasText: name }).last().innerText()).toMatch(/\s\d+\s+\d+$/);

    // Live: a weight that settles generates the preview again; at 0 the composition is zimmy alone.
    await compose
      .getByRole('spinbutton', { name: `${SNORP}: composition weight (number)` })
      .fill('0');
    await expect
      .poll(
        () =>
          previewTexts(page)
            .filter({ hasText: `${SNORP} × 0.00 alone` })
            .count(),
        {
          timeout: 30_000,
        },
      )
      .toBe(1);
    const live = await finishedPreview(page, 4);
    expect(live.composition).toBe(live.alone[1]);

    await compose.screenshot({ path: `${OUTPUT}compose.png` });
    await page.emulateMedia({ colorScheme: 'dark' });
    await compose.screenshot({ path: `${OUTPUT}compose-dark.png` });
    await page.emulateMedia({ colorScheme: 'light' });

    // One composition: taken off the board, an adapter is no longer applied; switched on in the
    // library, it is back on the board; and the board survives a reload, applied again.
    const active = () => page.getByTestId('active-adapters').textContent();
    await compose.getByRole('button', { name: `Take ${ZIMMY} off the board` }).click();
    await expect.poll(active).toBe(`Base model + ${SNORP} × 0.00`);
    expect(await page.getByRole('switch', { name: `Use ${ZIMMY}` }).isChecked()).toBe(false);
    await page.getByRole('switch', { name: `Use ${ZIMMY}` }).check();
    await expect
      .poll(() => compose.getByTestId('board-card').locator('strong').allInnerTexts())
      .toEqual([SNORP, ZIMMY]);
    await compose
      .getByRole('spinbutton', { name: `${SNORP}: composition weight (number)` })
      .fill('0.5');
    await expect.poll(active).toBe(`Base model + ${SNORP} × 0.50 + ${ZIMMY} × 1.00`);
    const before = await greedyText(page, 'Once upon a time', 40);
    await page.reload();
    await page.getByTestId('model-card').waitFor({ timeout: 60_000 });
    await expect
      .poll(active, { timeout: 30_000 })
      .toBe(`Base model + ${SNORP} × 0.50 + ${ZIMMY} × 1.00`);
    // Applied in the worker, not only shown: the same text as before the reload.
    await expect
      .poll(() => greedyText(page, 'Once upon a time', 40), { timeout: 60_000 })
      .toBe(before);
    expect(
      await page
        .getByTestId('compose')
        .getByRole('spinbutton', { name: `${SNORP}: composition weight (number)` })
        .inputValue(),
    ).toBe('0.5');
    // The page as the run left it: the accessibility scan finds nothing serious.
    expect(await seriousAccessibilityProblems(page)).toEqual([]);
    expect(problems).toEqual([]);
  });
});
