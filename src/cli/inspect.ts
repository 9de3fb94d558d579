import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { adapterFiles } from '../adapters/import.ts';
import { inspectAdapter, readForInspection } from '../analysis/inspect.ts';
import { FormatError } from '../model/errors.ts';
import { parseOptions, UsageError } from './args.ts';

/** Exit code for input that is missing or malformed, told apart from failures of the tool (1). */
const ADAPTER_FILES = ['adapter_config.json', 'adapter_model.safetensors', 'adapter_model.bin'];

/** The adapter files of a folder, or of a .zip holding one (src/adapters/import.ts). */
async function readAdapterPath(path: string): Promise<Map<string, Uint8Array>> {
  const info = await stat(path).catch(() => null);
  if (!info) throw new FormatError(path, 'does not exist');
  if (info.isFile() && path.toLowerCase().endsWith('.zip'))
    return adapterFiles([{ name: path, bytes: new Uint8Array(await readFile(path)) }]);
  if (!info.isDirectory()) throw new FormatError(path, 'is neither an adapter folder nor a .zip');
  const files = new Map<string, Uint8Array>();
  for (const name of ADAPTER_FILES) {
    const bytes = await readFile(join(path, name)).catch(() => null);
    if (bytes) files.set(name, new Uint8Array(bytes));
  }
  return files;
}

/**
 * `lora-studio inspect PATH`: a PEFT LoRA adapter (folder or .zip) summarised as JSON on stdout
 * (src/analysis/inspect.ts describes every field). Missing or malformed input exits with 2 and
 * one line on stderr.
 */
export async function inspect(args: string[]): Promise<number> {
  const { positionals } = parseOptions(args, { values: [], positionals: true });
  if (positionals.length !== 1) throw new UsageError('give one adapter folder or .zip');
  const [path] = positionals;
  const adapter = readForInspection(await readAdapterPath(path), path);
  console.log(JSON.stringify(await inspectAdapter(adapter), null, 2));
  return 0;
}
