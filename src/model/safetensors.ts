// safetensors: u64 little-endian header length N, N bytes of JSON, then the raw tensor data.
// JSON: tensor name → {dtype, shape, data_offsets: [begin, end]} (offsets from the end of the
// header), plus an optional "__metadata__" string map. We read F32, F16 and BF16 and write F32;
// U8 is read and written as bytes (compressed adapters' bit streams, src/adapters/compeft.ts);
// every other dtype is recognised by name and refused. Validation is strict (docs/design.md
// §2): a malformed file gets a FormatError naming the file and the tensor, never a crash.
import { errorMessage } from '../errors.ts';
import { halfToFloat } from '../gpu/half.ts';
import { FormatError } from './errors.ts';

export const READABLE_DTYPES = ['F32', 'F16', 'BF16'] as const;
export type ReadableDtype = (typeof READABLE_DTYPES)[number];

/** Bytes per element of every dtype the format defines (for size checks and messages). */
const ITEM_SIZE: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

/** Headers beyond this are refused before they are read (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface TensorEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** Byte range inside the data area (after the header). */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  tensors: Map<string, TensorEntry>;
  metadata: Record<string, string>;
  /** Where the data area starts in the file: 8 + header length. */
  dataStart: number;
}

/** How many header bytes to read: the u64 length prefix, validated against the file size. */
export function headerLength(prefix: Uint8Array, fileSize: number, file: string): number {
  if (prefix.byteLength < 8 || fileSize < 8) {
    throw new FormatError(
      file,
      `too short for safetensors (${fileSize} bytes; a header length alone takes 8)`,
    );
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new FormatError(
      file,
      `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit: not a safetensors file, or corrupt`,
    );
  }
  const length = Number(n);
  if (8 + length > fileSize) {
    throw new FormatError(
      file,
      `header length ${length} runs past the end of the ${fileSize}-byte file (truncated?)`,
    );
  }
  return length;
}

/** Parses and validates the header; `bytes` must hold at least the first 8 + N bytes. */
export function parseHeader(bytes: Uint8Array, fileSize: number, file: string): SafetensorsHeader {
  const length = headerLength(bytes, fileSize, file);
  let json: unknown;
  try {
    json = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + length)),
    );
  } catch (e) {
    throw new FormatError(file, `header is not valid UTF-8 JSON (${errorMessage(e)})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new FormatError(file, 'header is not a JSON object');
  }
  const dataSize = fileSize - 8 - length;
  const tensors = new Map<string, TensorEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(json)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(value, file);
      continue;
    }
    tensors.set(name, parseEntry(name, value, dataSize, file));
  }
  checkNoOverlap([...tensors.values()], file);
  return { tensors, metadata, dataStart: 8 + length };
}

function parseMetadata(value: unknown, file: string): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new FormatError(file, '__metadata__ must be an object of strings');
  }
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string')
      throw new FormatError(file, `__metadata__.${k} must be a string, got ${typeof v}`);
  }
  return value as Record<string, string>;
}

function parseEntry(name: string, value: unknown, dataSize: number, file: string): TensorEntry {
  const where = `tensor "${name}"`;
  if (typeof value !== 'object' || value === null)
    throw new FormatError(file, `${where} is not an object`);
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (typeof dtype !== 'string' || !(dtype in ITEM_SIZE)) {
    throw new FormatError(file, `${where} has unknown dtype ${JSON.stringify(dtype)}`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    throw new FormatError(file, `${where} has an invalid shape ${JSON.stringify(shape)}`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)
  ) {
    throw new FormatError(file, `${where} has invalid data_offsets ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end)
    throw new FormatError(file, `${where} has data_offsets [${begin}, ${end}] that run backwards`);
  if (end > dataSize) {
    throw new FormatError(
      file,
      `${where} ends at byte ${end} of a ${dataSize}-byte data area (truncated file?)`,
    );
  }
  const dims = shape as number[];
  const expected = dims.reduce((a, b) => a * b, 1) * ITEM_SIZE[dtype];
  if (end - begin !== expected) {
    throw new FormatError(
      file,
      `${where}: ${dtype}[${dims.join(', ')}] needs ${expected} bytes but data_offsets hold ${end - begin}`,
    );
  }
  return { name, dtype, shape: dims, begin, end };
}

