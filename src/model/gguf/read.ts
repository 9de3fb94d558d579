// GGUF (llama.cpp's model file), read strictly. Layout (ggml's docs/gguf.md, ggml/src/gguf.cpp's
// gguf_init_from_reader, gguf-py's gguf_reader.py), all little-endian:
//   magic "GGUF", u32 version, u64 tensor count, u64 key-value count;
//   key-values: string key, u32 value type, value (strings are a u64 byte length and UTF-8 bytes;
//     an array is a u32 item type, a u64 count and the items, never an array of arrays);
//   tensor infos: string name, u32 n_dims, n_dims × u64 ne (ne[0] the contiguous row length), u32
//     ggml type, u64 offset into the data section;
//   padding to general.alignment (a u32 power of two, default 32), then the data section; every
//     tensor's offset is a multiple of the alignment.
// Version 3 is what every writer makes; version 2 differs only in not allowing big-endian files,
// so it reads the same. Version 1 (u32 counts) and big-endian files are refused.
//
// Our own reader rather than @huggingface/gguf (not a dependency; it is built to fetch a file's
// header by URL): loading untrusted files needs a reader that bounds every count and length by
// the bytes left before allocating, checks that each tensor's data lies inside the file and is
// aligned, sizes tensors by our own type table (quant-types.ts, which the kernels share), and
// says what is wrong in one FormatError line — the rules safetensors.ts follows — without any
// network.
import { FormatError } from '../errors.ts';
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_VALUE_TYPE } from './constants.ts';
import type { GgufValueTypeName } from './constants.ts';
import { GGML_TYPES, quantTypeById, unsupportedTypeName, type GgmlType } from './quant-types.ts';

/** Counts beyond these are refused before anything is read or allocated. */
const MAX_TENSORS = 1_000_000;
const MAX_METADATA = 1_000_000;
/** ggml's GGML_MAX_DIMS. */
const MAX_DIMS = 4;
/** ggml's GGML_MAX_NAME: names must be shorter (gguf.cpp refuses longer tensor names). */
const MAX_NAME_BYTES = 63;

type ScalarTypeName = Exclude<GgufValueTypeName, 'array'>;

/** What an array of each item type reads as. */
interface GgufArrays {
  u8: Uint8Array;
  i8: Int8Array;
  u16: Uint16Array;
  i16: Int16Array;
  u32: Uint32Array;
  i32: Int32Array;
  f32: Float32Array;
  bool: boolean[];
  string: string[];
  u64: BigUint64Array;
  i64: BigInt64Array;
  f64: Float64Array;
}

