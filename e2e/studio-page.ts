// What the browser tests share: where screenshots go, the page's error watch, and the quick
// training setup on the built-in model and example dataset.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
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

/**
 * Greedy text for `prompt` from the playground, with whatever it says it uses; when none comes
 * back, fails with what the playground shows instead (and a screenshot).
 */
export async function greedyText(page: Page, prompt: string, tokens: number): Promise<string> {
  await page.getByTestId('prompt').fill(prompt);
  await page.getByTestId('max-new-tokens').fill(String(tokens));
  await page.getByTestId('temperature').fill('0');
  await page.getByRole('button', { name: 'Generate' }).click();
  // The click renders the running state at once: the stats that come back are this run's.
  try {
    await page.getByTestId('generation-stats').waitFor({ timeout: 60_000 });
  } catch (e) {
    await page.screenshot({ path: `${OUTPUT}no-generation.png`, fullPage: true });
    const shown = await page.getByTestId('playground').innerText();
    throw new Error(`No generation came back; the playground shows:\n${shown}`, { cause: e });
  }
  return (await page.getByTestId('output').textContent()) ?? '';
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

/** axe-core's rules, run in the page (through the debugger protocol, so the app's CSP allows it). */
const AXE_SOURCE = readFileSync(
  createRequire(import.meta.url).resolve('axe-core/axe.min.js'),
  'utf8',
);

/** The accessibility scan's serious and critical findings on the page as it is: one line each. */
export async function seriousAccessibilityProblems(page: Page): Promise<string[]> {
  await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (o: object) => Promise<AxeResults> } }).axe;
    const results = await axe.run({ resultTypes: ['violations'] });
    return results.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map(
        (v) =>
          `${v.id} (${v.impact}): ${v.help} — ${v.nodes
            .map((n) => n.target.join(' '))
            .slice(0, 4)
            .join('; ')}`,
      );
  });
  return violations;
}

interface AxeResults {
  violations: {
    id: string;
    impact: string | null;
    help: string;
    nodes: { target: string[] }[];
  }[];
}
