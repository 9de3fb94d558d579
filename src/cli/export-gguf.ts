import { basename, dirname, resolve } from 'node:path';
import { ggufLoraFile } from '../adapters/gguf.ts';
import { readAdapterDir } from './adapters.ts';
import { parseOptions, UsageError } from './args.ts';
import { writeFiles } from './files.ts';

/** `--heads N`: a positive integer, or absent. */
function headOption(values: Map<string, string>, name: string): number | undefined {
  const raw = values.get(name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`--${name} must be a positive integer, got ${raw}`);
  return n;
}

/**
 * `lora-studio export-gguf ADAPTER_DIR --out FILE.gguf [--heads N] [--kv-heads N]`: the PEFT
 * adapter as a llama.cpp GGUF LoRA for a Llama base (src/adapters/gguf.ts, docs/gguf.md). The
 * head counts are the base model's num_attention_heads and num_key_value_heads, needed when the
 * adapter has q_proj or k_proj. Prints a JSON summary on stdout.
 */
export async function exportGguf(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(args, {
    values: ['out', 'heads', 'kv-heads'],
    positionals: true,
  });
  const out = values.get('out');
  if (positionals.length !== 1 || !out)
    throw new UsageError(
      'usage: export-gguf ADAPTER_DIR --out FILE.gguf [--heads N] [--kv-heads N]',
    );
  const [dir] = positionals;
  const adapter = await readAdapterDir(dir);
  const file = ggufLoraFile(adapter, {
    name: basename(resolve(dir)),
    heads: headOption(values, 'heads'),
    kvHeads: headOption(values, 'kv-heads'),
  });
  await writeFiles(dirname(out), new Map([[basename(out), file.bytes]]));
  console.log(
    JSON.stringify({
      out,
      bytes: file.bytes.length,
      tensors: file.tensors,
      alpha: file.alpha,
      rescaled: file.rescaled,
    }),
  );
  return 0;
}
