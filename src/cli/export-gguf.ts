import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { ggufLoraFile } from '../adapters/gguf.ts';
import type { PeftAdapter } from '../adapters/peft-read.ts';
import { errorMessage } from '../errors.ts';
import type { ModelConfig } from '../model/config.ts';
import { FormatError } from '../model/errors.ts';
import { exampleConfig, moduleKind } from '../model/families.ts';
import { llamaConfigJson } from '../model/families/llama.ts';
import { loadGgufWeights } from '../model/gguf/load.ts';
import { readGguf, type GgufValue } from '../model/gguf/read.ts';
import { parseHfConfig } from '../model/hf-config.ts';
import { readLlama2c } from '../model/llama2c.ts';
import { readAdapterDir } from './adapters.ts';
import { parseOptions, UsageError } from './args.ts';
import { writeFiles } from './files.ts';

const USAGE =
  'usage: export-gguf ADAPTER_DIR --out FILE.gguf --model MODEL_DIR|FILE.gguf [--modelfile] (or, for a Llama base only: --heads N --kv-heads N)';

/** `--heads N`: a positive integer, or absent. */
function headOption(values: Map<string, string>, name: string): number | undefined {
  const raw = values.get(name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`--${name} must be a positive integer, got ${raw}`);
  return n;
}

/** The base model's config, and its metadata when it is a GGUF file (for --modelfile). */
interface BaseModel {
  config: ModelConfig;
  metadata?: ReadonlyMap<string, GgufValue>;
}

/**
 * The base model's config: an HF folder's config.json, a llama2.c checkpoint's header (read with
 * the whole file, which is how readLlama2c checks it), or a GGUF model's metadata. The GGUF
 * loader translates the metadata only while loading the weights (it dequantizes them on the
 * host), so the whole model is loaded for its config.
 */
async function baseModel(path: string): Promise<BaseModel> {
  const info = await stat(path).catch(() => null);
  if (!info) throw new FormatError(path, 'does not exist');
  if (!info.isDirectory()) {
    const bytes = new Uint8Array(await readFile(path));
    if (!path.toLowerCase().endsWith('.gguf'))
      return { config: readLlama2c(bytes, basename(path)).config };
    const { config } = loadGgufWeights(bytes, basename(path));
    return { config, metadata: readGguf(bytes, basename(path)).metadata };
  }
  const file = join(path, 'config.json');
  const text = await readFile(file, 'utf8').catch(() => {
    throw new FormatError(
      file,
      'is missing: --model takes an HF model folder, a llama2.c .bin or a GGUF model file',
    );
  });
  try {
    return { config: parseHfConfig(JSON.parse(text), file) };
  } catch (e) {
    if (e instanceof SyntaxError)
      throw new FormatError(file, `is not valid JSON (${errorMessage(e)})`);
    throw e;
  }
}

/**
 * A Modelfile value as ollama's parser (parser/parser.go) reads it: bare when it has no space or
 * quote, else between double quotes (taken verbatim: no escapes) or, when it holds a quote,
 * between triple double quotes. Null for text no form carries (control characters, a triple
 * quote).
 */
function modelfileValue(text: string, quoted = false): string | null {
  // eslint-disable-next-line no-control-regex
  if (text === '' || /[\u0000-\u001f\u007f]/.test(text) || text.includes('"""')) return null;
  if (text.includes('"')) return `"""${text}"""`;
  return quoted || /\s/.test(text) ? `"${text}"` : text;
}

/** llama.cpp's token control and user-defined types (gguf-py's TokenType). */
const LITERAL_TOKEN_TYPES = [3, 4];

/**
 * The end-of-generation tokens' texts (tokenizer.ggml.eos_token_id and eot_token_id), for
 * PARAMETER stop. Only control and user-defined tokens: their stored text is what a model writes,
 * where a byte-level BPE's ordinary token is stored in its byte alphabet (Ġ for a space).
 */
