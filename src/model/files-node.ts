import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ModelFile } from './hf-folder.ts';

/** The files of a folder on disk, read on demand. */
export async function folderFiles(dir: string): Promise<ModelFile[]> {
  const names = await readdir(dir);
  return names.map((name) => ({
    name,
    bytes: async () => new Uint8Array(await readFile(join(dir, name))),
  }));
}
