import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** ../shared/fixtures beside the repository: real files written by others (see its MANIFEST.md). */
export const FIXTURES = fileURLToPath(new URL('../../../shared/fixtures/', import.meta.url));

/** A fixture's bytes, by path relative to the fixtures folder. */
export function fixture(path: string): Uint8Array<ArrayBuffer> {
  const full = FIXTURES + path;
  if (!existsSync(full))
    throw new Error(`Missing fixture ${full}: tests expect ../shared beside the repository`);
  return new Uint8Array(readFileSync(full));
}

export function fixtureJson(path: string): unknown {
  return JSON.parse(new TextDecoder().decode(fixture(path)));
}
