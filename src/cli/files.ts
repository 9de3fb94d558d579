import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Writes files into `dir` (created) through temporary names, so a crash never leaves half a file. */
export async function writeFiles(
  dir: string,
  files: ReadonlyMap<string, Uint8Array>,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, bytes] of files) {
    await writeFile(join(dir, `${name}.tmp`), bytes);
    await rename(join(dir, `${name}.tmp`), join(dir, name));
  }
}
