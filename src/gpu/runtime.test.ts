import { describe, expect, it } from 'vitest';
import { unary } from '../linalg/elementwise.ts';
import { useGpu } from '../testing/gpu.ts';
import { bucketSize } from './buffers.ts';
import { acquireGpu } from './device.ts';
import { Batch, linearGrid, packParams, run } from './dispatch.ts';
import { GpuError } from './errors.ts';
import { nodeGpuEntry } from './node.ts';
import { readF32, readTensor } from './readback.ts';
import { nodeShaders } from './shaders-node.ts';
import { createTensor, releaseTensor, uploadTensor } from './tensor.ts';

const BROKEN_WGSL = `
@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  y[id.x] = undefined_function(1.0);
}`;

// A kernel built on another file (`uses`), with its error on its own line 3.
const BASE_WGSL = `fn helper() -> f32 {\n  return 1.0;\n}\n`;
const BROKEN_USER_WGSL = `@compute @workgroup_size(1)\nfn main() {\n  let x: f32 = helper() + missing;\n}\n`;
const TEST_SHADERS: Record<string, string> = {
  broken: BROKEN_WGSL,
  base: BASE_WGSL,
  user: BROKEN_USER_WGSL,
};

const gpu = useGpu({
  shaders: (name) => TEST_SHADERS[name] ?? nodeShaders(name),
});

describe('device acquisition', () => {
  it('reports the adapter, the enabled optional features and the full adapter limits', () => {
    const { adapter, has, limits, device } = gpu();
    expect(adapter.features.length).toBeGreaterThan(0);
    for (const f of adapter.enabled) expect(device.features.has(f)).toBe(true);
    expect(has['shader-f16']).toBe(device.features.has('shader-f16'));
    expect(has.subgroups).toBe(device.features.has('subgroups'));
    // We ask for the adapter's values, not the defaults (16 KiB workgroup storage on SwiftShader).
    expect(limits.maxComputeWorkgroupStorageSize).toBe(
      device.limits.maxComputeWorkgroupStorageSize,
    );
    expect(limits.maxComputeWorkgroupStorageSize).toBeGreaterThanOrEqual(16384);
    expect(limits.maxBufferSize).toBeGreaterThanOrEqual(256 * 1024 * 1024);
  });

  it('works with every optional feature left off', async () => {
    const plain = await acquireGpu(nodeGpuEntry(), {
      shaders: nodeShaders,
      disable: ['shader-f16', 'subgroups', 'timestamp-query'],
    });
    try {
      expect(plain.adapter.enabled).toEqual([]);
      expect(plain.device.features.has('subgroups')).toBe(false);
      const x = uploadTensor(plain, new Float32Array([1, -2, 3]), [3], 'f32');
      const y = await run(plain, (b) => unary(b, 'neg', x));
      expect([...(await readF32(plain, y))]).toEqual([-1, 2, -3]);
    } finally {
      plain.destroy();
    }
  });
});

describe('errors name the kernel and shapes', () => {
  it('reports a shader compile error with file, line and kernel', async () => {
    const y = createTensor(gpu(), [64]);
    const kernel = gpu().pipelines.get({ shader: 'broken' });
    const batch = new Batch(gpu());
    batch.dispatch(kernel, [y], [1], undefined, '[64]');
    const error = await batch.submit().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GpuError);
    expect((error as GpuError).message).toMatch(/^broken\.main: pipeline creation failed/);
    expect((error as GpuError).message).toMatch(/shaders\/broken\.wgsl:5:\d+ .*undefined_function/);
  });

  it('maps error lines back to the right file when a kernel uses another', async () => {
    const kernel = gpu().pipelines.get({ shader: 'user', uses: ['base'] });
    expect(await kernel.compiled).toBeInstanceOf(GpuError);
    expect((await kernel.compiled)?.message).toMatch(/shaders\/user\.wgsl:3:\d+ .*missing/);
  });

  it('reports a validation error with the kernel label and shapes', async () => {
    const x = createTensor(gpu(), [10]);
    const kernel = gpu().pipelines.get({
      shader: 'elementwise',
      entryPoint: 'unary',
      constants: { OP: 0 },
    });
    const batch = new Batch(gpu());
    // Missing the output and params bindings.
    batch.dispatch(kernel, [x], [1], undefined, 'neg [10]');
    const error = await batch.submit().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GpuError);
    expect((error as GpuError).kind).toBe('validation');
    expect((error as GpuError).message).toContain('elementwise.unary{OP=0} neg [10]');
  });

  it('refuses a tensor larger than one binding allows before touching the device', () => {
    const tooBig = Math.floor(gpu().limits.maxStorageBufferBindingSize / 4) + 1;
    expect(() => createTensor(gpu(), [tooBig], 'f32', 'activations')).toThrow(
      /activations f32\[\d+\]: needs \d+ bytes in one binding/,
    );
  });

  it('keeps working after an error', async () => {
    const x = uploadTensor(gpu(), new Float32Array([4]), [1], 'f32');
    const y = await run(gpu(), (b) => unary(b, 'sqrt', x));
    expect([...(await readF32(gpu(), y))]).toEqual([2]);
  });
});

