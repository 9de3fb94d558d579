// Files the user picked or dropped, with their paths inside a dropped or picked folder
// ("qwen-adapter/adapter_config.json"): what the worker needs to tell one adapter or model apart.

export interface PickedFile {
  /** The file's name, or its path within the folder it came in. */
  path: string;
  file: File;
}

/** Files from an <input type="file">, a folder picker's with their relative paths. */
export function pickedFiles(list: FileList | null): PickedFile[] {
  return [...(list ?? [])].map((file) => ({ path: file.webkitRelativePath || file.name, file }));
}

/** Whether a drop holds a folder (only known after reading it: its files are not listed). */
export function holdsFolder(data: DataTransfer): boolean {
  return [...data.items].some((item) => item.webkitGetAsEntry()?.isDirectory);
}

/**
 * Every file of a drop, folders walked. Must be called while the drop event runs: the
 * DataTransfer is emptied afterwards (the entries taken here stay readable).
 */
export function droppedFiles(data: DataTransfer): Promise<PickedFile[]> {
  const items = [...data.items].filter((item) => item.kind === 'file');
  if (items.length === 0) return Promise.resolve(pickedFiles(data.files));
  // A DataTransfer made by a script has files but no entries.
  const taken = items.map((item) => ({ entry: item.webkitGetAsEntry(), file: item.getAsFile() }));
  return Promise.all(
    taken.map(async ({ entry, file }) =>
      entry ? walk(entry) : file ? [{ path: file.name, file }] : [],
    ),
  ).then((lists) => lists.flat());
}

const isFile = (entry: FileSystemEntry): entry is FileSystemFileEntry => entry.isFile;
const isDirectory = (entry: FileSystemEntry): entry is FileSystemDirectoryEntry =>
  entry.isDirectory;

async function walk(entry: FileSystemEntry): Promise<PickedFile[]> {
  if (isFile(entry)) {
    const file = await new Promise<File>((resolve, reject) => {
      entry.file(resolve, reject);
    });
    return [{ path: entry.fullPath.replace(/^\//, ''), file }];
  }
  if (!isDirectory(entry)) return [];
  // readEntries answers in batches (100 in Chromium) until it answers none.
  const reader = entry.createReader();
  const children: FileSystemEntry[] = [];
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => {
      reader.readEntries(resolve, reject);
    });
    if (batch.length === 0) break;
    children.push(...batch);
  }
  return (await Promise.all(children.map(walk))).flat();
}

/** PEFT's files, or a .zip (which the worker opens): what makes a drop an adapter's. */
export function isAdapterFile(path: string): boolean {
  const name = path.slice(path.lastIndexOf('/') + 1).toLowerCase();
  return (
    name === 'adapter_config.json' ||
    name === 'adapter_model.safetensors' ||
    name === 'adapter_model.bin' ||
    name.endsWith('.zip') ||
    name.endsWith('.compeft')
  );
}

/** The files' contents for the worker, named by their paths. */
export function readPicked(
  files: readonly PickedFile[],
): Promise<{ name: string; bytes: Uint8Array }[]> {
  return Promise.all(
    files.map(async ({ path, file }) => ({
      name: path,
      bytes: new Uint8Array(await file.arrayBuffer()),
    })),
  );
}