/** A metadata value: 64-bit integers as bigint, arrays of numbers as typed arrays. */
export type GgufValue =
  | { type: 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'f64'; value: number }
  | { type: 'u64' | 'i64'; value: bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { [T in ScalarTypeName]: { type: 'array'; itemType: T; value: GgufArrays[T] } }[ScalarTypeName];

export interface GgufTensorInfo {
  name: string;
  type: GgmlType;
  /** ggml's order: ne[0] is the contiguous row length. */
  ne: number[];
  /** Row-major (PyTorch's) order: ne reversed. */
  shape: number[];
  /** Where the tensor's blocks start in the bytes read (data section start + the stored offset). */
  offset: number;
  bytes: number;
}

export interface GgufFile {
  version: number;
  alignment: number;
  /** Where the data section starts in the file. */
  dataOffset: number;
  metadata: Map<string, GgufValue>;
  tensors: Map<string, GgufTensorInfo>;
  /**
   * A tensor's raw blocks, as stored: a view of the file's bytes, no copy (hand it to a GPU
   * buffer, or to `dequantize` with the tensor's type and element count).
   */
  data(name: string): Uint8Array;
}

/** Bytes of each scalar value type. */
const SCALAR_BYTES: Readonly<Record<Exclude<ScalarTypeName, 'string'>, number>> = {
  u8: 1,
  i8: 1,
  u16: 2,
  i16: 2,
  u32: 4,
  i32: 4,
  f32: 4,
  bool: 1,
  u64: 8,
  i64: 8,
  f64: 8,
};

const TYPE_NAMES = new Map<number, GgufValueTypeName>(
  Object.entries(GGUF_VALUE_TYPE).map(([name, code]) => [code, name as GgufValueTypeName]),
);

const utf8 = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();
const utf8Length = (text: string) => encoder.encode(text).byteLength;

/** Reads forward through the file, refusing any read that would run past its end. */
class Cursor {
  at = 0;
  readonly view: DataView;

  constructor(
    readonly bytes: Uint8Array,
    readonly file: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fail(problem: string): never {
    throw new FormatError(this.file, problem);
  }

  get left(): number {
    return this.bytes.byteLength - this.at;
  }

  /** Claims n bytes for `what` and returns where they start. */
  take(n: number, what: string): number {
    if (n > this.left)
      this.fail(
        `${what} needs ${n} bytes at byte ${this.at}, past the end of the ${this.bytes.byteLength}-byte file (truncated?)`,
      );
    this.at += n;
    return this.at - n;
  }

  u32(what: string): number {
    return this.view.getUint32(this.take(4, what), true);
  }

  /** A u64 that must fit a JavaScript number exactly (sizes, counts, offsets). */
  u64(what: string): number {
    const v = this.view.getBigUint64(this.take(8, what), true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`${what} is ${v}, beyond any file's size`);
    return Number(v);
  }

  string(what: string): string {
    const length = this.u64(`${what}'s length`);
    if (length > this.left)
      this.fail(
        `${what} is ${length} bytes long, more than the ${this.left} left in the file (truncated?)`,
      );
    const at = this.take(length, what);
    try {
      return utf8.decode(this.bytes.subarray(at, at + length));
    } catch {
      this.fail(`${what} is not valid UTF-8`);
    }
  }

  /** A count of items of at least `itemBytes` each, bounded by the bytes left and by `max`. */
  count(what: string, itemBytes: number, max = Infinity): number {
    const n = this.u64(what);
    if (n > max) this.fail(`${what} is ${n}, more than the ${max} allowed`);
    if (n * itemBytes > this.left)
      this.fail(
        `${what} is ${n}, but ${n} of them take at least ${n * itemBytes} bytes and ${this.left} are left (truncated or corrupt?)`,
      );
    return n;
  }
}

function readScalar(c: Cursor, type: ScalarTypeName, what: string): GgufValue {
  const { view } = c;
  switch (type) {
    case 'u8':
      return { type, value: view.getUint8(c.take(1, what)) };
    case 'i8':
      return { type, value: view.getInt8(c.take(1, what)) };
    case 'u16':
      return { type, value: view.getUint16(c.take(2, what), true) };
    case 'i16':
      return { type, value: view.getInt16(c.take(2, what), true) };
    case 'u32':
      return { type, value: view.getUint32(c.take(4, what), true) };
    case 'i32':
      return { type, value: view.getInt32(c.take(4, what), true) };
    case 'f32':
      return { type, value: view.getFloat32(c.take(4, what), true) };
    case 'f64':
      return { type, value: view.getFloat64(c.take(8, what), true) };
    case 'u64':
      return { type, value: view.getBigUint64(c.take(8, what), true) };
    case 'i64':
      return { type, value: view.getBigInt64(c.take(8, what), true) };
    case 'bool':
      return { type, value: readBool(c, what) };
    case 'string':
      return { type, value: c.string(what) };
  }
}

function readBool(c: Cursor, what: string): boolean {
  const byte = c.view.getUint8(c.take(1, what));
  if (byte > 1) c.fail(`${what} is a bool stored as ${byte}, not 0 or 1`);
  return byte === 1;
}

type NumberTypeName = Exclude<ScalarTypeName, 'string' | 'bool'>;

/**
 * Arrays of numbers, item by item from their first byte (the file's bytes need not be aligned
 * for a typed-array view).
 */
const NUMBER_ARRAYS: {
  [T in NumberTypeName]: (view: DataView, at: number, n: number) => GgufArrays[T];
} = {
  u8: (v, at, n) => Uint8Array.from({ length: n }, (_, i) => v.getUint8(at + i)),
  i8: (v, at, n) => Int8Array.from({ length: n }, (_, i) => v.getInt8(at + i)),
  u16: (v, at, n) => Uint16Array.from({ length: n }, (_, i) => v.getUint16(at + 2 * i, true)),
  i16: (v, at, n) => Int16Array.from({ length: n }, (_, i) => v.getInt16(at + 2 * i, true)),
  u32: (v, at, n) => Uint32Array.from({ length: n }, (_, i) => v.getUint32(at + 4 * i, true)),
  i32: (v, at, n) => Int32Array.from({ length: n }, (_, i) => v.getInt32(at + 4 * i, true)),
  f32: (v, at, n) => Float32Array.from({ length: n }, (_, i) => v.getFloat32(at + 4 * i, true)),
  f64: (v, at, n) => Float64Array.from({ length: n }, (_, i) => v.getFloat64(at + 8 * i, true)),
  u64: (v, at, n) => BigUint64Array.from({ length: n }, (_, i) => v.getBigUint64(at + 8 * i, true)),
  i64: (v, at, n) => BigInt64Array.from({ length: n }, (_, i) => v.getBigInt64(at + 8 * i, true)),
};

function readArray(c: Cursor, what: string): GgufValue {
  const code = c.u32(`${what}'s item type`);
  const itemType = TYPE_NAMES.get(code);
  if (itemType === undefined) c.fail(`${what} is an array of unknown value type ${code}`);
  if (itemType === 'array') c.fail(`${what} is an array of arrays, which GGUF readers refuse`);
  // A string takes at least its 8-byte length, so its count is bounded as well.
  const n = c.count(`${what}'s item count`, itemType === 'string' ? 8 : SCALAR_BYTES[itemType]);
  if (itemType === 'string')
    return {
      type: 'array',
      itemType,
      value: Array.from({ length: n }, (_, i) => c.string(`${what}[${i}]`)),
    };
  if (itemType === 'bool')
    return {
      type: 'array',
      itemType,
      value: Array.from({ length: n }, (_, i) => readBool(c, `${what}[${i}]`)),
    };
  const at = c.take(n * SCALAR_BYTES[itemType], `${what}'s ${n} items`);
  // The table gives each item type its array type, which TypeScript cannot follow through a union.
  return { type: 'array', itemType, value: NUMBER_ARRAYS[itemType](c.view, at, n) } as GgufValue;
}

function readMetadata(c: Cursor, count: number): Map<string, GgufValue> {
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < count; i++) {
    const key = c.string(`metadata key #${i}`);
    if (key === '') c.fail(`metadata key #${i} is empty`);
    const what = `metadata "${key}"`;
    if (metadata.has(key)) c.fail(`${what} appears twice`);
    const code = c.u32(`${what}'s value type`);
    const type = TYPE_NAMES.get(code);
    if (type === undefined) c.fail(`${what} has unknown value type ${code}`);
    metadata.set(key, type === 'array' ? readArray(c, what) : readScalar(c, type, what));
  }
  return metadata;
}

function alignmentOf(metadata: Map<string, GgufValue>, c: Cursor): number {
  const entry = metadata.get('general.alignment');
  if (entry === undefined) return GGUF_DEFAULT_ALIGNMENT;
  if (entry.type !== 'u32') c.fail(`metadata "general.alignment" must be a u32, not ${entry.type}`);
  const a = entry.value;
  if (a === 0 || (a & (a - 1)) !== 0)
    c.fail(`metadata "general.alignment" is ${a}, not a power of two`);
  return a;
}

/** A tensor info as stored: its offset still relative to the data section. */
type StoredInfo = Omit<GgufTensorInfo, 'offset'> & { stored: number };

function readTensorInfo(c: Cursor, i: number, seen: Set<string>): StoredInfo {
  const name = c.string(`tensor name #${i}`);
  const what = `tensor "${name}"`;
  if (utf8Length(name) > MAX_NAME_BYTES)
    c.fail(`${what}: names are limited to ${MAX_NAME_BYTES} bytes`);
  if (seen.has(name)) c.fail(`${what} appears twice`);
  seen.add(name);
  const dims = c.u32(`${what}'s dimension count`);
  if (dims > MAX_DIMS) c.fail(`${what} has ${dims} dimensions; ggml allows at most ${MAX_DIMS}`);
  const ne = Array.from({ length: dims }, (_, d) => c.u64(`${what}'s ne[${d}]`));
  const code = c.u32(`${what}'s ggml type`);
  const quant = quantTypeById(code);
  if (!quant) {
    const known = unsupportedTypeName(code);
    c.fail(
      known
        ? `${what} is ggml type ${known} (${code}), which is not supported (supported: ${GGML_TYPES.map((t) => t.name).join(', ')})`
        : `${what} has unknown ggml type ${code}`,
    );
  }
  const stored = c.u64(`${what}'s data offset`);
  const rowLength = ne.length > 0 ? ne[0] : 1;
  if (rowLength % quant.blockSize !== 0)
    c.fail(
      `${what}: rows of ${rowLength} values are not whole ${quant.name} blocks of ${quant.blockSize}`,
    );
  // Bytes grow with each dimension; stop as soon as they exceed the file (no overflow past 2⁵³).
  let bytes = 1;
  for (const n of [(rowLength / quant.blockSize) * quant.blockBytes, ...ne.slice(1)]) {
    bytes *= n;
    if (bytes > c.bytes.byteLength)
      c.fail(
        `${what}: ${quant.name}[${ne.join(', ')}] needs more bytes than the ${c.bytes.byteLength}-byte file holds (truncated or corrupt?)`,
      );
  }
  return { name, type: quant.name, ne, shape: [...ne].reverse(), stored, bytes };
}

/** Places each tensor: aligned, inside the file, not overlapping another. */
function placeTensors(
  infos: StoredInfo[],
  dataOffset: number,
  alignment: number,
  c: Cursor,
): Map<string, GgufTensorInfo> {
  const size = c.bytes.byteLength;
  const tensors = new Map<string, GgufTensorInfo>();
  for (const { stored, ...info } of infos) {
    const what = `tensor "${info.name}"`;
    if (stored % alignment !== 0)
      c.fail(`${what}'s data offset ${stored} is not a multiple of the alignment ${alignment}`);
    const offset = dataOffset + stored;
    if (offset + info.bytes > size)
      c.fail(
        `${what}'s ${info.bytes} bytes at [${offset}, ${offset + info.bytes}) run past the end of the ${size}-byte file (truncated?)`,
      );
    tensors.set(info.name, { ...info, offset });
  }
  const sorted = [...tensors.values()]
    .filter((t) => t.bytes > 0)
    .sort((x, y) => x.offset - y.offset);
  for (let i = 1; i < sorted.length; i++)
    if (sorted[i].offset < sorted[i - 1].offset + sorted[i - 1].bytes)
      c.fail(`tensors "${sorted[i - 1].name}" and "${sorted[i].name}" overlap in the data section`);
  return tensors;
}

/** Parses a whole GGUF file held in memory; `file` names it in errors. */
export function readGguf(bytes: Uint8Array, file: string): GgufFile {
  const c = new Cursor(bytes, file);
  const magic = c.u32('the magic "GGUF"');
  if (magic !== GGUF_MAGIC)
    c.fail(
      `not a GGUF file: it starts with ${JSON.stringify(String.fromCharCode(...bytes.subarray(0, 4)))}, not "GGUF"`,
    );
  const version = c.u32('the version');
  // A big-endian file's version 2 or 3 reads as 0x02000000 or 0x03000000 here (gguf.cpp's test).
  if ((version & 0xffff) === 0 && version !== 0)
    c.fail(
      `version ${version >>> 24} in big-endian order: big-endian GGUF files are not supported`,
    );
  if (version !== 2 && version !== 3)
    c.fail(`GGUF version ${version} is not supported (only 2 and 3)`);
  // The smallest tensor info (an empty name, no dims, type, offset) takes 20 bytes, the smallest
  // key-value (a one-byte key, type, one-byte value) 14.
  const tensorCount = c.count('the tensor count', 20, MAX_TENSORS);
  const metadataCount = c.count('the metadata count', 14, MAX_METADATA);
  const metadata = readMetadata(c, metadataCount);
  const alignment = alignmentOf(metadata, c);
  const seen = new Set<string>();
  const infos = Array.from({ length: tensorCount }, (_, i) => readTensorInfo(c, i, seen));
  const dataOffset = Math.ceil(c.at / alignment) * alignment;
  const tensors = placeTensors(infos, dataOffset, alignment, c);
  return {
    version,
    alignment,
    dataOffset,
    metadata,
    tensors,
    data(name) {
      const t = tensors.get(name);
      if (!t) throw new FormatError(file, `has no tensor "${name}"`);
      return bytes.subarray(t.offset, t.offset + t.bytes);
    },
  };
}
