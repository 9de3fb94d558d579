// Untrusted zips in bounded memory: honest entries read as fflate wrote them; declared sizes over
// the limit refused before inflating; entries that inflate beyond what they declare stopped at
// once; damaged archives named as such.
import { zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../model/errors.ts';
import { adapterFiles } from './import.ts';
import { readZip } from './zip.ts';

const all = () => true;
const limits = { maxBytes: 1 << 20 };

/** Overwrites the declared (uncompressed) size of every entry, local and central. */
function declareSize(zip: Uint8Array, size: number): Uint8Array {
  const out = zip.slice();
  const view = new DataView(out.buffer);
  for (let i = 0; i + 4 <= out.length; i++) {
    const signature = view.getUint32(i, true);
    if (signature === 0x04034b50) view.setUint32(i + 22, size, true);
    if (signature === 0x02014b50) view.setUint32(i + 24, size, true);
  }
  return out;
}

describe('readZip', () => {
  const text = new TextEncoder().encode('adapter '.repeat(1000));
  it('reads stored and deflated entries, only those wanted', () => {
    for (const level of [0, 6] as const) {
      const zip = zipSync({ 'a/adapter_config.json': text, 'a/README.md': text }, { level });
      const entries = readZip(zip, 'x.zip', (n) => n.endsWith('.json'), limits);
      expect([...entries.keys()]).toEqual(['a/adapter_config.json']);
      expect(entries.get('a/adapter_config.json')).toEqual(text);
    }
  });

  it('refuses declared sizes over the limit before inflating anything', () => {
    const zip = zipSync({ big: new Uint8Array(3 << 20) });
    expect(() => readZip(zip, 'bomb.zip', all, limits)).toThrow(
      /bomb.zip: would inflate to 3 MiB \(big: 3 MiB\), more than the 1 MiB/,
    );
    const several = zipSync({ a: new Uint8Array(600_000), b: new Uint8Array(600_000) });
    expect(() => readZip(several, 'two.zip', all, limits)).toThrow(/would inflate to 1 MiB/);
    expect(() => readZip(declareSize(zip, 0xffffffff), 'z.zip', all, limits)).toThrow(
      /of 4 GiB or more/,
    );
  });

  it('stops an entry that inflates beyond its declared size at once (a lying bomb)', () => {
    // 64 MiB of zeros compress to ~64 KiB; the directory claims 1000 bytes.
    const liar = declareSize(zipSync({ zeros: new Uint8Array(64 << 20) }), 1000);
    expect(liar.byteLength).toBeLessThan(200_000);
    const before = process.memoryUsage().arrayBuffers;
    const start = performance.now();
    expect(() => readZip(liar, 'liar.zip', all, limits)).toThrow(
      /declares zeros as 1000 bytes but it inflates to more/,
    );
    expect(performance.now() - start).toBeLessThan(2000);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(32 << 20);
    // Declaring more than it holds is caught too.
    const short = declareSize(zipSync({ t: text }), text.byteLength + 5);
    expect(() => readZip(short, 's.zip', all, limits)).toThrow(/holds 8000/);
  });

  it('names damaged or foreign archives', () => {
    const zip = zipSync({ 'adapter_config.json': text });
    expect(() => readZip(new Uint8Array(100), 'n.zip', all, limits)).toThrow(/not a zip/);
    expect(() => readZip(zip.subarray(30), 't.zip', all, limits)).toThrow(FormatError);
    const corrupt = zip.slice();
    corrupt.fill(0xff, 40, 60);
    expect(() => readZip(corrupt, 'c.zip', all, limits)).toThrow(/c.zip: /);
  });
});

it('adapterFiles refuses a zip bomb by its real reason', () => {
  const bomb = zipSync({ 'adapter_model.safetensors': new Uint8Array(3 << 20) });
  expect(() => adapterFiles([{ name: 'drop.zip', bytes: bomb }], limits)).toThrow(
    /drop.zip: would inflate to 3 MiB/,
  );
});
