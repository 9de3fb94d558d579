import { CONFIG } from '../adapters/peft-config.ts';
import { truncateAdapter } from '../adapters/truncate.ts';
import { adapterDirFiles } from './adapters.ts';
import { numberOption, parseOptions, UsageError } from './args.ts';
import { writeFiles } from './files.ts';

/**
 * `lora-studio truncate ADAPTER_DIR --rank B --out DIR`: a DyLoRA-trained adapter (`train
 * --dylora`) cut to rank B, as a plain PEFT LoRA (src/adapters/truncate.ts). Prints JSON.
 */
export async function truncate(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(args, {
    values: ['rank', 'out'],
    positionals: true,
  });
  const out = values.get('out');
  if (positionals.length !== 1 || !out || !values.has('rank'))
    throw new UsageError('give one adapter folder, --rank B and --out DIR');
  const [dir] = positionals;
  const rank = numberOption(values, 'rank', 0);
  if (!(Number.isInteger(rank) && rank >= 1))
    throw new UsageError(`--rank must be a whole number ≥ 1 (got ${rank})`);
  const files = truncateAdapter(await adapterDirFiles(dir), rank, dir);
  await writeFiles(out, files);
  const config = JSON.parse(new TextDecoder().decode(files.get(CONFIG))) as { r: number };
  console.log(JSON.stringify({ out, r: config.r }, null, 2));
  return 0;
}
