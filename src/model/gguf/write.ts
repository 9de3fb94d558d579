// GGUF writing: the layout read.ts reads, from the other side (GGUF v3, little-endian; magic,
// version, tensor and key-value counts, the key-values, the tensor infos, padding to the default
// alignment of 32 — general.alignment is not written — then each tensor's data at a multiple of
// 32 bytes). Shared by the LoRA export (src/adapters/gguf.ts) and the model files the benchmarks
// write (write-model.ts). The header is built apart from the data so that a model of gigabytes
// can be streamed to disk tensor by tensor.
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_VALUE_TYPE, GGUF_VERSION } from './constants.ts';
import { QUANT_TYPES, rowBytes, type GgmlType } from './quant-types.ts';

/** A metadata value as written: the scalar types and arrays the writers use. */
export type GgufWriteValue =
  | { type: 'string'; value: string }
  | { type: 'u32' | 'i32' | 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'array'; itemType: 'string'; value: readonly string[] }
  | { type: 'array'; itemType: 'u32' | 'i32' | 'f32'; value: ArrayLike<number> };

/** A tensor's entry in the header. */
export interface GgufTensorEntry {
  name: string;
  /** ggml order: ne0 (innermost, contiguous) first. */
  dims: readonly number[];
  type: GgmlType;
}

export const alignUp = (n: number) =>
  Math.ceil(n / GGUF_DEFAULT_ALIGNMENT) * GGUF_DEFAULT_ALIGNMENT;

/** Bytes of a tensor's data (before padding). */
export function tensorBytes(t: GgufTensorEntry): number {
  return rowBytes(
    t.type,
    t.dims.reduce((a, b) => a * b, 1),
  );
}

/** Little-endian bytes, appended piece by piece. */
class ByteSink {
  private readonly chunks: Uint8Array[] = [];
  private length = 0;

  private view(bytes: number): DataView {
    const chunk = new Uint8Array(bytes);
    this.chunks.push(chunk);
    this.length += bytes;
    return new DataView(chunk.buffer);
  }

  u8(value: number): void {
    this.view(1).setUint8(0, value);
  }

  u32(value: number): void {
    this.view(4).setUint32(0, value, true);
  }

  i32(value: number): void {
    this.view(4).setInt32(0, value, true);
  }

  f32(value: number): void {
    this.view(4).setFloat32(0, value, true);
  }

  u64(value: number): void {
    this.view(8).setBigUint64(0, BigInt(value), true);
  }

  raw(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }

  string(text: string): void {
    const bytes = new TextEncoder().encode(text);
    this.u64(bytes.length);
    this.raw(bytes);
  }

  /** Zero bytes up to the next multiple of the alignment. */
  align(): void {
    this.view(alignUp(this.length) - this.length);
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }
}

function writeScalar(sink: ByteSink, type: 'u32' | 'i32' | 'f32', value: number): void {
  if (type === 'u32') sink.u32(value);
  else if (type === 'i32') sink.i32(value);
  else sink.f32(value);
}

function writeValue(sink: ByteSink, value: GgufWriteValue): void {
  sink.u32(GGUF_VALUE_TYPE[value.type]);
  if (value.type === 'string') sink.string(value.value);
  else if (value.type === 'bool') sink.u8(value.value ? 1 : 0);
  else if (value.type !== 'array') writeScalar(sink, value.type, value.value);
  else {
    sink.u32(GGUF_VALUE_TYPE[value.itemType]);
    sink.u64(value.value.length);
    if (value.itemType === 'string') for (const s of value.value) sink.string(s);
    else
      for (let i = 0; i < value.value.length; i++)
        writeScalar(sink, value.itemType, value.value[i]);
  }
}

/**
 * Everything before the data section, padded to the alignment: the data follows as each
 * tensor's bytes in `tensors`' order, each padded to the alignment.
 */
export function ggufHeader(
  entries: readonly (readonly [string, GgufWriteValue])[],
  tensors: readonly GgufTensorEntry[],
): Uint8Array {
  const sink = new ByteSink();
  sink.u32(GGUF_MAGIC);
  sink.u32(GGUF_VERSION);
  sink.u64(tensors.length);
  sink.u64(entries.length);
  for (const [key, value] of entries) {
    sink.string(key);
    writeValue(sink, value);
  }
  let offset = 0;
  for (const t of tensors) {
    sink.string(t.name);
    sink.u32(t.dims.length);
    for (const d of t.dims) sink.u64(d);
    sink.u32(QUANT_TYPES[t.type].id);
    sink.u64(offset);
    offset += alignUp(tensorBytes(t));
  }
  sink.align();
  return sink.bytes();
}

/** A whole GGUF file in memory; each tensor's `data` must be its tensorBytes long. */
export function encodeGguf(
  entries: readonly (readonly [string, GgufWriteValue])[],
  tensors: readonly (GgufTensorEntry & { data: Uint8Array })[],
): Uint8Array {
  const sink = new ByteSink();
  sink.raw(ggufHeader(entries, tensors));
  for (const t of tensors) {
    if (t.data.length !== tensorBytes(t))
      throw new RangeError(`${t.name}: ${t.data.length} bytes, ${tensorBytes(t)} expected`);
    sink.raw(t.data);
    sink.align();
  }
  return sink.bytes();
}

/** F32 values as little-endian bytes. */
export function f32Bytes(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => {
    view.setFloat32(i * 4, v, true);
  });
  return out;
}
