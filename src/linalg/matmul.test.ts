import { describe, expect, it } from 'vitest';
import { Batch, run } from '../gpu/dispatch.ts';
import { ShapeError } from '../gpu/errors.ts';
import { readF32 } from '../gpu/readback.ts';
import { releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { useGpu } from '../testing/gpu.ts';
import { randomArray, seededRandom } from '../testing/random.ts';
import { maxRelativeError } from './compare.ts';
import { matmulCpu } from './cpu/matmul.ts';
import type { Gpu } from '../gpu/device.ts';
import { decodeHalf, encodeHalf } from '../gpu/half.ts';
import {
  bOperand,
  matmul,
  matmulShape,
  tileFor,
  tuningKey,
  type MatmulOptions,
  type MatmulTile,
} from './matmul.ts';
import { matmulCandidates, TILE_CANDIDATES, tuneMatmul } from './matmul-tuning.ts';

const gpu = useGpu();

/** Relative to the largest entry of the reference: f32 accumulation over K terms. */
function relativeToScale(actual: Float32Array, expected: Float32Array): number {
  const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-30);
  return maxRelativeError(actual, expected, scale);
}

async function check(
  aShape: number[],
  bShape: number[],
  options: MatmulOptions & { cInit?: Float32Array },
  seed: number,
): Promise<number> {
  const random = seededRandom(seed);
  const a = randomArray(
    random,
    aShape.reduce((x, y) => x * y, 1),
  );
  const b = randomArray(
    random,
    bShape.reduce((x, y) => x * y, 1),
  );
  const s = matmulShape(aShape, bShape, options.transA, options.transB);
  const at = uploadTensor(gpu(), a, aShape, 'f32');
  const bt = uploadTensor(gpu(), b, bShape, 'f32');
  let into: Tensor | undefined;
  if (options.cInit) into = uploadTensor(gpu(), options.cInit, s.outShape, 'f32');
  const ct = await run(gpu(), (batch) => matmul(batch, at, bt, { ...options, into }));
  expect(ct.shape).toEqual(s.outShape);
  const actual = await readF32(gpu(), ct);
  const expected = matmulCpu(a, b, s, { ...options, c: options.cInit });
  releaseTensor(gpu(), at, bt, ct);
  return relativeToScale(actual, expected);
}

const TRANSPOSES = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
] as const;

describe('matmul matches the CPU reference', () => {
  // Seeded property test: random shapes including 1, primes and sizes off the 8×4 block grid.
  const random = seededRandom(2024);
  const dims = [1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 31, 33, 64, 67, 97, 128];
  const pick = () => dims[Math.floor(random() * dims.length)];
  const cases = Array.from({ length: 40 }, (_, i) => ({
    M: pick(),
    N: pick(),
    K: pick(),
    batch: i % 5 === 0 ? 3 : 0,
    trans: TRANSPOSES[i % 4],
    seed: i,
  }));
  it.each(cases)(
    'M=$M N=$N K=$K batch=$batch trans=$trans',
    async ({ M, N, K, batch, trans, seed }) => {
      const [transA, transB] = trans;
      const lead = batch ? [batch] : [];
      const aShape = [...lead, ...(transA ? [K, M] : [M, K])];
      const bShape = [...lead, ...(transB ? [N, K] : [K, N])];
      expect(await check(aShape, bShape, { transA, transB }, seed)).toBeLessThan(1e-5);
    },
  );

  it.each(TRANSPOSES)(
    'LoRA-like tall-skinny shapes (transA=%s, transB=%s)',
    async (transA, transB) => {
      const T = 301;
      const d = 96;
      const r = 8;
      // x·Aᵀ: [T×d]·[d×r], then h·Bᵀ: [T×r]·[r×d], and the gradient xᵀ·g: [d×T]·[T×r].
      for (const [M, K, N] of [
        [T, d, r],
        [T, r, d],
        [d, T, r],
      ] as const) {
        const aShape = transA ? [K, M] : [M, K];
        const bShape = transB ? [N, K] : [K, N];
        expect(await check(aShape, bShape, { transA, transB }, M + N + K)).toBeLessThan(1e-5);
      }
    },
  );

  it.each(TRANSPOSES)(
    'vec4 path: dimensions multiples of 4, M = 8k + 4 (transA=%s, transB=%s)',
    async (transA, transB) => {
      for (const [M, N, K] of [
        [12, 20, 16],
        [4, 4, 4],
        [36, 8, 288],
      ] as const) {
        const aShape = [2, ...(transA ? [K, M] : [M, K])];
        const bShape = [2, ...(transB ? [N, K] : [K, N])];
        expect(await check(aShape, bShape, { transA, transB }, M * N)).toBeLessThan(1e-5);
      }
    },
  );

  it('applies alpha and accumulates beta·C into an existing output', async () => {
    const cInit = randomArray(seededRandom(77), 13 * 11);
    expect(await check([13, 29], [29, 11], { alpha: -0.5, beta: 2, cInit }, 5)).toBeLessThan(1e-5);
  });

  it('shares an unbatched operand across the batch', async () => {
    expect(await check([4, 10, 12], [12, 6], {}, 6)).toBeLessThan(1e-5);
    expect(await check([10, 12], [4, 12, 6], {}, 7)).toBeLessThan(1e-5);
  });

  it('gives beta·C for an empty inner dimension and nothing for an empty output', async () => {
    const cInit = new Float32Array([1, 2, 3, 4, 5, 6]);
    expect(await check([2, 0], [0, 3], { beta: 3, cInit }, 8)).toBe(0);
    const empty = await run(gpu(), (b) =>
      matmul(
        b,
        uploadTensor(gpu(), new Float32Array(0), [0, 5], 'f32'),
        uploadTensor(gpu(), new Float32Array(5), [5, 1], 'f32'),
      ),
    );
    expect(empty.shape).toEqual([0, 1]);
  });
});

