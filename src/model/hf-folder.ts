// A Hugging Face model folder: config.json plus model.safetensors, or shards listed by
// model.safetensors.index.json. Every weight the architecture needs must be present with the
// shape config.json implies; problems are listed precisely.
import { errorMessage } from '../errors.ts';
import type { HalfDType } from '../gpu/half.ts';
import type { ModelConfig } from './config.ts';
import { FormatError } from './errors.ts';
import { canonicalWeightName, expectedWeights, parseHfConfig } from './hf-config.ts';
import {
  headerLength,
  parseHeader,
  readSafetensors,
  toFloat32,
  type SafetensorsHeader,
  type TensorEntry,
} from './safetensors.ts';
import { transpose, type ModelWeights, type WeightSource } from './weights.ts';

/** safetensors dtypes the GPU can keep as they are (src/model/weights.ts). */
const HALF_DTYPES: Partial<Record<string, HalfDType>> = { F16: 'f16', BF16: 'bf16' };

/** One file of a model folder, wherever it lives: a dropped File, a path in Node, a download. */
export interface ModelFile {
  /** Path inside the folder; only the last segment is matched. */
  name: string;
  bytes(): Promise<Uint8Array>;
  /**
   * Bytes [start, end) and the file's size, where the file can be read in parts (a File, a file
   * on disk): tensors are then read one at a time instead of the whole file at once.
   */
  range?: (start: number, end: number) => Promise<Uint8Array>;
  size?: number;
}

const basename = (path: string) => path.slice(path.lastIndexOf('/') + 1);

/** A safetensors file whose tensors are read on demand. */
interface OpenSafetensors {
  header: SafetensorsHeader;
  read(name: string): Promise<Float32Array>;
}

/** The header now, the tensors when asked: in parts where the file allows, else from its bytes. */
async function openSafetensors(file: ModelFile, name: string): Promise<OpenSafetensors> {
  const { range, size } = file;
  if (!range || size === undefined) {
    const whole = readSafetensors(await file.bytes(), name);
    return { header: whole.header, read: (tensor) => Promise.resolve(whole.read(tensor)) };
  }
  const length = headerLength(await range(0, Math.min(8, size)), size, name);
  const header = parseHeader(await range(0, 8 + length), size, name);
  return {
    header,
    async read(tensor) {
      const entry = header.tensors.get(tensor);
      if (!entry) throw new FormatError(name, `has no tensor "${tensor}"`);
      const at = header.dataStart;
      return toFloat32(await range(at + entry.begin, at + entry.end), entry, name);
    },
  };
}

/**
 * An HF model folder opened: its config, and its weights checked against the architecture from
 * the safetensors headers alone, each read (and converted to the engine's layout) when asked.
 */
export async function openHfFolder(files: readonly ModelFile[]): Promise<WeightSource> {
  const byName = new Map(files.map((f) => [basename(f.name), f]));
  const json = async (name: string): Promise<unknown> => {
    const f = byName.get(name);
    if (!f) throw new FormatError(name, 'is missing from the model folder');
    try {
      return JSON.parse(new TextDecoder().decode(await f.bytes()));
    } catch (e) {
      throw new FormatError(name, `is not valid JSON (${errorMessage(e)})`);
    }
  };
  const config = parseHfConfig(await json('config.json'));
  const shards = byName.has('model.safetensors.index.json')
    ? shardsFromIndex(await json('model.safetensors.index.json'))
    : new Map([['model.safetensors', [] as string[]]]);
  const opened = new Map<string, OpenSafetensors>();
  for (const shard of shards.keys()) {
    const file = byName.get(shard);
    if (!file) throw new FormatError(shard, 'is missing from the model folder');
    opened.set(shard, await openSafetensors(file, shard));
  }
  // Sizes come from an untrusted config: compare them with what the files hold before building
  // anything per layer (a config claiming ten million layers must not cost ten million
  // entries): the expected weights are then bounded by a multiple of the stored ones.
  const stored = [...opened.values()].reduce((n, st) => n + st.header.tensors.size, 0);
  if (config.numLayers > stored)
    throw new FormatError(
      'config.json',
      `num_hidden_layers ${config.numLayers} needs at least one tensor per layer, but the weights hold ${stored} in all`,
    );
  const expected = expectedWeights(config);

  // Engine name → where it is stored and how it reads.
  const found = new Map<string, { shard: string; stored: string; entry: TensorEntry }>();
  const problems: string[] = [];
  for (const [shard, listed] of shards) {
    const st = opened.get(shard)!;
    for (const name of listed) {
      if (!st.header.tensors.has(name))
        problems.push(`${name}: listed in the index for ${shard}, but not in it`);
    }
    for (const [stored, entry] of st.header.tensors) {
      const name = canonicalWeightName(config.arch, stored);
      const want = expected.get(name);
      if (!want) continue; // e.g. rotary inv_freq buffers, or lm_head stored despite tying
      if (want.shape.join() !== entry.shape.join()) {
        problems.push(
          `${stored}: shape [${entry.shape.join(', ')}] in ${shard}, config.json implies [${want.shape.join(', ')}]`,
        );
        continue;
      }
      found.set(name, { shard, stored, entry });
    }
  }
  const missing = [...expected.keys()].filter((name) => !found.has(name));
  if (missing.length > 0) {
    const shown =
      missing.slice(0, 5).join(', ') +
      (missing.length > 5 ? `, and ${missing.length - 5} more` : '');
    problems.push(`missing weights: ${shown}`);
  }
  if (problems.length > 0) throw new FormatError('model folder', problems.join('; '));
  return {
    config,
    names: [...found.keys()],
    async read(name) {
      const where = found.get(name);
      const want = expected.get(name);
      if (!where || !want) throw new FormatError('model folder', `has no weight ${name}`);
      const data = await opened.get(where.shard)!.read(where.stored);
      const half = HALF_DTYPES[where.entry.dtype];
      const { shape } = want;
      return want.transposed
        ? {
            shape: [shape[1], shape[0]],
            data: transpose(data, shape[0], shape[1]),
            ...(half && { half }),
          }
        : { shape, data, ...(half && { half }) };
    },
  };
}

/** A whole HF model folder in memory. */
export async function loadHfFolder(
  files: readonly ModelFile[],
): Promise<{ config: ModelConfig; weights: ModelWeights }> {
  const folder = await openHfFolder(files);
  const weights: ModelWeights = new Map();
  for (const name of folder.names) weights.set(name, await folder.read(name));
  return { config: folder.config, weights };
}

/** shard file → tensor names, from model.safetensors.index.json's weight_map. */
function shardsFromIndex(index: unknown): Map<string, string[]> {
  const map = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null) {
    throw new FormatError('model.safetensors.index.json', 'has no weight_map object');
  }
  const shards = new Map<string, string[]>();
  for (const [tensor, shard] of Object.entries(map)) {
    if (typeof shard !== 'string') {
      throw new FormatError(
        'model.safetensors.index.json',
        `weight_map["${tensor}"] is not a file name`,
      );
    }
    const list = shards.get(shard) ?? [];
    list.push(tensor);
    shards.set(shard, list);
  }
  return shards;
}
