import { expect, it } from 'vitest';
import { run } from '../gpu/dispatch.ts';
import { readF32 } from '../gpu/readback.ts';
import { uploadTensor } from '../gpu/tensor.ts';
import { useGpu } from '../testing/gpu.ts';
import { transpose } from './transpose.ts';

const gpu = useGpu();

it.each([[[1, 1]], [[1, 7]], [[7, 1]], [[13, 257]], [[3, 5, 4]]])(
  'transposes %j',
  async (shape) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = Float32Array.from({ length: n }, (_, i) => i);
    const out = await run(gpu(), (b) => transpose(b, uploadTensor(gpu(), x, shape, 'f32')));
    const [rows, cols] = shape.slice(-2) as [number, number];
    expect(out.shape).toEqual([...shape.slice(0, -2), cols, rows]);
    const expected = new Float32Array(n);
    for (let z = 0; z < n / (rows * cols); z++)
      for (let i = 0; i < rows; i++)
        for (let j = 0; j < cols; j++)
          expected[z * rows * cols + j * rows + i] = x[z * rows * cols + i * cols + j];
    expect(await readF32(gpu(), out)).toEqual(expected);
  },
);
