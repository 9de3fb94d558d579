import { copyFile, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { composeWeights } from '../adapters/compose.ts';
import { hfFolderFiles } from '../model/hf-export.ts';
import { readLlama2c } from '../model/llama2c.ts';
import { adapterOptions } from './adapters.ts';
import { parseOptions, UsageError } from './args.ts';
import { writeFiles } from './files.ts';

/**
 * `lora-studio convert --llama2c FILE --out DIR [--tokenizer FILE] [--adapter DIR[:WEIGHT]…]`: a
 * llama2.c checkpoint as an HF folder (config.json + model.safetensors, q/k rows permuted to HF's
 * RoPE layout); the llama2.c tokenizer, when given, is copied beside it. Adapters are baked into
 * the weights (W + Σ wᵢ·sᵢ·Bᵢ·Aᵢ, PEFT's merge_and_unload).
 */
export async function convert(args: string[]): Promise<number> {
  const { values, lists, flags } = parseOptions(args, {
    values: ['llama2c', 'out', 'tokenizer'],
    lists: ['adapter'],
    flags: ['force'],
  });
  const input = values.get('llama2c');
  const out = values.get('out');
  if (!input || !out) throw new UsageError('--llama2c FILE and --out DIR are required');
  const name = basename(input);
  const model = readLlama2c(new Uint8Array(await readFile(input)), name);
  const composition = await adapterOptions(
    { name, config: model.config },
    lists.get('adapter') ?? [],
    flags.has('force'),
  );
  const { config, weights } = composeWeights(model.config, model.weights, composition);
  await writeFiles(out, hfFolderFiles(config, weights));
  const tokenizer = values.get('tokenizer');
  if (tokenizer) await copyFile(tokenizer, join(out, basename(tokenizer)));
  console.error(`wrote ${join(out, 'config.json')} and ${join(out, 'model.safetensors')}`);
  return 0;
}
