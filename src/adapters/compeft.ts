// ComPEFT (Yadav, Choshen, Raffel, Bansal 2023, "ComPEFT: Compression for Communicating
// Parameter Efficient Updates via Sparsification and Quantization", arXiv:2311.13171): an
// adapter's update kept only at the top `density` share of each tensor's entries by magnitude,
// each kept value replaced by its sign times one scale per tensor, α·σ(τ) — σ the tensor's
// standard deviation before sparsification, α one number for the whole adapter, which the paper
// tunes on validation data. Taken either of the LoRA factors as stored (the task vector a PEFT
// adapter is, B starting at zero) or of each module's ΔW = B·A, brought back to the module's rank
// by truncated SVD on import. The file (docs/sharing.md, "Compressed adapters") is safetensors:
// per tensor its kept positions as LEB128 gaps and its signs as bits (U8), the scales and the
// adapter's config in the metadata, what is not compressed (DoRA's magnitudes, modules_to_save)
// as F32.
import { FormatError } from '../model/errors.ts';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../model/safetensors.ts';
import type { MergeCompute } from '../merge/compute.ts';
import { unscaled } from '../merge/low-rank.ts';
import { adapterFiles, CONFIG, tensorRole, WEIGHTS } from './peft-config.ts';
import { readPeftAdapter, type PeftAdapter } from './peft-read.ts';

export const COMPRESSED_FILE = 'adapter_model.compeft';
const README = 'README.md';
const FORMAT = 'lora-studio-compeft';
const VERSION = '1';

/** What the top-k and the signs are taken of. */
export const COMPRESSION_TARGETS = {
  factors: 'the LoRA factors A and B as stored',
  delta: "each module's ΔW = B·A, factored back to the module's rank on import",
} as const;
export type CompressionTarget = keyof typeof COMPRESSION_TARGETS;

/** Densities of a size/quality curve (the paper's k, as shares). */
export const CURVE_DENSITIES: readonly number[] = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5];

/** The α values tried where eval text can judge them (the paper searches a grid like it). */
export const ALPHA_GRID: readonly number[] = [0.5, 1, 1.5, 2, 3, 4, 5, 6, 8, 10];

/** A tensor's largest entries as signs: all a compressed file holds of it but α. */
export interface TernaryTensor {
  /** factors: the tensor's key in adapter_model.safetensors; delta: the module's path. */
  name: string;
  shape: number[];
  /** Kept entries' row-major indices, ascending. */
  positions: Uint32Array;
  /** One bit per kept entry, set where it is negative (LSB first). */
  negative: Uint8Array;
  /** Standard deviation of all the tensor's entries before sparsification. */
  sigma: number;
  /** delta: the factor keys it restores and the module's rank. */
  factors?: { a: string; b: string; rank: number };
  /** Σ |kept values|: known when compressing, for the least-squares α; not stored. */
  keptAbsSum?: number;
}

/** An adapter sparsified and signed: everything of a compressed file but α. */
export interface TernaryAdapter {
  target: CompressionTarget;
  density: number;
  /** adapter_config.json and the model card, verbatim. */
  config: string;
  readme: string | null;
  ternary: TernaryTensor[];
  /** Tensors stored as they are (a variant's vectors, modules_to_save). */
  stored: { name: string; shape: number[]; data: Float32Array }[];
}

/**
 * Largest tensor compressed or restored (entries): 2^28, 1 GiB as f32 — a 151,936-token
 * embedding's ΔW at width 1,536. Bounds what a hostile file can make the reader allocate.
 */
const MAX_ENTRIES = 2 ** 28;

/** The top `density` share of `values` by magnitude as positions and signs (ties: lower index). */
export function ternarize(
  name: string,
  shape: number[],
  values: Float32Array,
  density: number,
): TernaryTensor {
  const n = values.length;
  if (n > MAX_ENTRIES)
    throw new RangeError(
      `${name} has ${n} entries, more than the ${MAX_ENTRIES} a compressed tensor may hold`,
    );
  let sum = 0;
  let squares = 0;
  for (const v of values) {
    sum += v;
    squares += v * v;
  }
  const mean = sum / n;
  const sigma = Math.sqrt(Math.max(0, squares / n - mean * mean));
  const k = Math.min(n, Math.max(1, Math.round(density * n)));
  // The k-th largest magnitude; entries above it are kept, then ties in index order.
  const magnitudes = Float32Array.from(values, Math.abs).sort();
  const threshold = magnitudes[n - k];
  let ties = k - (n - upperBound(magnitudes, threshold));
  const positions = new Uint32Array(k);
  const negative = new Uint8Array(Math.ceil(k / 8));
  let count = 0;
  let keptAbsSum = 0;
  for (let i = 0; i < n && count < k; i++) {
    const m = Math.abs(values[i]);
    if (m < threshold || (m === threshold && ties-- <= 0)) continue;
    if (values[i] < 0) negative[count >> 3] |= 1 << (count & 7);
    positions[count++] = i;
    keptAbsSum += m;
  }
  return { name, shape, positions, negative, sigma, keptAbsSum };
}

