// SORSA's orthonormal regulariser against an f64 CPU reference: its value (the reported error)
// and the gradient it adds to B and A, checked against finite differences of
// R = ‖BᵀB − I‖² + ‖A·Aᵀ − I‖², on shapes that are not multiples of any tile.
import { describe, expect, it } from 'vitest';
import { readF32 } from '../gpu/readback.ts';
import { releaseTensor, uploadTensor } from '../gpu/tensor.ts';
import { useGpu } from '../testing/gpu.ts';
import { randomArray, seededRandom } from '../testing/random.ts';
import { addOrthonormalGradients } from './orthonormal.ts';

const gpu = useGpu();

/** ‖MᵀM − I‖²_F of M [rows × r] (columns), or ‖M·Mᵀ − I‖²_F of M [r × cols] (rows), in f64. */
function gramError(m: ArrayLike<number>, rows: number, cols: number, of: 'columns' | 'rows') {
  const r = of === 'columns' ? cols : rows;
  const at = (i: number, j: number) => m[i * cols + j];
  let total = 0;
  for (let p = 0; p < r; p++)
    for (let q = 0; q < r; q++) {
      let dot = 0;
      if (of === 'columns') for (let i = 0; i < rows; i++) dot += at(i, p) * at(i, q);
      else for (let j = 0; j < cols; j++) dot += at(p, j) * at(q, j);
      total += (dot - (p === q ? 1 : 0)) ** 2;
    }
  return total;
}

describe('orthonormal regulariser', () => {
  it.each([
    [13, 3, 17],
    [70, 5, 33],
  ])(
    'adds γ·∂R to B [%i × %i] and to A with %i columns, and reports the mean ‖Gram − I‖',
    async (out, r, inner) => {
      const random = seededRandom(out * 7 + r);
      // Near-orthonormal factors, as SORSA's are during training, plus noise.
      const b = randomArray(random, out * r, -0.4, 0.4);
      const a = randomArray(random, r * inner, -0.3, 0.3);
      const gradB = randomArray(random, out * r);
      const gradA = randomArray(random, r * inner);
      const g = gpu();
      const tensors = {
        a: uploadTensor(g, a, [r, inner], 'f32'),
        b: uploadTensor(g, b, [out, r], 'f32'),
        ga: uploadTensor(g, gradA, [r, inner], 'f32'),
        gb: uploadTensor(g, gradB, [out, r], 'f32'),
      };
      try {
        const gamma = 0.03;
        const error = await addOrthonormalGradients(
          g,
          [{ a: tensors.a, b: tensors.b, grads: { a: tensors.ga, b: tensors.gb } }],
          gamma,
        );
        const errB = gramError(b, out, r, 'columns');
        const errA = gramError(a, r, inner, 'rows');
        expect(error).toBeCloseTo((Math.sqrt(errB) + Math.sqrt(errA)) / 2, 4);
        const cases = [
          {
            x: b,
            rows: out,
            cols: r,
            of: 'columns',
            before: gradB,
            after: await readF32(g, tensors.gb),
          },
          {
            x: a,
            rows: r,
            cols: inner,
            of: 'rows',
            before: gradA,
            after: await readF32(g, tensors.ga),
          },
        ] as const;
        for (const { x, rows, cols, of, before, after } of cases) {
          const copy = Float64Array.from(x);
          for (let i = 0; i < copy.length; i += 3) {
            const saved = copy[i];
            copy[i] = saved + 1e-6;
            const plus = gramError(copy, rows, cols, of);
            copy[i] = saved - 1e-6;
            const minus = gramError(copy, rows, cols, of);
            copy[i] = saved;
            const added = gamma * ((plus - minus) / 2e-6);
            expect(after[i] - before[i], `${of} ${i}`).toBeCloseTo(added, 4);
          }
        }
      } finally {
        releaseTensor(g, ...Object.values(tensors));
      }
    },
  );

  it('adds nothing with γ = 0 or to a frozen factor, and reads 0 on orthonormal factors', async () => {
    const g = gpu();
    // B = the first 2 columns of I₅; A = the first 2 rows of I₄.
    const b = uploadTensor(g, Float32Array.from([1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), [5, 2], 'f32');
    const a = uploadTensor(g, Float32Array.from([1, 0, 0, 0, 0, 1, 0, 0]), [2, 4], 'f32');
    const grad = uploadTensor(g, Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), [5, 2], 'f32');
    // Far from orthonormal: twice B.
    const far = uploadTensor(g, Float32Array.from([2, 0, 0, 2, 0, 0, 0, 0, 0, 0]), [5, 2], 'f32');
    try {
      expect(await addOrthonormalGradients(g, [{ a, b, grads: { b: grad } }], 0.5)).toBe(0);
      expect(Array.from(await readF32(g, grad))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      // ‖BᵀB − I‖_F = ‖3·I₂‖ = 3√2 for B, 0 for A: reported, and with γ = 0 nothing added.
      const error = await addOrthonormalGradients(g, [{ a, b: far, grads: { b: grad } }], 0);
      expect(error).toBeCloseTo((3 * Math.SQRT2) / 2, 5);
      expect(Array.from(await readF32(g, grad))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    } finally {
      releaseTensor(g, a, b, far, grad);
    }
  });
});