describe('matmul refuses bad shapes with a message naming them', () => {
  it.each([
    [[3, 4], [5, 6], {}, /inner dimensions differ \(4 vs 5\)/],
    [[2, 3, 4], [3, 4, 5], {}, /batch dimensions differ/],
    [[4], [4, 2], {}, /at least 2 dimensions/],
    [[3, 4], [4, 5], { beta: 1 }, /beta needs an output/],
  ] as const)('%j · %j', (aShape, bShape, options, message) => {
    const a = uploadTensor(
      gpu(),
      new Float32Array(aShape.reduce((x, y) => x * y, 1)),
      aShape,
      'f32',
    );
    const b = uploadTensor(
      gpu(),
      new Float32Array(bShape.reduce((x, y) => x * y, 1)),
      bShape,
      'f32',
    );
    expect(() => matmul(new Batch(gpu()), a, b, options)).toThrow(ShapeError);
    expect(() => matmul(new Batch(gpu()), a, b, options)).toThrow(message);
  });
});

describe('B stored in half precision (f16, bf16)', () => {
  // Every tile on unaligned shapes (B with an odd element count and odd batch strides), aligned
  // ones (vec4 loads, subgroups) and the workgroup-memory tiles.
  const cases: [number[], number[], MatmulOptions][] = [
    [[37, 29], [29, 21], {}],
    [[2, 29, 37], [2, 21, 29], { transA: true, transB: true }],
    [[2, 130, 70], [150, 70], { transB: true }],
    [[2, 76, 64], [2, 64, 40], {}],
    [[76, 64], [40, 64], { transB: true }],
  ];
  const tiles: MatmulTile[] = [...TILE_CANDIDATES, { wgX: 8, wgY: 8, subgroups: 1 }];

  it.each(['f16', 'bf16'] as const)(
    '%s: the same bits as f32 storage of the same values, for every tile',
    async (dtype) => {
      for (const [i, [aShape, bShape, options]] of cases.entries()) {
        const random = seededRandom(40 + i);
        const count = (shape: number[]) => shape.reduce((x, y) => x * y, 1);
        const a = randomArray(random, count(aShape));
        const bits = encodeHalf(randomArray(random, count(bShape)), dtype);
        const values = decodeHalf(bits, dtype);
        const at = uploadTensor(gpu(), a, aShape, 'f32');
        const half = uploadTensor(gpu(), bits, bShape, dtype);
        const full = uploadTensor(gpu(), values, bShape, 'f32');
        const s = matmulShape(aShape, bShape, options.transA, options.transB);
        const expected = matmulCpu(a, values, s, options);
        for (const tile of tiles) {
          const [fromHalf, fromFull] = await Promise.all(
            [half, full].map(async (b) => {
              const c = await run(gpu(), (batch) => matmul(batch, at, b, { ...options, tile }));
              const out = await readF32(gpu(), c);
              releaseTensor(gpu(), c);
              return out;
            }),
          );
          const where = `${JSON.stringify(aShape)} ${JSON.stringify(tile)}`;
          expect(fromHalf, where).toEqual(fromFull);
          expect(relativeToScale(fromHalf, expected), where).toBeLessThan(1e-5);
        }
        releaseTensor(gpu(), at, half, full);
      }
    },
  );

  it('reads f16 natively only where the device has shader-f16', () => {
    const withF16 = { has: { 'shader-f16': true } } as unknown as Gpu;
    const without = { has: { 'shader-f16': false } } as unknown as Gpu;
    expect(bOperand(withF16, 'f16')).toEqual({ files: ['matmul_b_f16'], enables: ['f16'] });
    expect(bOperand(without, 'f16')).toEqual({
      files: ['half', 'matmul_b_f16_packed'],
      enables: [],
    });
    expect(bOperand(withF16, 'bf16').files).toEqual(['half', 'matmul_b_bf16']);
    expect(() => bOperand(without, 'u32')).toThrow(/B stored as u32/);
  });

  it('keeps A and the output in f32', () => {
    const half = uploadTensor(gpu(), new Uint16Array(4), [2, 2], 'bf16');
    const full = uploadTensor(gpu(), new Float32Array(4), [2, 2], 'f32');
    expect(() => matmul(new Batch(gpu()), half, full)).toThrow(/expected f32, got bf16/);
    releaseTensor(gpu(), half, full);
  });
});

