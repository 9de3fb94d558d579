import { open, readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { ModelFile } from './hf-folder.ts';

/**
 * A file on disk, read on demand: whole, or in parts (a tensor at a time), so a model need not
 * sit in memory as its file's bytes.
 */
export async function diskFile(path: string, name = basename(path)): Promise<ModelFile> {
  const { size } = await stat(path);
  return {
    name,
    size,
    bytes: async () => new Uint8Array(await readFile(path)),
    async range(start, end) {
      const handle = await open(path, 'r');
      try {
        const out = new Uint8Array(end - start);
        let at = 0;
        while (at < out.byteLength) {
          const { bytesRead } = await handle.read(out, at, out.byteLength - at, start + at);
          if (bytesRead === 0) throw new RangeError(`${name} ends before byte ${start + at}`);
          at += bytesRead;
        }
        return out;
      } finally {
        await handle.close();
      }
    },
  };
}

/** The files of a folder on disk, read on demand. */
export async function folderFiles(dir: string): Promise<ModelFile[]> {
  const names = await readdir(dir);
  const files = await Promise.all(
    names.map(async (name) => {
      const path = join(dir, name);
      return (await stat(path)).isFile() ? diskFile(path, name) : undefined;
    }),
  );
  return files.filter((f) => f !== undefined);
}
