import { copyFile, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { hfFolderFiles } from '../model/hf-export.ts';
import { readLlama2c } from '../model/llama2c.ts';
import { parseOptions, UsageError } from './args.ts';
import { writeFiles } from './files.ts';

/**
 * `lora-studio convert --llama2c FILE --out DIR [--tokenizer FILE]`: a llama2.c checkpoint as an
 * HF folder (config.json + model.safetensors, q/k rows permuted to HF's RoPE layout); the
 * llama2.c tokenizer, when given, is copied beside it.
 */
export async function convert(args: string[]): Promise<number> {
  const { values } = parseOptions(args, { values: ['llama2c', 'out', 'tokenizer'] });
  const input = values.get('llama2c');
  const out = values.get('out');
  if (!input || !out) throw new UsageError('--llama2c FILE and --out DIR are required');
  const { config, weights } = readLlama2c(new Uint8Array(await readFile(input)), basename(input));
  await writeFiles(out, hfFolderFiles(config, weights));
  const tokenizer = values.get('tokenizer');
  if (tokenizer) await copyFile(tokenizer, join(out, basename(tokenizer)));
  console.error(`wrote ${join(out, 'config.json')} and ${join(out, 'model.safetensors')}`);
  return 0;
}
