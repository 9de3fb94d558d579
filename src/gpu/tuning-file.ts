import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TuningEntries, TuningStore } from './tuning.ts';

/** The CLI's tuning store: one JSON file, keyed by device, in the user's cache folder. */
export function fileTuningStore(
  path = join(
    process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'),
    'lora-studio',
    'tuning.json',
  ),
): TuningStore {
  async function readAll(): Promise<Record<string, TuningEntries>> {
    try {
      return JSON.parse(await readFile(path, 'utf8')) as Record<string, TuningEntries>;
    } catch {
      return {}; // missing or unreadable: tuning is a cache, it is simply redone
    }
  }
  return {
    async load(device) {
      return (await readAll())[device];
    },
    async save(device, entries) {
      const all = await readAll();
      all[device] = entries;
      await mkdir(dirname(path), { recursive: true });
      // Write then rename, so a crash never leaves a half-written file.
      await writeFile(`${path}.tmp`, JSON.stringify(all, null, 2));
      await rename(`${path}.tmp`, path);
    },
  };
}