export function stopTexts(metadata: ReadonlyMap<string, GgufValue>): string[] {
  const tokens = metadata.get('tokenizer.ggml.tokens');
  if (tokens?.type !== 'array' || tokens.itemType !== 'string') return [];
  const types = metadata.get('tokenizer.ggml.token_type');
  const typeOf = (id: number) =>
    types?.type === 'array' && types.itemType === 'i32' ? types.value[id] : undefined;
  const texts: string[] = [];
  for (const key of ['tokenizer.ggml.eos_token_id', 'tokenizer.ggml.eot_token_id']) {
    const entry = metadata.get(key);
    const id = entry?.type === 'u32' || entry?.type === 'i32' ? entry.value : undefined;
    if (id === undefined || id < 0 || id >= tokens.value.length) continue;
    const type = typeOf(id);
    if (type !== undefined && !LITERAL_TOKEN_TYPES.includes(type)) continue;
    if (!texts.includes(tokens.value[id])) texts.push(tokens.value[id]);
  }
  return texts;
}

/**
 * An ollama Modelfile for the base GGUF and the LoRA beside it (docs/gguf.md): FROM the base (an
 * absolute path, so the Modelfile may move with the adapter), ADAPTER the LoRA (relative paths
 * are the Modelfile's folder's), and PARAMETER stop per end-of-generation token. No TEMPLATE:
 * ollama takes the chat template from the GGUF itself (a known one's Go form and stop tokens), and
 * a Jinja template has no faithful Go-template translation here.
 */
export function ollamaModelfile(
  base: string,
  adapter: string,
  metadata: ReadonlyMap<string, GgufValue>,
): string {
  const path = (p: string, what: string) => {
    const value = modelfileValue(p);
    if (value === null)
      throw new UsageError(
        `--modelfile: ${what} path ${JSON.stringify(p)} cannot be written in a Modelfile`,
      );
    return value;
  };
  const lines = [`FROM ${path(base, 'the base model')}`, `ADAPTER ${path(adapter, 'the adapter')}`];
  for (const text of stopTexts(metadata)) {
    const value = modelfileValue(text, true);
    if (value !== null) lines.push(`PARAMETER stop ${value}`);
  }
  return `${lines.join('\n')}\n`;
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
 * `lora-studio export-gguf ADAPTER_DIR --out FILE.gguf --model MODEL_DIR|FILE.gguf [--modelfile]`:
 * the PEFT adapter as a llama.cpp GGUF LoRA for its base model (src/adapters/gguf.ts,
 * docs/gguf.md), whose config says llama.cpp's architecture, tensor names and head counts.
 * `--modelfile` (GGUF base only): an ollama Modelfile beside FILE.gguf. `--heads N --kv-heads N`
 * instead of --model: a Llama base, as before --model existed. Prints a JSON summary on stdout.
 */
export async function exportGguf(args: string[]): Promise<number> {
  const { values, positionals, flags } = parseOptions(args, {
    values: ['out', 'model', 'heads', 'kv-heads'],
    flags: ['modelfile'],
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
  const modelfile = flags.has('modelfile');
  if (modelfile && !model?.toLowerCase().endsWith('.gguf'))
    throw new UsageError(
      '--modelfile needs --model FILE.gguf: the Modelfile builds on that GGUF model (FROM) with the adapter (ADAPTER)',
    );
  const [dir] = positionals;
  const adapter = await readAdapterDir(dir);
  const base: BaseModel =
    model === undefined
      ? { config: legacyLlamaConfig(adapter, heads, kvHeads) }
      : await baseModel(model);
  const file = ggufLoraFile(adapter, { name: basename(resolve(dir)), config: base.config });
  const files = new Map([[basename(out), file.bytes]]);
  if (modelfile && model !== undefined && base.metadata) {
    const text = ollamaModelfile(resolve(model), `./${basename(out)}`, base.metadata);
    files.set('Modelfile', new TextEncoder().encode(text));
  }
  await writeFiles(dirname(out), files);
  console.log(
    JSON.stringify({
      out,
      bytes: file.bytes.length,
      tensors: file.tensors,
      alpha: file.alpha,
      rescaled: file.rescaled,
      ...(files.has('Modelfile') && { modelfile: join(dirname(out), 'Modelfile') }),
    }),
  );
  return 0;
}