describe('workgroup shapes and autotuning', () => {
  it('offers the subgroup kernel exactly where subgroups fit', () => {
    const sharing = matmulCandidates(gpu()).filter((t) => t.subgroups);
    expect(sharing.length > 0).toBe(
      gpu().has.subgroups && (gpu().adapter.subgroupSize?.min ?? 0) >= 4,
    );
  });

  // Every candidate any device may run; those this device cannot (subgroups) fall back to main_vec4.
  it.each([
    ...TILE_CANDIDATES,
    { wgX: 8, wgY: 8, subgroups: 1 as const },
    { wgX: 4, wgY: 16, subgroups: 1 as const },
  ])('every candidate tile computes the same product (%j)', async (tile) => {
    const cases: [number[], number[], MatmulOptions][] = [
      [[37, 29], [29, 21], {}],
      [[29, 37], [21, 29], { transA: true, transB: true }],
      // Several 64×64 tiles and a partial K tile for the workgroup-memory strategy.
      [[2, 130, 70], [2, 150, 70], { transB: true }],
      [[2, 70, 130], [2, 70, 150], { transA: true }],
      // Aligned shapes take the vec4 path (and the subgroup one, where it fits); M = 8k + 4
      // and partial workgroups exercise the clamped rows.
      [[2, 76, 64], [2, 64, 40], {}],
      [[76, 64], [40, 64], { transB: true }],
    ];
    for (const [i, [aShape, bShape, options]] of cases.entries()) {
      expect(
        await check(aShape, bShape, { ...options, tile }, i),
        JSON.stringify(aShape),
      ).toBeLessThan(1e-5);
    }
  });

  it('tunes once per problem class and uses the result', async () => {
    const problem = { M: 100, N: 8, K: 64, transA: false, transB: true };
    expect(gpu().tuning.has(tuningKey(gpu(), problem))).toBe(false);
    const tile = await tuneMatmul(gpu(), problem);
    expect(matmulCandidates(gpu())).toContainEqual(tile);
    expect(gpu().tuning.get(tuningKey(gpu(), problem))).toEqual(tile);
    // Same class (sizes round up to powers of two): no new measurement, same answer.
    const again = { ...problem, M: 120 };
    expect(tuningKey(gpu(), again)).toBe(tuningKey(gpu(), problem));
    expect(tileFor(gpu(), again)).toBe(tile);
    expect(tuningKey(gpu(), problem)).toMatch(/^matmul@[0-9a-f]{8}:NT:M128:N8:K64$/);
    expect(await check([120, 64], [8, 64], { transB: true }, 9)).toBeLessThan(1e-5);
  });
});
