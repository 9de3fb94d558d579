import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The repository's fixtures/: real files written by others and files the project generates
 * (fixtures/MANIFEST.md gives each one's source, licence and checksum).
 */
export const FIXTURES = fileURLToPath(new URL('../../fixtures/', import.meta.url));

/** The built-in model the studio ships (public/models): stories260K.bin and tok512.bin. */
export const BUILT_IN = fileURLToPath(new URL('../../public/models/', import.meta.url));

function read(full: string): Uint8Array<ArrayBuffer> {
  if (!existsSync(full)) throw new Error(`Missing test file ${full}`);
  return new Uint8Array(readFileSync(full));
}

/** A fixture's bytes, by path relative to fixtures/. */
export function fixture(path: string): Uint8Array<ArrayBuffer> {
  return read(FIXTURES + path);
}

export function fixtureJson(path: string): unknown {
  return JSON.parse(new TextDecoder().decode(fixture(path)));
}

/** A file of the built-in model, by name. */
export function builtIn(name: 'stories260K.bin' | 'tok512.bin'): Uint8Array<ArrayBuffer> {
  return read(BUILT_IN + name);
}
