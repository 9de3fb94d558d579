// What the browser tests share: where screenshots go, the page's error watch, and the quick
// training setup on the built-in model and example dataset.
import type { Page } from 'playwright-core';
import { expect } from 'vitest';

export const OUTPUT = new URL('./output/', import.meta.url).pathname;

/** The page's errors and console errors, which a passing flow must not produce. */
export function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  return problems;
}

/** Waits for the built-in model, loads the example dataset and picks the quick preset with `steps` steps. */
export async function prepareQuickRun(page: Page, steps: number): Promise<void> {
  await page.getByTestId('model-card').waitFor({ timeout: 60_000 });
  await page.getByRole('button', { name: 'Use example dataset' }).click();
  await page.getByTestId('data-summary').waitFor({ timeout: 30_000 });
  await page.getByRole('button', { name: 'Quick (stories260K)' }).click();
  await page.getByTestId('steps').fill(String(steps));
  // The preset's sequence length re-tokenizes the data; Start waits for it.
  await expect
    .poll(() => page.getByRole('button', { name: 'Start training' }).isEnabled(), {
      timeout: 30_000,
    })
    .toBe(true);
  expect(await page.getByTestId('seq-len').inputValue()).toBe('64');
}
