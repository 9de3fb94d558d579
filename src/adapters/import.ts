// What the user dropped, as one adapter's files: the two PEFT files, a folder's files (paths with
// subfolders), or a .zip holding them, possibly in a subfolder. Only the files an adapter is made
// of are kept; anything else (README.md, tokenizer files) is ignored.
import { FormatError } from '../model/errors.ts';
import { readZip, type ZipLimits } from './zip.ts';

export interface DroppedFile {
  /** File name, or its path within a dropped folder or zip. */
  name: string;
  bytes: Uint8Array;
}

const ADAPTER_FILES = ['adapter_config.json', 'adapter_model.safetensors', 'adapter_model.bin'];

const baseName = (path: string) => path.slice(path.lastIndexOf('/') + 1);
const folderOf = (path: string) => path.slice(0, Math.max(0, path.lastIndexOf('/')));

/**
 * The most an adapter's files may inflate to from a zip: far above any adapter the studio can
 * apply (rank 64 on every linear module of a 7B model is ~0.6 GiB in f32), far below memory.
 */
export const ZIP_LIMITS: ZipLimits = { maxBytes: 2 ** 30 };

function unzip(file: DroppedFile, limits: ZipLimits): DroppedFile[] {
  // Only the adapter's own files are inflated: a zip may hold a whole model beside it.
  const entries = readZip(
    file.bytes,
    file.name,
    (name) => ADAPTER_FILES.includes(baseName(name)),
    limits,
  );
  return [...entries].map(([name, bytes]) => ({ name, bytes }));
}

/** The files of the one adapter among `files`, by base name. */
export function adapterFiles(
  files: readonly DroppedFile[],
  limits = ZIP_LIMITS,
): Map<string, Uint8Array> {
  const all = files.flatMap((f) =>
    f.name.toLowerCase().endsWith('.zip') ? unzip(f, limits) : [f],
  );
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
