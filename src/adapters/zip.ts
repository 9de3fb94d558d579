// Reading chosen entries of an untrusted .zip in bounded memory. The central directory is read
// first and an entry is refused when its declared size is over the limit, before anything is
// inflated; inflation then runs in small compressed slices (DEFLATE expands at most ~1032×) and
// stops as soon as the output outgrows the declared size, so a zip that lies about its sizes
// costs no more memory than one that does not. Only stored and DEFLATE entries are read, and
// ZIP64 sizes (entries of 4 GiB or more) are refused as too large.
import { Inflate } from 'fflate';
import { errorMessage } from '../errors.ts';
import { FormatError } from '../model/errors.ts';

export interface ZipLimits {
  /** The most bytes one entry, and all the entries read together, may inflate to. */
  maxBytes: number;
}

interface Entry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  localHeader: number;
}

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const SLICE = 4096;

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(bytes < 2 ** 20 ? 2 : 0)} MiB`;
}

/** The central directory's entries; a FormatError when the zip is not one. */
function centralDirectory(bytes: Uint8Array, file: string): Entry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u32 = (at: number) => view.getUint32(at, true);
  const u16 = (at: number) => view.getUint16(at, true);
  let end = bytes.byteLength - 22;
  // The end record sits in the last 22 bytes plus a comment of at most 65535.
  while (end >= 0 && end >= bytes.byteLength - 22 - 65535 && u32(end) !== EOCD) end--;
  if (end < 0 || u32(end) !== EOCD) throw new FormatError(file, 'is not a zip (no end record)');
  const count = u16(end + 10);
  let at = u32(end + 16);
  const entries: Entry[] = [];
  const decoder = new TextDecoder();
  for (let i = 0; i < count; i++) {
    if (at + 46 > bytes.byteLength || u32(at) !== CENTRAL)
      throw new FormatError(file, 'has a damaged central directory');
    const nameLength = u16(at + 28);
    const entry = {
      method: u16(at + 10),
      compressedSize: u32(at + 20),
      size: u32(at + 24),
      localHeader: u32(at + 42),
      name: decoder.decode(bytes.subarray(at + 46, at + 46 + nameLength)),
    };
    entries.push(entry);
    at += 46 + nameLength + u16(at + 30) + u16(at + 32);
  }
  return entries;
}

/** An entry's bytes, inflated in slices, never beyond its declared size. */
function readEntry(bytes: Uint8Array, entry: Entry, file: string): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at = entry.localHeader;
  if (at + 30 > bytes.byteLength || view.getUint32(at, true) !== LOCAL)
    throw new FormatError(file, `has a damaged local header for ${entry.name}`);
  const start = at + 30 + view.getUint16(at + 26, true) + view.getUint16(at + 28, true);
  const data = bytes.subarray(start, start + entry.compressedSize);
  if (data.byteLength !== entry.compressedSize)
    throw new FormatError(file, `is truncated inside ${entry.name}`);
  if (entry.method === 0) {
    if (entry.size !== entry.compressedSize)
      throw new FormatError(file, `stores ${entry.name} with two different sizes`);
    return data.slice();
  }
  if (entry.method !== 8)
    throw new FormatError(file, `compresses ${entry.name} by method ${entry.method}, not DEFLATE`);
  const out = new Uint8Array(entry.size);
  let written = 0;
  const inflate = new Inflate((chunk) => {
    if (written + chunk.byteLength > entry.size)
      throw new FormatError(
        file,
        `declares ${entry.name} as ${entry.size} bytes but it inflates to more: refused (a zip bomb?)`,
      );
    out.set(chunk, written);
    written += chunk.byteLength;
  });
  try {
    for (let i = 0; i < data.byteLength; i += SLICE)
      inflate.push(data.subarray(i, i + SLICE), i + SLICE >= data.byteLength);
    if (data.byteLength === 0) inflate.push(data, true);
  } catch (e) {
    if (e instanceof FormatError) throw e;
    throw new FormatError(file, `holds a damaged ${entry.name} (${errorMessage(e)})`);
  }
  if (written !== entry.size)
    throw new FormatError(
      file,
      `declares ${entry.name} as ${entry.size} bytes but holds ${written}`,
    );
  return out;
}

/**
 * The entries of a zip for which `wanted(name)` holds, by their path in the zip. Refuses,
 * naming the entry, what would inflate beyond `limits.maxBytes` (declared or real).
 */
export function readZip(
  bytes: Uint8Array,
  file: string,
  wanted: (name: string) => boolean,
  limits: ZipLimits,
): Map<string, Uint8Array> {
  const entries = centralDirectory(bytes, file).filter((e) => wanted(e.name));
  let total = 0;
  for (const e of entries) {
    if (e.size === 0xffffffff || e.compressedSize === 0xffffffff || e.localHeader === 0xffffffff)
      throw new FormatError(file, `holds ${e.name} of 4 GiB or more: too large for an adapter`);
    total += e.size;
    if (e.size > limits.maxBytes || total > limits.maxBytes)
      throw new FormatError(
        file,
        `would inflate to ${mib(total)} (${e.name}: ${mib(e.size)}), more than the ${mib(limits.maxBytes)} an adapter may take here`,
      );
  }
  return new Map(entries.map((e) => [e.name, readEntry(bytes, e, file)]));
}
