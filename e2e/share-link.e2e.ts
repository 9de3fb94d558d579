import { mkdirSync, readFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readLlama2c } from '../src/model/llama2c.ts';
import { findChromium, launchChromium } from '../src/testing/chromium.ts';
import { startFakeHub, type FakeHub } from '../src/testing/fake-hub.ts';
import { builtIn } from '../src/testing/fixtures.ts';
import { randomAdapterFiles } from '../src/testing/random-adapter.ts';
import { OUTPUT, watchProblems } from './studio-page.ts';

/** A random q/v LoRA for the built-in model, as a Hub repo holds it. */
function storiesAdapter(seed: number) {
  const { config } = readLlama2c(builtIn('stories260K.bin'), 'stories260K.bin');
  return randomAdapterFiles(config, {
    seed,
    rank: 4,
    alpha: 8,
    range: 0.3,
    baseModel: 'stories260K (built-in)',
    modules: ['q_proj', 'v_proj'],
  });
}

const weightField = (page: Page, name: string) =>
  page.getByRole('spinbutton', { name: `${name}: composition weight (number)` });

describe.skipIf(!findChromium())('a composition shared as a link', () => {
  let browser: Browser;
  let hub: FakeHub;
  beforeAll(async () => {
    browser = await launchChromium();
    const card = new TextEncoder().encode('---\nbase_model: stories260K\n---\n\n# Zimmy\n');
    hub = await startFakeHub({
      'erin/zimmy': storiesAdapter(1).set('README.md', card),
      'erin/snorp': storiesAdapter(2),
    });
    mkdirSync(OUTPUT, { recursive: true });
  });
  afterAll(async () => {
    await browser.close();
    await hub.close();
  });

  it('is made from a board of Hub adapters and opens it in a browser that has none of them; the library travels as one zip', async () => {
    const studio = `${inject('baseUrl')}?hub=${encodeURIComponent(hub.baseUrl)}`;
    const sender = await browser.newContext({ viewport: { width: 1280, height: 1200 } });
    const page = await sender.newPage();
    const problems = watchProblems(page);
    await page.goto(studio);
    await page.getByTestId('model-card').waitFor({ timeout: 60_000 });

    // Two adapters from the Hub by repo id; a typo is refused in one line.
    const importHub = async (id: string) => {
      await page.getByTestId('hub-adapter-id').fill(id);
      await page.getByRole('button', { name: 'Import from the Hub' }).click();
    };
    await importHub('erin/zim my');
    expect(await page.getByTestId('import-error').innerText()).toBe(
      '"erin/zim my" is not a Hub repo id: give owner/name, or owner/name@revision',
    );
    for (const name of ['zimmy', 'snorp']) {
      await importHub(`erin/${name}`);
      await expect
        .poll(() => page.getByTestId('import-status').innerText(), { timeout: 30_000 })
        .toBe(`Imported ${name}.`);
    }
    expect(await page.getByTestId('adapter-hub').allInnerTexts()).toEqual([
      'On the Hub: erin/snorp',
      'On the Hub: erin/zimmy',
    ]);
    // A repo's model card came along: the library shows it (snorp's repo has none).
    expect(await page.getByRole('button', { name: 'Model card of snorp' }).count()).toBe(0);
    await page.getByRole('button', { name: 'Model card of zimmy' }).click();
    await expect
      .poll(() => page.getByTestId('model-card-text').textContent())
      .toMatch(/^---\nbase_model: stories260K\n---\n\n# Zimmy/);

    // The board: zimmy at 0.6, snorp on the board but off; TIES at density 0.3; a prompt.
    const compose = page.getByTestId('compose');
    for (const name of ['zimmy', 'snorp'])
      await compose.getByTestId('compose-picker').getByLabel(name).check();
    await compose.getByRole('switch', { name: 'Apply zimmy in the composition' }).check();
    await weightField(page, 'zimmy').fill('0.6');
    await compose.getByTestId('merge-method').selectOption('ties');
    await compose.getByRole('spinbutton', { name: /^Density/ }).fill('0.3');
    await compose.getByTestId('preview-prompt').fill('The fox said');
    await compose.getByRole('button', { name: 'Make link' }).click();
    const link = await compose.getByTestId('share-link-url').inputValue();
    expect(link).toMatch(/#compose=[\w-]+$/);
    await compose.getByTestId('share-link').screenshot({ path: `${OUTPUT}share-link.png` });
    // A change to the board takes the link away until it is made again.
    await weightField(page, 'zimmy').fill('0.7');
    await expect.poll(() => compose.getByTestId('share-link-url').count()).toBe(0);

    // Another browser profile: an empty library. Opening the link downloads both adapters and
    // sets the board, the switches, the weights, the merge card and the prompt.
    const reader = await browser.newContext({ viewport: { width: 1280, height: 1200 } });
    const opened = await reader.newPage();
    const readerProblems = watchProblems(opened);
    await opened.goto(link);
    await opened.getByTestId('opened-link').waitFor({ timeout: 90_000 });
    expect(await opened.getByTestId('opened-link').innerText()).toMatch(
      /^Opened a shared composition: zimmy, snorp on the board, 2 downloaded from the Hub\./,
    );
    const board = opened.getByTestId('compose').getByTestId('board-card');
    expect(await board.locator('strong').allInnerTexts()).toEqual(['zimmy', 'snorp']);
    expect(await weightField(opened, 'zimmy').inputValue()).toBe('0.6');
    expect(
      await opened.getByRole('switch', { name: 'Apply zimmy in the composition' }).isChecked(),
    ).toBe(true);
    expect(
      await opened.getByRole('switch', { name: 'Apply snorp in the composition' }).isChecked(),
    ).toBe(false);
    expect(await opened.getByTestId('merge-method').inputValue()).toBe('ties');
    expect(await opened.getByRole('spinbutton', { name: /^Density/ }).inputValue()).toBe('0.3');
    expect(await opened.getByTestId('preview-prompt').inputValue()).toBe('The fox said');
    // The link has done its work: a reload shows the board as the reader leaves it.
    expect(new URL(opened.url()).hash).toBe('');
    await opened
      .getByTestId('compose')
      .screenshot({ path: `${OUTPUT}share-link-opened.png`, animations: 'disabled' });

    // The sender's whole library, exported as one zip and restored in a third profile.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Export library (.zip)' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe('lora-studio-library.zip');
    expect(await page.getByTestId('library-storage').innerText()).toMatch(
      /^Kept in this browser: .* used of .* available/,
    );
    const third = await browser.newContext({ viewport: { width: 1280, height: 1200 } });
    const restored = await third.newPage();
    const restoredProblems = watchProblems(restored);
    await restored.goto(studio);
    await restored.getByTestId('model-card').waitFor({ timeout: 60_000 });
    await restored.getByTestId('library-restore').setInputFiles({
      name: download.suggestedFilename(),
      mimeType: 'application/zip',
      buffer: readFileSync(await download.path()),
    });
    await expect
      .poll(() => restored.getByTestId('import-status').innerText(), { timeout: 30_000 })
      .toBe('Imported 2 adapters from lora-studio-library.zip.');
    expect((await restored.getByTestId('adapter-hub').allInnerTexts()).sort()).toEqual([
      'On the Hub: erin/snorp',
      'On the Hub: erin/zimmy',
    ]);
    await restored
      .getByTestId('library')
      .screenshot({ path: `${OUTPUT}library-restored.png`, animations: 'disabled' });
    expect(restoredProblems).toEqual([]);
    await third.close();

    // A damaged link, pasted into the address bar, is refused in one line.
    await opened.goto(`${studio}#compose=eyJsb3Jh`);
    await opened.getByTestId('opened-link-error').waitFor({ timeout: 60_000 });
    expect(await opened.getByTestId('opened-link-error').innerText()).toMatch(
      /^This composition link is cut short or damaged \(.*\): copy it again whole\.\nDismiss$/,
    );
    expect(problems).toEqual([]);
    expect(readerProblems).toEqual([]);
    await sender.close();
    await reader.close();
  });
});
