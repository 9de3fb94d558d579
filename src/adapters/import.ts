// What the user dropped, as one adapter's files: the two PEFT files, a folder's files (paths with
// subfolders), or a .zip holding them, possibly in a subfolder. Only the files an adapter is made
// of are kept; anything else (README.md, tokenizer files) is ignored.
import { unzipSync } from 'fflate';
import { FormatError } from '../model/errors.ts';

export interface DroppedFile {
  /** File name, or its path within a dropped folder or zip. */
  name: string;
  bytes: Uint8Array;
}

const ADAPTER_FILES = ['adapter_config.json', 'adapter_model.safetensors', 'adapter_model.bin'];

const baseName = (path: string) => path.slice(path.lastIndexOf('/') + 1);
const folderOf = (path: string) => path.slice(0, Math.max(0, path.lastIndexOf('/')));

function unzip(file: DroppedFile): DroppedFile[] {
  try {
    // Only the adapter's own files are inflated: a zip may hold a whole model beside it.
    const entries = unzipSync(file.bytes, {
      filter: (f) => ADAPTER_FILES.includes(baseName(f.name)),
    });
    return Object.entries(entries).map(([name, bytes]) => ({ name, bytes }));
  } catch (e) {
    throw new FormatError(
      file.name,
      `is not a readable zip (${e instanceof Error ? e.message : String(e)})`,
    );
  }
}

/** The files of the one adapter among `files`, by base name. */
export function adapterFiles(files: readonly DroppedFile[]): Map<string, Uint8Array> {
  const all = files.flatMap((f) => (f.name.toLowerCase().endsWith('.zip') ? unzip(f) : [f]));
  const relevant = all.filter((f) => ADAPTER_FILES.includes(baseName(f.name)));
  const folders = [...new Set(relevant.map((f) => folderOf(f.name)))];
  if (relevant.length === 0)
    throw new FormatError(
      files.map((f) => f.name).join(', ') || 'the drop',
      'holds no adapter: expected adapter_config.json and adapter_model.safetensors (or a .zip of them)',
    );
  if (folders.length > 1)
    throw new FormatError(
      'the drop',
      `holds several adapters (${folders.map((f) => f || '(top level)').join(', ')}): import them one at a time`,
    );
  return new Map(relevant.map((f) => [baseName(f.name), f.bytes]));
}