describe('device loss', () => {
  it('reports the loss to the caller and recreates a working device', async () => {
    const losses: string[] = [];
    const first = await acquireGpu(nodeGpuEntry(), {
      shaders: nodeShaders,
      onLost: (info) => losses.push(info.reason),
    });
    // Destroying the device directly (not through our destroy()) stands in for a driver reset.
    first.device.destroy();
    const info = await first.lost;
    expect(losses).toEqual(['destroyed']);
    const second = await info.recreate();
    try {
      const x = uploadTensor(second, new Float32Array([1, 2]), [2], 'f32');
      const y = await run(second, (b) => unary(b, 'square', x));
      expect([...(await readF32(second, y))]).toEqual([1, 4]);
    } finally {
      second.destroy();
    }
  });

  it('does not report our own destroy() as a loss', async () => {
    const losses: string[] = [];
    const g = await acquireGpu(nodeGpuEntry(), {
      shaders: nodeShaders,
      onLost: (i) => losses.push(i.reason),
    });
    g.destroy();
    await g.lost;
    expect(losses).toEqual([]);
  });
});

describe('pipeline cache and buffer pool', () => {
  it('creates one pipeline per kernel and constants', () => {
    const a = gpu().pipelines.get({
      shader: 'elementwise',
      entryPoint: 'unary',
      constants: { OP: 3, WG: 256 },
    });
    const b = gpu().pipelines.get({
      shader: 'elementwise',
      entryPoint: 'unary',
      constants: { WG: 256, OP: 3 },
    });
    const c = gpu().pipelines.get({
      shader: 'elementwise',
      entryPoint: 'unary',
      constants: { OP: 4, WG: 256 },
    });
    expect(a).toBe(b);
    expect(c).not.toBe(a);
    expect(a.label).toBe('elementwise.unary{OP=3,WG=256}');
  });

  it('reuses released buffers of the same size bucket', () => {
    const t1 = createTensor(gpu(), [1000]);
    const buffer = t1.buffer;
    releaseTensor(gpu(), t1);
    const t2 = createTensor(gpu(), [990]);
    expect(t2.buffer).toBe(buffer);
    releaseTensor(gpu(), t2);
  });

  it('buckets sizes in quarter powers of two', () => {
    expect([1, 256, 257, 1024, 1025, 1280, 1281, 5000].map(bucketSize)).toEqual([
      256, 256, 320, 1024, 1280, 1280, 1536, 5120,
    ]);
  });

  it('round-trips every dtype, including an odd number of f16 values', async () => {
    const f16 = uploadTensor(gpu(), new Uint16Array([0x3c00, 0xc000, 0x7bff]), [3], 'f16');
    expect([...(await readTensor(gpu(), f16))]).toEqual([0x3c00, 0xc000, 0x7bff]);
    const i32 = uploadTensor(gpu(), new Int32Array([-5, 7]), [2], 'i32');
    expect([...(await readTensor(gpu(), i32))]).toEqual([-5, 7]);
    const u32 = uploadTensor(gpu(), new Uint32Array([4e9]), [1], 'u32');
    expect([...(await readTensor(gpu(), u32))]).toEqual([4e9]);
  });
});

describe('dispatch helpers', () => {
  it('packs uniform fields little-endian and pads to 16 bytes', () => {
    const bytes = packParams([
      { u32: 7 },
      { i32: -1 },
      { f32: 0.5 },
      { u32: 1 },
      { f32: -Infinity },
    ]);
    expect(bytes.byteLength).toBe(32);
    const view = new DataView(bytes);
    expect(view.getUint32(0, true)).toBe(7);
    expect(view.getInt32(4, true)).toBe(-1);
    expect(view.getFloat32(8, true)).toBe(0.5);
    expect(view.getFloat32(16, true)).toBe(-Infinity);
  });

  it('spreads workgroups over y beyond the per-dimension limit', () => {
    const max = gpu().limits.maxComputeWorkgroupsPerDimension;
    expect(linearGrid(10, gpu())).toEqual([10, 1]);
    const [x, y] = linearGrid(max * 3 + 1, gpu());
    expect(x).toBeLessThanOrEqual(max);
    expect(x * y).toBeGreaterThanOrEqual(max * 3 + 1);
  });
});
