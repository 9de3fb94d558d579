// The whole library as one zip, to keep or move elsewhere: a folder per adapter holding its
// files as the library keeps them (PEFT's two, the card, the recipe), and library.json naming
// each folder's adapter with what the studio shows about it. A restore checks the manifest whole
// before it adds anything.
import { zipSync } from 'fflate';
import { isHubRepoId, isRevision, type HubRef } from '../hub/repo-id.ts';
import { errorMessage } from '../errors.ts';
import { FormatError } from '../model/errors.ts';
import type { LibraryEntry } from './library.ts';
import { fileSafeName } from './model-card.ts';
import { readZip } from './zip.ts';

export const LIBRARY_MANIFEST = 'library.json';
const VERSION = 1;
/** Far above a library of small-model adapters, below what a browser can hold in one buffer. */
const LIBRARY_LIMITS = { maxBytes: 2 ** 31 - 1 };

/** One adapter of a library zip, as library.json describes it. */
export interface LibraryZipAdapter {
  folder: string;
  name: string;
  baseModel: string;
  createdAt: number;
  origin: string;
  hub?: HubRef;
  /** Its files by name. */
  files: Map<string, Uint8Array>;
}

/** The entries as one zip: `<folder>/<file>` per file, and the manifest. */
export function libraryZip(entries: readonly LibraryEntry[]): Uint8Array {
  const files: Record<string, Uint8Array> = {};
  const folders = new Set<string>();
  const adapters = entries.map((e) => {
    let folder = fileSafeName(e.name);
    for (let k = 2; folders.has(folder); k++) folder = `${fileSafeName(e.name)}-${k}`;
    folders.add(folder);
    for (const [name, bytes] of Object.entries(e.files)) files[`${folder}/${name}`] = bytes;
    return {
      folder,
      name: e.name,
      base_model: e.baseModel,
      created_at: e.createdAt,
      origin: e.origin,
      ...(e.hub && { hub: e.hub }),
    };
  });
  const manifest = { lora_studio_library: VERSION, adapters };
  files[LIBRARY_MANIFEST] = new TextEncoder().encode(JSON.stringify(manifest, null, 2) + '\n');
  return zipSync(files, { level: 6 });
}

/** A checked manifest's Hub ref, as a HubRef. */
const hubRef = (hub: Record<string, unknown>): HubRef => ({
  repo: String(hub.repo),
  ...(typeof hub.revision === 'string' && { revision: hub.revision }),
});

function fail(file: string, problem: string): never {
  throw new FormatError(file, problem);
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** A library zip's adapters, each with its files; refuses a zip that is not one, in one line. */
export function readLibraryZip(bytes: Uint8Array, file: string): LibraryZipAdapter[] {
  const entries = readZip(bytes, file, () => true, LIBRARY_LIMITS);
  const manifestBytes = entries.get(LIBRARY_MANIFEST);
  if (!manifestBytes)
    fail(
      file,
      `is no library export: it has no ${LIBRARY_MANIFEST} (an adapter's zip is imported with "Import adapter…")`,
    );
  let manifest: unknown;
  try {
    manifest = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(manifestBytes));
  } catch (e) {
    fail(file, `has a ${LIBRARY_MANIFEST} that is not JSON (${errorMessage(e)})`);
  }
  if (
    !isObject(manifest) ||
    manifest.lora_studio_library !== VERSION ||
    !Array.isArray(manifest.adapters)
  )
    fail(file, `has a ${LIBRARY_MANIFEST} this version of the studio does not read`);
  const folders = new Set<string>();
  return manifest.adapters.map((a: unknown, i): LibraryZipAdapter => {
    const at = `${LIBRARY_MANIFEST}'s adapter ${i + 1}`;
    if (!isObject(a)) fail(file, `${at} is not an object`);
    const { folder, name, base_model, created_at, origin, hub } = a;
    if (typeof folder !== 'string' || folder !== fileSafeName(folder) || folders.has(folder))
      fail(file, `${at} names no folder of its own`);
    folders.add(folder);
    if (typeof name !== 'string' || name.trim() === '') fail(file, `${at} has no name`);
    if (typeof base_model !== 'string' || typeof origin !== 'string')
      fail(file, `${at} lacks its base model or origin`);
    if (typeof created_at !== 'number' || !Number.isFinite(created_at))
      fail(file, `${at} has no creation time`);
    if (
      hub !== undefined &&
      !(
        isObject(hub) &&
        typeof hub.repo === 'string' &&
        isHubRepoId(hub.repo) &&
        (hub.revision === undefined ||
          (typeof hub.revision === 'string' && isRevision(hub.revision)))
      )
    )
      fail(file, `${at} has a Hub ref that is no repo id and revision`);
    const files = new Map(
      [...entries]
        .filter(
          ([path]) => path.startsWith(`${folder}/`) && !path.slice(folder.length + 1).includes('/'),
        )
        .map(([path, data]) => [path.slice(folder.length + 1), data]),
    );
    if (files.size === 0) fail(file, `has no files in ${folder}/ for ${at}`);
    return {
      folder,
      name: name.trim(),
      baseModel: base_model,
      createdAt: created_at,
      origin,
      ...(isObject(hub) && { hub: hubRef(hub) }),
      files,
    };
  });
}