function checkNoOverlap(entries: TensorEntry[], file: string): void {
  const sorted = entries.filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].begin < sorted[i - 1].end) {
      throw new FormatError(
        file,
        `tensors "${sorted[i - 1].name}" and "${sorted[i].name}" overlap in the data area`,
      );
    }
  }
}

/** A whole safetensors file in memory. */
export interface Safetensors {
  header: SafetensorsHeader;
  /** The tensor's values as f32 (F16 and BF16 converted); refuses other dtypes. */
  read(name: string): Float32Array;
  /** A U8 tensor's bytes (a view into the file); refuses other dtypes. */
  bytes(name: string): Uint8Array;
}

export function readSafetensors(bytes: Uint8Array, file: string): Safetensors {
  const header = parseHeader(bytes, bytes.byteLength, file);
  const tensor = (name: string) => {
    const entry = header.tensors.get(name);
    if (!entry) throw new FormatError(file, `has no tensor "${name}"`);
    return {
      entry,
      raw: bytes.subarray(header.dataStart + entry.begin, header.dataStart + entry.end),
    };
  };
  return {
    header,
    read(name) {
      const { entry, raw } = tensor(name);
      return toFloat32(raw, entry, file);
    },
    bytes(name) {
      const { entry, raw } = tensor(name);
      if (entry.dtype !== 'U8')
        throw new FormatError(file, `tensor "${name}" is ${entry.dtype}, not the U8 expected`);
      return raw;
    },
  };
}

/** Converts raw little-endian tensor bytes to f32. */
export function toFloat32(raw: Uint8Array, entry: TensorEntry, file: string): Float32Array {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  switch (entry.dtype) {
    case 'F32': {
      // A copy: the data may sit at any byte offset, and Float32Array views need 4-byte alignment.
      const out = new Float32Array(raw.byteLength / 4);
      for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
      return out;
    }
    case 'F16': {
      const out = new Float32Array(raw.byteLength / 2);
      for (let i = 0; i < out.length; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
      return out;
    }
    case 'BF16': {
      // bfloat16 is the top half of an f32.
      const bits = new Uint32Array(raw.byteLength / 2);
      for (let i = 0; i < bits.length; i++) bits[i] = view.getUint16(i * 2, true) << 16;
      return new Float32Array(bits.buffer);
    }
    default:
      throw new FormatError(
        file,
        `tensor "${entry.name}" is ${entry.dtype}; only ${READABLE_DTYPES.join(', ')} can be read`,
      );
  }
}

export interface TensorToWrite {
  name: string;
  shape: readonly number[];
  /** F32 values, or U8 bytes. */
  data: Float32Array | Uint8Array;
}

/**
 * Writes F32 (and U8) safetensors, tensors in the given order, header padded with spaces to a multiple
 * of 8 bytes (as the reference writer does, so data stays aligned).
 */
export function writeSafetensors(
  tensors: readonly TensorToWrite[],
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      throw new FormatError(
        t.name,
        `${t.data.length} values do not fill shape [${t.shape.join(', ')}]`,
      );
    }
    const size = t.data.BYTES_PER_ELEMENT;
    header[t.name] = {
      dtype: size === 4 ? 'F32' : 'U8',
      shape: t.shape,
      data_offsets: [offset, offset + count * size],
    };
    offset += count * size;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  if (padded !== json.byteLength) {
    const spaced = new Uint8Array(padded).fill(0x20);
    spaced.set(json);
    json = spaced;
  }
  const out = new Uint8Array(8 + json.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  const view = new DataView(out.buffer, 8 + json.byteLength);
  let at = 0;
  for (const t of tensors) {
    if (t.data instanceof Uint8Array) {
      out.set(t.data, 8 + json.byteLength + at);
      at += t.data.length;
      continue;
    }
    for (const v of t.data) {
      view.setFloat32(at, v, true);
      at += 4;
    }
  }
  return out;
}
