import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

const CANDIDATES = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
  '/snap/bin/chromium',
];

/**
 * The system Chromium (we never download a browser). CHROMIUM_PATH overrides the search.
 * Without one the browser tests cannot run: under CI that is an error, locally a loud skip.
 */
export function findChromium({ announce = false } = {}): string | undefined {
  const path = [process.env.CHROMIUM_PATH, ...CANDIDATES].find((p) => p && existsSync(p));
  if (path || !announce) return path;
  const message =
    'No Chromium found, so the browser tests cannot run. Install it (Debian/Ubuntu: ' +
    '`sudo apt-get install -y chromium`) or set CHROMIUM_PATH.';
  if (process.env.CI === 'true' || process.env.CI === '1') throw new Error(message);
  const bar = '!'.repeat(78);
  console.warn(
    `\n${bar}\n!! ${message}\n!! The browser tests are SKIPPED on this machine.\n${bar}\n`,
  );
  return undefined;
}

/** WebGPU on SwiftShader where there is no GPU; no network chatter from the browser. */
const FLAGS = [
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  '--enable-unsafe-swiftshader',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export function launchChromium(
  extraArgs: readonly string[] = [],
  withWebGpu = true,
): Promise<Browser> {
  const executablePath = findChromium();
  if (!executablePath)
    throw new Error('No Chromium: see the message printed when the e2e tests started');
  const args = withWebGpu
    ? FLAGS
    : FLAGS.filter((f) => !f.includes('webgpu') && !f.includes('swiftshader'));
  return chromium.launch({ executablePath, headless: true, args: [...args, ...extraArgs] });
}