/** The first index of sorted `xs` holding a value above `x`. */
function upperBound(xs: Float32Array, x: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The tensor with every kept entry at ±scale and zeros elsewhere. */
export function dense(t: TernaryTensor, scale: number): Float32Array {
  const out = new Float32Array(t.shape.reduce((a, b) => a * b, 1));
  t.positions.forEach((p, i) => {
    out[p] = (t.negative[i >> 3] >> (i & 7)) & 1 ? -scale : scale;
  });
  return out;
}

/**
 * The α minimising Σ‖τ − α·σ·sign(τ)⊙mask‖² over the adapter's compressed tensors: what the
 * compression keeps closest to the update without data to judge by.
 */
export function leastSquaresAlpha(adapter: TernaryAdapter): number {
  let num = 0;
  let den = 0;
  for (const t of adapter.ternary) {
    if (t.keptAbsSum === undefined) throw new Error(`${t.name}: its kept magnitudes are unknown`);
    num += t.sigma * t.keptAbsSum;
    den += t.sigma * t.sigma * t.positions.length;
  }
  return den > 0 ? num / den : 1;
}

/** The adapter's tensors sparsified and signed (an adapter PEFT or the studio wrote). */
export async function ternaryAdapter(
  files: ReadonlyMap<string, Uint8Array>,
  name: string,
  target: CompressionTarget,
  density: number,
  compute: MergeCompute,
): Promise<TernaryAdapter> {
  if (!(density > 0 && density <= 1))
    throw new RangeError(`the density must be in (0, 1], not ${density}`);
  const adapter = readPeftAdapter(files, name);
  if (adapter.nonFinite.length > 0)
    throw new FormatError(
      name,
      `holds NaN or Inf (${adapter.nonFinite[0].tensor}): there is no update to compress`,
    );
  const { weights } = adapterFiles(files, name, { strict: true });
  const st = readSafetensors(weights, WEIGHTS);
  const ternary: TernaryTensor[] = [];
  const stored: TernaryAdapter['stored'] = [];
  const factorKeys = new Map<string, { a?: string; b?: string }>();
  for (const [key, info] of st.header.tensors) {
    const role = tensorRole(key);
    if (role.kind !== 'factor') stored.push({ name: key, shape: info.shape, data: st.read(key) });
    else if (target === 'factors') ternary.push(ternarize(key, info.shape, st.read(key), density));
    else {
      const keys = factorKeys.get(role.path) ?? factorKeys.set(role.path, {}).get(role.path)!;
      keys[role.which === 'A' ? 'a' : 'b'] = key;
    }
  }
  for (const [path, keys] of factorKeys) {
    const module = adapter.modules.get(path)!;
    const x = unscaled(module);
    const [delta] = await compute.denseRows([x], 0, x.out);
    const t = ternarize(path, [x.out, x.in], delta!, density);
    ternary.push({ ...t, factors: { a: keys.a!, b: keys.b!, rank: module.rank } });
  }
  return {
    target,
    density,
    config: new TextDecoder().decode(files.get(CONFIG)),
    readme: files.has(README) ? new TextDecoder().decode(files.get(README)) : null,
    ternary,
    stored,
  };
}

// ─── The file ────────────────────────────────────────────────────────────────────────────────

interface TensorMeta {
  name: string;
  shape: number[];
  count: number;
  sigma: number;
  factors?: { a: string; b: string; rank: number };
}

interface CompressionMeta {
  target: CompressionTarget;
  density: number;
  alpha: number;
  tensors: TensorMeta[];
}

/** Non-negative integers as LEB128 (7 bits a byte, low first). */
function leb128(values: Iterable<number>, count: number): Uint8Array {
  const out = new Uint8Array(count * 5);
  let at = 0;
  for (let v of values) {
    while (v >= 0x80) {
      out[at++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    out[at++] = v;
  }
  return out.slice(0, at);
}

function* gaps(positions: Uint32Array): Generator<number> {
  let next = 0;
  for (const p of positions) {
    yield p - next;
    next = p + 1;
  }
}

/** Positions back from their gaps; each must lie inside the tensor and every byte be used. */
function positionsFrom(bytes: Uint8Array, count: number, size: number, what: string): Uint32Array {
  const positions = new Uint32Array(count);
  let at = 0;
  let next = 0;
  for (let i = 0; i < count; i++) {
    let gap = 0;
    for (let shift = 0; ; shift += 7) {
      if (at >= bytes.length || shift > 28)
        throw new FormatError(COMPRESSED_FILE, `${what}: its positions are cut short or malformed`);
      const byte = bytes[at++];
      gap += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) break;
    }
    const p = next + gap;
    if (p >= size)
      throw new FormatError(
        COMPRESSED_FILE,
        `${what}: a position lies outside its ${size} entries`,
      );
    positions[i] = p;
    next = p + 1;
  }
  if (at !== bytes.length)
    throw new FormatError(
      COMPRESSED_FILE,
      `${what}: ${bytes.length - at} bytes follow its positions`,
    );
  return positions;
}

/** The compressed file: positions and signs as U8 tensors, scales and config in the metadata. */
export function compressedFile(adapter: TernaryAdapter, alpha: number): Uint8Array {
  const meta: CompressionMeta = {
    target: adapter.target,
    density: adapter.density,
    alpha,
    tensors: adapter.ternary.map((t) => ({
      name: t.name,
      shape: t.shape,
      count: t.positions.length,
      sigma: t.sigma,
      ...(t.factors && { factors: t.factors }),
    })),
  };
  const tensors: TensorToWrite[] = adapter.stored.map((s) => ({ ...s }));
  for (const t of adapter.ternary) {
    const positions = leb128(gaps(t.positions), t.positions.length);
    tensors.push({ name: `${t.name}.positions`, shape: [positions.length], data: positions });
    tensors.push({ name: `${t.name}.signs`, shape: [t.negative.length], data: t.negative });
  }
  return writeSafetensors(tensors, {
    format: FORMAT,
    version: VERSION,
    compression: JSON.stringify(meta),
    adapter_config: adapter.config,
    ...(adapter.readme !== null && { readme: adapter.readme }),
  });
}

const positiveInteger = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) > 0;
const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

/** What a file claims before it is checked: any field may be missing or of any type. */
type Claimed<T> = { [K in keyof T]?: unknown };

/** A tensor's record, checked against the file's own tensors. */
function checkedTensor(
  claimed: unknown,
  target: CompressionTarget,
  st: ReturnType<typeof readSafetensors>,
  own: Set<string>,
): TernaryTensor {
  const t = (claimed ?? {}) as Claimed<TensorMeta>;
  if (typeof t.name !== 'string')
    throw new FormatError(COMPRESSED_FILE, 'lists a tensor without a name');
  const what = t.name;
  const shape = Array.isArray(t.shape) && t.shape.every(positiveInteger) ? t.shape : [];
  const size = shape.reduce((a: number, b: number) => a * b, 1);
  const count = t.count;
  if (shape.length === 0 || size > MAX_ENTRIES || !Number.isSafeInteger(count))
    throw new FormatError(COMPRESSED_FILE, `${what}: its shape or count is not valid`);
  if (!(typeof count === 'number' && count >= 0 && count <= size))
    throw new FormatError(COMPRESSED_FILE, `${what}: its shape or count is not valid`);
  if (!finite(t.sigma) || t.sigma < 0)
    throw new FormatError(COMPRESSED_FILE, `${what}: its scale is not a finite number`);
  let factors: TernaryTensor['factors'];
  if (target === 'delta') {
    const f = (t.factors ?? {}) as Claimed<NonNullable<TensorMeta['factors']>>;
    if (
      typeof f.a !== 'string' ||
      typeof f.b !== 'string' ||
      !positiveInteger(f.rank) ||
      shape.length !== 2 ||
      f.rank > Math.min(shape[0], shape[1])
    )
      throw new FormatError(COMPRESSED_FILE, `${what}: its factors' names or rank are not valid`);
    factors = { a: f.a, b: f.b, rank: f.rank };
  }
  for (const suffix of ['positions', 'signs']) {
    if (own.has(`${what}.${suffix}`)) throw new FormatError(COMPRESSED_FILE, `lists ${what} twice`);
    own.add(`${what}.${suffix}`);
  }
  const negative = st.bytes(`${what}.signs`);
  if (negative.length !== Math.ceil(count / 8))
    throw new FormatError(
      COMPRESSED_FILE,
      `${what}: ${negative.length} sign bytes for ${count} entries`,
    );
  return {
    name: what,
    shape,
    positions: positionsFrom(st.bytes(`${what}.positions`), count, size, what),
    negative: negative.slice(),
    sigma: t.sigma,
    ...(factors && { factors }),
  };
}

/** A compressed file read back, every field checked, with its α. */
export function readCompressedFile(bytes: Uint8Array): { adapter: TernaryAdapter; alpha: number } {
  const st = readSafetensors(bytes, COMPRESSED_FILE);
  const metadata = st.header.metadata as Partial<Record<string, string>>;
  if (metadata.format !== FORMAT)
    throw new FormatError(
      COMPRESSED_FILE,
      `is not a LoRA Studio compressed adapter (format ${JSON.stringify(metadata.format ?? null)})`,
    );
  if (metadata.version !== VERSION)
    throw new FormatError(
      COMPRESSED_FILE,
      `is version ${metadata.version}; this studio reads version ${VERSION}`,
    );
  if (typeof metadata.adapter_config !== 'string')
    throw new FormatError(COMPRESSED_FILE, 'has no adapter_config');
  let meta: Claimed<CompressionMeta>;
  try {
    meta = (JSON.parse(metadata.compression ?? '') ?? {}) as Claimed<CompressionMeta>;
  } catch {
    throw new FormatError(COMPRESSED_FILE, 'has no readable compression record');
  }
  const target = meta.target as CompressionTarget;
  if (!Object.hasOwn(COMPRESSION_TARGETS, target) || !finite(meta.alpha) || !finite(meta.density))
    throw new FormatError(
      COMPRESSED_FILE,
      'has a compression record without target, alpha or density',
    );
  if (!Array.isArray(meta.tensors))
    throw new FormatError(COMPRESSED_FILE, 'lists no compressed tensors');
  const own = new Set<string>();
  const ternary = meta.tensors.map((t: unknown) => checkedTensor(t, target, st, own));
  const stored = [...st.header.tensors.values()]
    .filter((e) => !own.has(e.name))
    .map((e) => ({ name: e.name, shape: e.shape, data: st.read(e.name) }));
  return {
    adapter: {
      target,
      density: meta.density,
      config: metadata.adapter_config,
      readme: metadata.readme ?? null,
      ternary,
      stored,
    },
    alpha: meta.alpha,
  };
}

/**
 * The plain PEFT adapter a compressed one stands for: its config and card as they were, every
 * compressed tensor at ±α·σ (delta: ΔW factored back to the module's rank by truncated SVD,
 * zero-padded where ΔW's rank is lower).
 */
export async function restoredFiles(
  adapter: TernaryAdapter,
  alpha: number,
  compute: MergeCompute,
  seed = 0,
): Promise<Map<string, Uint8Array>> {
  const tensors: TensorToWrite[] = adapter.stored.map((s) => ({ ...s }));
  const names = new Set(adapter.stored.map((s) => s.name));
  const add = (name: string) => {
    if (names.has(name)) throw new FormatError(COMPRESSED_FILE, `holds ${name} twice`);
    names.add(name);
  };
  for (const [i, t] of adapter.ternary.entries()) {
    const values = dense(t, alpha * t.sigma);
    if (!t.factors) {
      add(t.name);
      tensors.push({ name: t.name, shape: t.shape, data: values });
      continue;
    }
    const [out, inputs] = t.shape;
    const { rank } = t.factors;
    const { factors } = await compute.truncateDense(
      values,
      { out, in: inputs },
      rank,
      rank,
      seed + i,
    );
    const b = new Float32Array(out * rank);
    for (let o = 0; o < out; o++)
      b.set(factors.b.subarray(o * factors.rank, (o + 1) * factors.rank), o * rank);
    const a = new Float32Array(rank * inputs);
    a.set(factors.a);
    add(t.factors.a);
    add(t.factors.b);
    tensors.push({ name: t.factors.a, shape: [rank, inputs], data: a });
    tensors.push({ name: t.factors.b, shape: [out, rank], data: b });
  }
  tensors.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  const encoder = new TextEncoder();
  const files = new Map<string, Uint8Array>([
    [CONFIG, encoder.encode(adapter.config)],
    [WEIGHTS, writeSafetensors(tensors, { format: 'pt' })],
  ]);
  if (adapter.readme !== null) files.set(README, encoder.encode(adapter.readme));
  return files;
}

/**
 * ‖ΔW − ΔW̃‖_F / ‖ΔW‖_F over all of an adapter's modules together (each at its scale), from r×r
 * Gram matrices: ‖B·A‖² = Σ (BᵀB)∘(AAᵀ), ⟨B·A, B̃·Ã⟩ = tr((BᵀB̃)(ÃAᵀ)).
 */
export function deltaError(original: PeftAdapter, restored: PeftAdapter): number {
  let errors = 0;
  let total = 0;
  for (const [path, m] of original.modules) {
    const r = restored.modules.get(path);
    if (!r) throw new Error(`${path} is missing from the restored adapter`);
    const x = unscaled(m);
    const y = unscaled(r);
    const xx = m.scale * m.scale * inner(x, x);
    errors += xx - 2 * m.scale * r.scale * inner(x, y) + r.scale * r.scale * inner(y, y);
    total += xx;
  }
  return total > 0 ? Math.sqrt(Math.max(0, errors) / total) : 0;
}

/** ⟨B·A, D·C⟩_F for x = (B, A), y = (D, C) of one shape, in f64. */
function inner(x: ReturnType<typeof unscaled>, y: ReturnType<typeof unscaled>): number {
  // BᵀD (x.rank × y.rank) over rows of the outputs, C·Aᵀ (y.rank × x.rank) over the inputs.
  const bd = new Float64Array(x.rank * y.rank);
  for (let o = 0; o < x.out; o++)
    for (let i = 0; i < x.rank; i++) {
      const bi = x.b[o * x.rank + i];
      for (let j = 0; j < y.rank; j++) bd[i * y.rank + j] += bi * y.b[o * y.rank + j];
    }
  let sum = 0;
  for (let i = 0; i < x.rank; i++)
    for (let j = 0; j < y.rank; j++) {
      let ca = 0;
      for (let c = 0; c < x.in; c++) ca += y.a[j * x.in + c] * x.a[i * x.in + c];
      sum += bd[i * y.rank + j] * ca;
    }
  return sum;
}

/** Dropped files with every compressed adapter among them replaced by the PEFT files it restores. */
export async function withCompressedRestored(
  files: readonly { name: string; bytes: Uint8Array }[],
  compute: MergeCompute,
): Promise<{ name: string; bytes: Uint8Array }[]> {
  const restored = await Promise.all(
    files.map(async (f) => {
      if (!f.name.toLowerCase().endsWith('.compeft')) return [f];
      const { adapter, alpha } = readCompressedFile(f.bytes);
      const folder = f.name.replace(/\.compeft$/i, '');
      return [...(await restoredFiles(adapter, alpha, compute))].map(([name, bytes]) => ({
        name: `${folder}/${name}`,
        bytes,
      }));
    }),
  );
  return restored.flat();
}

/** One compression of an adapter, with what it costs. */
export interface Compression {
  file: Uint8Array;
  alpha: number;
  /** How α was chosen: given, least squares on the update, or the best perplexity of the grid. */
  alphaRule: 'given' | 'least-squares' | 'eval';
  /** The PEFT adapter the file restores. */
  restored: Map<string, Uint8Array>;
  /** adapter_model.safetensors's bytes over the file's. */
  ratio: number;
  deltaError: number;
  /** The judge's score of the restored adapter (perplexity on eval text), where one was given. */
  score?: number;
}

/**
 * ComPEFT of an adapter at one density. α: the one given; else, with a judge (lower is better:
 * perplexity on the adapter's eval text), the best of ALPHA_GRID and the least-squares α, as the
 * paper picks it on validation data; else the least-squares α.
 */
export async function compressAdapter(
  files: ReadonlyMap<string, Uint8Array>,
  name: string,
  options: { target: CompressionTarget; density: number; alpha?: number; seed?: number },
  compute: MergeCompute,
  judge?: (restored: Map<string, Uint8Array>) => Promise<number>,
): Promise<Compression> {
  const original = readPeftAdapter(files, name);
  const ternary = await ternaryAdapter(files, name, options.target, options.density, compute);
  const leastSquares = leastSquaresAlpha(ternary);
  const candidates =
    options.alpha !== undefined
      ? [options.alpha]
      : judge
        ? [leastSquares, ...ALPHA_GRID]
        : [leastSquares];
  const alphaRule = options.alpha !== undefined ? 'given' : judge ? 'eval' : 'least-squares';
  let best: Omit<Compression, 'file' | 'ratio' | 'alphaRule'> | null = null;
  for (const alpha of candidates) {
    const restored = await restoredFiles(ternary, alpha, compute, options.seed);
    const error = deltaError(original, readPeftAdapter(restored, name));
    const score = judge ? await judge(restored) : undefined;
    if (!best || (score ?? error) < (best.score ?? best.deltaError))
      best = { alpha, restored, deltaError: error, score };
  }
  const file = compressedFile(ternary, best!.alpha);
  const { weights } = adapterFiles(files, name, { strict: true });
  return { ...best!, file, alphaRule, ratio: weights.length / file.length };
}
