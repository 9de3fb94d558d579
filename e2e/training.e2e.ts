import { unzipSync } from 'fflate';
import { mkdirSync, readFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { findChromium, launchChromium } from '../src/testing/chromium.ts';
import {
  OUTPUT,
  prepareQuickRun,
  watchProblems,
  seriousAccessibilityProblems,
} from './studio-page.ts';

const step = async (page: Page) => Number(await page.getByTestId('train-step').textContent());

/** "validation loss from 5.123 at step 0 to 2.345 at step 8" → [5.123, 2.345]. */
async function validationLosses(page: Page): Promise<number[]> {
  const label = (await page.getByTestId('loss-chart').getAttribute('aria-label')) ?? '';
  const match = /validation loss from ([\d.]+) at step \d+ to ([\d.]+)/.exec(label);
  return match ? [Number(match[1]), Number(match[2])] : [];
}

describe.skipIf(!findChromium())('training in the studio page', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
    mkdirSync(OUTPUT, { recursive: true });
  });
  afterAll(() => browser.close());

  it('fine-tunes the built-in model on the example dataset, draws the curves and keeps the adapter', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const problems = watchProblems(page);
    await page.goto(inject('baseUrl'));
    await prepareQuickRun(page, 8);
    expect(await page.getByTestId('data-summary').textContent()).toMatch(
      /zimmy-stories\.txt.*plain text.*120/,
    );
    expect(await page.getByTestId('data-preview').textContent()).toMatch(/Zimmy/);

    await page.getByRole('button', { name: 'Start training' }).click();
    await expect.poll(() => step(page), { timeout: 60_000 }).toBeGreaterThanOrEqual(3);
    await page.getByTestId('train').screenshot({ path: `${OUTPUT}training-mid-run.png` });

    const outcome = page.getByTestId('train-outcome');
    await outcome.waitFor({ timeout: 90_000 });
    expect(await outcome.textContent()).toMatch(/^Done: 8 steps.*The adapter is in the library/);
    const chart = page.getByTestId('loss-chart');
    expect(await chart.getAttribute('data-train-points')).toBe('8');
    // Evaluated before the first step and after the last.
    expect(Number(await chart.getAttribute('data-validation-points'))).toBeGreaterThanOrEqual(2);
    const [first, last] = await validationLosses(page);
    expect(last, `validation loss ${first} → ${last}`).toBeLessThan(first);
    expect(await page.getByTestId('train-samples').textContent()).toMatch(/^Once upon a time/);

    const item = page.getByTestId('library-item');
    await expect.poll(() => item.count(), { timeout: 10_000 }).toBe(1);
    expect(await item.textContent()).toMatch(/zimmy-stories · lora r8.*trained.*8\/8 steps/);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      item.getByRole('button', { name: /Download adapter_model\.safetensors/ }).click(),
    ]);
    expect(download.suggestedFilename()).toBe('adapter_model.safetensors');

    // The run handed to Axolotl: what it cannot express is listed before the download.
    const handoff = page.getByTestId('run-export');
    await handoff.getByTestId('run-export-target').selectOption('axolotl');
    expect(await handoff.getByTestId('run-export-lost').textContent()).toMatch(
      /Validation sequences per evaluation/,
    );
    await handoff.screenshot({ path: `${OUTPUT}training-export.png` });
    const [zip] = await Promise.all([
      page.waitForEvent('download'),
      handoff.getByRole('button', { name: 'Download .zip' }).click(),
    ]);
    expect(zip.suggestedFilename()).toBe('zimmy-stories-lora-r8-axolotl.zip');
    expect(Object.keys(unzipSync(readFileSync(await zip.path())))).toEqual(
      expect.arrayContaining([
        'zimmy-stories-lora-r8-axolotl/data/train.jsonl',
        'zimmy-stories-lora-r8-axolotl/axolotl.yaml',
        'zimmy-stories-lora-r8-axolotl/README.md',
      ]),
    );
    await page.screenshot({ path: `${OUTPUT}training-done.png`, fullPage: true });
    // The page as the run left it: the accessibility scan finds nothing serious.
    expect(await seriousAccessibilityProblems(page)).toEqual([]);
    expect(problems).toEqual([]);
  });

  it('pauses and stops a SORSA run, and continues it after a reload from its saved checkpoint', async () => {
    const page = await browser.newPage({
      viewport: { width: 1100, height: 900 },
      colorScheme: 'dark',
    });
    const problems = watchProblems(page);
    await page.goto(inject('baseUrl'));
    await prepareQuickRun(page, 12);
    await page.getByText('Advanced settings').click();
    await page.getByTestId('checkpoint-every').fill('3');
    // SORSA: its trained core and orthonormality curve must survive the reload too.
    await page.getByTestId('init').selectOption('sorsa');
    await page.getByTestId('sorsa-gamma').fill('0.001');
    await page.getByRole('button', { name: 'Start training' }).click();
    await expect.poll(() => step(page), { timeout: 60_000 }).toBeGreaterThanOrEqual(2);
    expect(await page.getByTestId('orthonormality').textContent()).toMatch(/^\d\.\d\de[-+]\d+$/);
    await page.getByRole('button', { name: 'Pause' }).click();
    await expect
      .poll(() => page.getByTestId('train-phase').textContent(), { timeout: 30_000 })
      .toBe('Paused.');
    const pausedAt = await step(page);
    await page.waitForTimeout(1_500);
    expect(await step(page)).toBe(pausedAt);
    // No time left counting down while paused.
    expect(
      await page.getByTestId('train-progress').locator('label span').first().textContent(),
    ).toMatch(/ · paused$/);
    await page.getByRole('button', { name: 'Resume' }).click();
    await expect.poll(() => step(page), { timeout: 30_000 }).toBeGreaterThan(pausedAt);
    await expect.poll(() => step(page), { timeout: 30_000 }).toBeGreaterThanOrEqual(3);
    await page.getByRole('button', { name: 'Stop' }).click();
    await page.getByTestId('train-outcome').waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('train-outcome').textContent()).toMatch(/^Stopped after/);

    await page.reload();
    await page.getByTestId('model-card').waitFor({ timeout: 60_000 });
    const banner = page.getByTestId('saved-run');
    await banner.waitFor({ timeout: 30_000 });
    expect(await banner.textContent()).toMatch(
      /A run on zimmy-stories\.txt stopped at step ([3-9]|1[01]) of 12/,
    );
    expect(
      Number(await banner.getByTestId('loss-chart').getAttribute('data-train-points')),
    ).toBeGreaterThanOrEqual(3);
    await page.getByTestId('train').screenshot({ path: `${OUTPUT}training-resume-banner.png` });
    // The dataset survived the reload too, prepared again for the model.
    await expect
      .poll(() => page.getByTestId('data-summary').textContent(), { timeout: 30_000 })
      .toMatch(/zimmy-stories\.txt/);

    await banner.getByRole('button', { name: 'Resume' }).click();
    // The form shows the resumed run's settings, not its defaults.
    expect(await page.getByTestId('steps').inputValue()).toBe('12');
    expect(await page.getByTestId('init').inputValue()).toBe('sorsa');
    const outcome = page.getByTestId('train-outcome');
    await outcome.waitFor({ timeout: 90_000 });
    expect(await outcome.textContent()).toMatch(/^Done: 12 steps/);
    expect(await page.getByTestId('loss-chart').getAttribute('data-train-points')).toBe('12');
    expect(await page.getByTestId('orthonormality-chart').getAttribute('data-train-points')).toBe(
      '12',
    );
    // Finished: nothing left to resume; the stopped and the finished adapter are both kept.
    expect(await page.getByTestId('saved-run').count()).toBe(0);
    expect(await page.getByTestId('library-item').count()).toBe(2);
    await page.screenshot({ path: `${OUTPUT}training-resumed.png`, fullPage: true });

    // The finished run, its curves and settings survive another reload.
    await page.reload();
    await page.getByTestId('model-card').waitFor({ timeout: 60_000 });
    expect(await page.getByTestId('train-outcome').textContent()).toMatch(/^Done: 12 steps/);
    expect(await page.getByTestId('loss-chart').getAttribute('data-train-points')).toBe('12');
    expect(await page.getByTestId('orthonormality-chart').getAttribute('data-train-points')).toBe(
      '12',
    );
    expect(await page.getByTestId('steps').inputValue()).toBe('12');
    expect(await page.getByTestId('init').inputValue()).toBe('sorsa');
    expect(problems).toEqual([]);
  });
});
