import { expect, it } from 'vitest';
import { run } from '../gpu/dispatch.ts';
import { decodeHalf, encodeHalf } from '../gpu/half.ts';
import { readF32 } from '../gpu/readback.ts';
import { releaseTensor, uploadTensor } from '../gpu/tensor.ts';
import { useGpu } from '../testing/gpu.ts';
import { randomArray, seededRandom } from '../testing/random.ts';
import { asF32 } from './widen.ts';

const gpu = useGpu();

it.each(['f16', 'bf16'] as const)(
  'widens %s exactly, odd counts and specials included',
  async (dtype) => {
    for (const n of [1, 7, 256 * 2 + 3, 70_001]) {
      const values = randomArray(seededRandom(n), n).map((v) => v * 1e3);
      values.set([Infinity, -0, NaN, 6e-8].slice(0, n));
      const bits = encodeHalf(values, dtype);
      const x = uploadTensor(gpu(), bits, [n], dtype);
      const y = await run(gpu(), (batch) => asF32(batch, x));
      expect(y.dtype).toBe('f32');
      expect(await readF32(gpu(), y)).toEqual(decodeHalf(bits, dtype));
      releaseTensor(gpu(), x, y);
    }
  },
);

it('copies f32 and refuses integer tensors', async () => {
  const values = Float32Array.from([1, -2.5, 3e-9]);
  const x = uploadTensor(gpu(), values, [3], 'f32');
  const y = await run(gpu(), (batch) => asF32(batch, x));
  expect(y.buffer).not.toBe(x.buffer);
  expect(await readF32(gpu(), y)).toEqual(values);
  const ids = uploadTensor(gpu(), Uint32Array.of(1), [1], 'u32');
  await expect(run(gpu(), (batch) => asF32(batch, ids))).rejects.toThrow(/not a float tensor/);
  releaseTensor(gpu(), x, y, ids);
});
