import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { ggufLoraFile } from '../adapters/gguf.ts';
import type { PeftAdapter } from '../adapters/peft-read.ts';
import { errorMessage } from '../errors.ts';
import type { ModelConfig } from '../model/config.ts';
import { FormatError } from '../model/errors.ts';
import { exampleConfig, moduleKind } from '../model/families.ts';
import { llamaConfigJson } from '../model/families/llama.ts';
import { parseHfConfig } from '../model/hf-config.ts';
import { readLlama2c } from '../model/llama2c.ts';
import { readAdapterDir } from './adapters.ts';
import { parseOptions, UsageError } from './args.ts';
import { writeFiles } from './files.ts';

const USAGE =
  'usage: export-gguf ADAPTER_DIR --out FILE.gguf --model MODEL_DIR (or, for a Llama base only: --heads N --kv-heads N)';

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
 * The base model's config, without its weights: an HF folder's config.json, or a llama2.c
 * checkpoint's header (read with the whole file, which is how readLlama2c checks it).
 */
async function baseConfig(path: string): Promise<ModelConfig> {
  const info = await stat(path).catch(() => null);
  if (!info) throw new FormatError(path, 'does not exist');
  if (!info.isDirectory()) return readLlama2c(await readFile(path), basename(path)).config;
  const file = join(path, 'config.json');
  const text = await readFile(file, 'utf8').catch(() => {
    throw new FormatError(file, 'is missing: --model takes an HF model folder or a llama2.c .bin');
  });
  try {
    return parseHfConfig(JSON.parse(text), file);
  } catch (e) {
    if (e instanceof SyntaxError)
      throw new FormatError(file, `is not valid JSON (${errorMessage(e)})`);
    throw e;
  }
}

/**
 * Without --model, the export as it was before --model: a Llama base whose sizes are read off the
 * adapter's own factors and whose head counts are --heads / --kv-heads, needed when q_proj or
 * k_proj is adapted (llama.cpp permutes their rows per head; a wrong pair would scramble them, so
 * it must split every attention module's width).
 */
function legacyLlamaConfig(adapter: PeftAdapter, heads?: number, kvHeads?: number): ModelConfig {
  const llamaModules = exampleConfig('llama').arch.modules.map((m) => m.name);
  const sizes = new Map<string, { in: number; out: number }>();
  let numLayers = 1;
  for (const [path, m] of adapter.modules) {
    const kind = moduleKind(path);
    // Embedding LoRA is left to ggufLoraFile, which refuses it for every family.
    if (!m.embedding && kind !== 'lm_head' && !llamaModules.includes(kind))
      throw new UsageError(
        `${path} is not a module of a Llama model: for another family, pass --model MODEL_DIR`,
      );
    const layer = /^model\.layers\.(\d+)\./.exec(path);
    if (layer) numLayers = Math.max(numLayers, Number(layer[1]) + 1);
    sizes.set(kind, { in: m.a.length / m.rank, out: m.b.length / m.rank });
  }
  const [q, k, v, o, gate, up, down, head] = [
    'q_proj',
    'k_proj',
    'v_proj',
    'o_proj',
    'gate_proj',
    'up_proj',
    'down_proj',
    'lm_head',
  ].map((name) => sizes.get(name));
  if ((q || k) && (heads === undefined || kvHeads === undefined))
    throw new UsageError(
      `${adapter.name} adapts ${q ? 'q_proj' : 'k_proj'}, whose rows llama.cpp permutes per attention head: pass --model MODEL_DIR (the base model's folder or llama2.c checkpoint)`,
    );
  const hiddenSize = (q ?? k ?? v ?? gate ?? up ?? head)?.in ?? (o ?? down)?.out ?? 1;
  // Without q and k nothing is permuted and any heads that fit will do: one KV head.
  const numKvHeads = kvHeads ?? 1;
  const headDim =
    q && heads !== undefined ? q.out / heads : ((k ?? v)?.out ?? o?.in ?? hiddenSize) / numKvHeads;
  const numHeads = heads ?? (o?.in ?? headDim) / headDim;
  const fits =
    Number.isInteger(headDim) &&
    headDim % 2 === 0 &&
    numHeads % numKvHeads === 0 &&
    [q?.out, o?.in].every((w) => w === undefined || w === numHeads * headDim) &&
    [k?.out, v?.out].every((w) => w === undefined || w === numKvHeads * headDim);
  if (!fits)
    throw new UsageError(
      `--heads ${heads ?? '?'} and --kv-heads ${kvHeads ?? '?'} do not fit ${adapter.name}: its q_proj has ${q?.out ?? '?'} rows, its k_proj ${k?.out ?? '?'}, which must split into heads of one even size`,
    );
  return parseHfConfig(
    llamaConfigJson({
      hiddenSize,
      intermediateSize: (gate ?? up)?.out ?? down?.in ?? 1,
      numLayers,
      numHeads,
      numKvHeads,
      headDim,
      vocabSize: head?.out ?? 1,
      maxPositions: 2048,
      tieWordEmbeddings: false,
    }),
  );
}

/**
 * `lora-studio export-gguf ADAPTER_DIR --out FILE.gguf --model MODEL_DIR`: the PEFT adapter as a
 * llama.cpp GGUF LoRA for its base model (src/adapters/gguf.ts, docs/gguf.md), whose config says
 * llama.cpp's architecture, tensor names and head counts. `--heads N --kv-heads N` instead of
 * --model: a Llama base, as before --model existed. Prints a JSON summary on stdout.
 */
export async function exportGguf(args: string[]): Promise<number> {
  const { values, positionals } = parseOptions(args, {
    values: ['out', 'model', 'heads', 'kv-heads'],
    positionals: true,
  });
  const out = values.get('out');
  if (positionals.length !== 1 || !out) throw new UsageError(USAGE);
  const model = values.get('model');
  const [heads, kvHeads] = [headOption(values, 'heads'), headOption(values, 'kv-heads')];
  if (model !== undefined && (heads !== undefined || kvHeads !== undefined))
    throw new UsageError(
      '--heads and --kv-heads are for exporting without --model; with --model the head counts are the model’s',
    );
  const [dir] = positionals;
  const adapter = await readAdapterDir(dir);
  const config =
    model === undefined ? legacyLlamaConfig(adapter, heads, kvHeads) : await baseConfig(model);
  const file = ggufLoraFile(adapter, { name: basename(resolve(dir)), config });
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
