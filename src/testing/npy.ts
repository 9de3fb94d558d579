// NumPy's .npy files (numpy/lib/format.py), only as the fixtures use them: little-endian float32,
// C order. Magic "\x93NUMPY", a version byte pair, the header length (u16 in version 1, u32 in 2
// and 3), a Python dict literal padded with spaces and a newline, then the raw values.

export interface Npy {
  shape: number[];
  data: Float32Array;
}

const MAGIC = '\x93NUMPY';

/** Reads a float32 .npy; anything else (another dtype, Fortran order, a short file) throws. */
export function readNpy(bytes: Uint8Array, file: string): Npy {
  const fail = (problem: string): never => {
    throw new Error(`${file}: ${problem}`);
  };
  if (bytes.byteLength < 10 || String.fromCharCode(...bytes.subarray(0, 6)) !== MAGIC)
    fail('not a .npy file');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6];
  if (major < 1 || major > 3) fail(`unknown .npy version ${major}`);
  const [lengthBytes, headerLength] =
    major === 1 ? [2, view.getUint16(8, true)] : [4, view.getUint32(8, true)];
  const start = 8 + lengthBytes + headerLength;
  if (start > bytes.byteLength) fail('header runs past the end of the file');
  const header = new TextDecoder().decode(bytes.subarray(8 + lengthBytes, start));
  const match =
    /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(((?:\d+, ?)*\d*)\), \}\s*\n$/.exec(
      header,
    );
  if (!match) fail(`not a little-endian float32 C-order array: ${header.trim()}`);
  const shape = match![1]
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  if (bytes.byteLength - start !== count * 4)
    fail(
      `shape [${shape.join(', ')}] needs ${count * 4} bytes of data, the file holds ${bytes.byteLength - start}`,
    );
  // A copy: the data may start at an offset a Float32Array view cannot.
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = view.getFloat32(start + 4 * i, true);
  return { shape, data };
}
