// AdamW over a list of parameter tensors on the GPU, with global-norm clipping. The host sees
// one number per tensor per step (Σ grad²): enough for the global norm, the clip factor, and to
// name the tensor where a NaN or Inf first appeared.
import type { Gpu } from '../gpu/device.ts';
import { Batch, run } from '../gpu/dispatch.ts';
import { readF32 } from '../gpu/readback.ts';
import { createTensor, releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { adamwStep, sumSquares, type AdamWHyper } from './kernels.ts';

export interface Parameter {
  name: string;
  value: Tensor;
  grad: Tensor;
}

export interface GradientReport {
  /** √Σ grad² over every parameter (NaN or Inf when some gradient is). */
  norm: number;
  /** Names of parameters whose gradient holds a NaN or Inf. */
  nonFinite: string[];
}

export class AdamW {
  private readonly m: Tensor[];
  private readonly v: Tensor[];
  /** Steps taken (the bias corrections' t). */
  steps = 0;

  constructor(
    private readonly gpu: Gpu,
    readonly params: readonly Parameter[],
  ) {
    const zeros = (p: Parameter) =>
      uploadTensor(gpu, new Float32Array(p.value.numel), p.value.shape, 'f32', `${p.name} moment`);
    this.m = params.map(zeros);
    this.v = params.map(zeros);
  }

  async gradients(): Promise<GradientReport> {
    const sums = createTensor(this.gpu, [this.params.length], 'f32', 'Σ grad²');
    try {
      await run(this.gpu, (b) => {
        this.params.forEach((p, i) => {
          sumSquares(b, p.grad, sums, i);
        });
      });
      const squares = await readF32(this.gpu, sums);
      const total = squares.reduce((a, s) => a + s, 0);
      return {
        norm: Math.sqrt(total),
        nonFinite: this.params.filter((_, i) => !Number.isFinite(squares[i])).map((p) => p.name),
      };
    } finally {
      releaseTensor(this.gpu, sums);
    }
  }

  /** One update with every gradient multiplied by gradScale (the clip factor). */
  async step(hyper: AdamWHyper, gradScale: number): Promise<void> {
    this.steps++;
    const batch = new Batch(this.gpu);
    this.params.forEach((p, i) => {
      adamwStep(
        batch,
        { param: p.value, grad: p.grad, m: this.m[i], v: this.v[i] },
        hyper,
        this.steps,
        gradScale,
      );
    });
    await batch.submit();
  }

  /** First and second moments, per parameter, for checkpoints. */
  async moments(): Promise<{ m: Float32Array; v: Float32Array }[]> {
    return Promise.all(
      this.params.map(async (_, i) => ({
        m: await readF32(this.gpu, this.m[i]),
        v: await readF32(this.gpu, this.v[i]),
      })),
    );
  }

  restore(steps: number, moments: readonly { m: Float32Array; v: Float32Array }[]): void {
    if (moments.length !== this.params.length)
      throw new RangeError(
        `checkpoint has ${moments.length} moments for ${this.params.length} parameters`,
      );
    this.steps = steps;
    moments.forEach((s, i) => {
      this.gpu.device.queue.writeBuffer(this.m[i].buffer, 0, s.m);
      this.gpu.device.queue.writeBuffer(this.v[i].buffer, 0, s.v);
    });
  }

  dispose(): void {
    releaseTensor(this.gpu, ...this.m, ...this.v);
  }
}

/** Clip factor for a global norm: min(1, max / norm); 1 when clipping is off (max ≤ 0). */
export function clipFactor(norm: number, maxNorm: number): number {
  return maxNorm > 0 && norm > maxNorm ? maxNorm / norm : 1;
}
