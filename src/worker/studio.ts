import { acquireGpu, type Gpu } from '../gpu/device.ts';
import { run, type Batch } from '../gpu/dispatch.ts';
import { GpuError } from '../gpu/errors.ts';
import { readF32 } from '../gpu/readback.ts';
import type { ShaderLibrary } from '../gpu/shaders.ts';
import { releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { affineCpu, unaryCpu } from '../linalg/cpu/elementwise.ts';
import { reduceRowsCpu } from '../linalg/cpu/reduce.ts';
import { maxRelativeError } from '../linalg/compare.ts';
import { affine, unary } from '../linalg/elementwise.ts';
import { reduceAll } from '../linalg/reduce.ts';
import type { GpuStatus, SelfCheckResult, StudioApi } from './api.ts';

export interface StudioEnvironment {
  /** `navigator.gpu`, or undefined where the browser has no WebGPU. */
  gpu: GPU | undefined;
  shaders: ShaderLibrary;
  /** False on http:// pages other than localhost, where browsers hide WebGPU. */
  secureContext: boolean;
}

/** The Studio API over one GPU device; the worker exposes it, Node tests call it directly. */
export function createStudio(env: StudioEnvironment): StudioApi {
  let gpu: Gpu | undefined;
  let notify: (status: GpuStatus) => void = () => undefined;

  async function acquire(): Promise<GpuStatus> {
    if (!env.gpu) {
      return env.secureContext
        ? { state: 'unavailable', reason: 'no-webgpu', detail: 'navigator.gpu is undefined' }
        : {
            state: 'unavailable',
            reason: 'insecure-context',
            detail: 'WebGPU needs https:// or localhost',
          };
    }
    try {
      gpu = await acquireGpu(env.gpu, {
        shaders: env.shaders,
        onLost: (info) => {
          gpu = undefined;
          notify({ state: 'lost', reason: info.reason, detail: info.message });
        },
      });
      return { state: 'ready', adapter: gpu.adapter };
    } catch (e) {
      const reason =
        e instanceof GpuError && e.context === 'requestAdapter' ? 'no-adapter' : 'device-failed';
      return { state: 'unavailable', reason, detail: e instanceof Error ? e.message : String(e) };
    }
  }

  function requireGpu(): Gpu {
    if (!gpu)
      throw new GpuError(
        'No GPU device: connect first (or reconnect after a loss).',
        'studio',
        'unavailable',
      );
    return gpu;
  }

  return {
    async connect(onStatus) {
      notify = onStatus;
      if (gpu) return { state: 'ready', adapter: gpu.adapter };
      return acquire();
    },
    async reconnect() {
      gpu?.destroy();
      gpu = undefined;
      const status = await acquire();
      notify(status);
      return status;
    },
    async selfCheck() {
      return selfCheck(requireGpu());
    },
  };
}

// ---- Self-check: every kernel family against its CPU reference ---------------

const CHECK_ELEMENTS = 100_003;

interface Check {
  kernel: string;
  expected: Float32Array;
  /** Errors are relative to max(|expected|, floor). */
  floor: number;
  tolerance: number;
  record: (batch: Batch) => Tensor;
}

async function selfCheck(gpu: Gpu): Promise<SelfCheckResult[]> {
  // A fixed LCG so that every run checks the same numbers.
  let seed = 1;
  const x = Float32Array.from({ length: CHECK_ELEMENTS }, () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return (seed / 2147483648) * 8 - 4;
  });
  const sumOfMagnitudes = x.reduce((s, v) => s + Math.abs(v), 0);
  const input = uploadTensor(gpu, x, [x.length], 'f32');
  const checks: Check[] = [
    {
      kernel: 'elementwise silu',
      expected: unaryCpu('silu', x),
      floor: 1e-6,
      tolerance: 2e-6,
      record: (b) => unary(b, 'silu', input),
    },
    {
      kernel: 'elementwise affine',
      expected: affineCpu(x, 0.5, -1),
      floor: 1,
      tolerance: 1e-6,
      record: (b) => affine(b, input, 0.5, -1),
    },
    {
      kernel: 'reduce sum',
      expected: reduceRowsCpu('sum', x, 1, x.length),
      floor: sumOfMagnitudes,
      tolerance: 1e-6,
      record: (b) => reduceAll(b, 'sum', input),
    },
    {
      kernel: 'reduce max',
      expected: reduceRowsCpu('max', x, 1, x.length),
      floor: 1,
      tolerance: 0,
      record: (b) => reduceAll(b, 'max', input),
    },
  ];
  try {
    const results: SelfCheckResult[] = [];
    for (const c of checks) {
      const start = performance.now();
      const out = await run(gpu, c.record);
      const actual = await readF32(gpu, out);
      const ms = performance.now() - start;
      releaseTensor(gpu, out);
      const maxError = maxRelativeError(actual, c.expected, c.floor);
      results.push({
        kernel: c.kernel,
        elements: x.length,
        ok: maxError <= c.tolerance,
        maxError,
        tolerance: c.tolerance,
        ms,
      });
    }
    return results;
  } finally {
    releaseTensor(gpu, input);
  }
}
