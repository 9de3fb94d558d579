import { BufferPool } from './buffers.ts';
import { GpuError } from './errors.ts';
import { PipelineCache } from './pipelines.ts';
import type { ShaderLibrary } from './shaders.ts';

// ---- What the runtime knows about the adapter and device -------------------

/** Optional features the kernels use when present; code never assumes them. */
export const OPTIONAL_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'] as const;
export type OptionalFeature = (typeof OPTIONAL_FEATURES)[number];

/** Limits the kernels size themselves by; we ask the device for the adapter's full values. */
export const KEY_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxUniformBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
] as const;
export type KeyLimit = (typeof KEY_LIMITS)[number];

/** A plain, serialisable description of the adapter (shown in the UI and by `lora-studio info`). */
export interface AdapterReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for software adapters such as SwiftShader. */
  isFallback: boolean;
  /** Every feature the adapter offers, sorted. */
  features: string[];
  /** The optional features this runtime enabled on the device. */
  enabled: OptionalFeature[];
  limits: Record<KeyLimit, number>;
  subgroupSize: { min: number; max: number } | null;
}

export interface GpuLostInfo {
  reason: string;
  message: string;
  /** Acquires a fresh device on the same `GPU` entry point with the same options. */
  recreate: () => Promise<Gpu>;
}

/** The runtime every kernel receives: one device and the caches bound to it. */
export interface Gpu {
  readonly device: GPUDevice;
  readonly adapter: AdapterReport;
  readonly has: Readonly<Record<OptionalFeature, boolean>>;
  readonly limits: Readonly<Record<KeyLimit, number>>;
  readonly shaders: ShaderLibrary;
  readonly pipelines: PipelineCache;
  readonly pool: BufferPool;
  /**
   * Parameters kernel families tuned for this device (e.g. matmul workgroup shapes), keyed
   * by family and problem class. Filled by autotuning or from a persisted store.
   */
  readonly tuning: Map<string, Readonly<Record<string, number>>>;
  /** Resolves if the device is lost (including on `destroy`), after `onLost` ran. */
  readonly lost: Promise<GpuLostInfo>;
  /** Frees pooled buffers and the device. */
  destroy(): void;
}

export interface AcquireOptions {
  shaders: ShaderLibrary;
  powerPreference?: GPUPowerPreference;
  /** Optional features to leave off even when present (to test the fallback paths). */
  disable?: readonly OptionalFeature[];
  /** Called when the device is lost for any reason other than our own `destroy()`. */
  onLost?: (info: GpuLostInfo) => void;
  /** Errors nothing captured (they would otherwise only reach the console). */
  onUncapturedError?: (error: GpuError) => void;
}

// ---- Acquisition -----------------------------------------------------------

export async function acquireGpu(entry: GPU, options: AcquireOptions): Promise<Gpu> {
  const adapter = await entry.requestAdapter(
    options.powerPreference ? { powerPreference: options.powerPreference } : undefined,
  );
  if (!adapter) {
    throw new GpuError(
      'The browser or driver offered no WebGPU adapter.',
      'requestAdapter',
      'unavailable',
    );
  }
  const enabled = OPTIONAL_FEATURES.filter(
    (f) => adapter.features.has(f) && !options.disable?.includes(f),
  );
  const requiredLimits = Object.fromEntries(KEY_LIMITS.map((k) => [k, adapter.limits[k]]));
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({
      label: 'lora-studio',
      requiredFeatures: enabled,
      requiredLimits,
    });
  } catch (cause) {
    throw new GpuError(String(cause), 'requestDevice', 'unavailable');
  }

  const report = describeAdapter(adapter, enabled, device);
  let destroyedByUs = false;
  const lost = device.lost.then((info): GpuLostInfo => {
    const lostInfo = {
      reason: info.reason,
      message: info.message,
      recreate: () => acquireGpu(entry, options),
    };
    if (!destroyedByUs) options.onLost?.(lostInfo);
    return lostInfo;
  });
  device.addEventListener('uncapturederror', (event) => {
    const e = event.error;
    options.onUncapturedError?.(new GpuError(e.message, 'uncaptured'));
  });

  const pool = new BufferPool(device);
  return {
    device,
    adapter: report,
    has: Object.fromEntries(OPTIONAL_FEATURES.map((f) => [f, enabled.includes(f)])) as Record<
      OptionalFeature,
      boolean
    >,
    limits: report.limits,
    shaders: options.shaders,
    pipelines: new PipelineCache(device, options.shaders),
    pool,
    tuning: new Map(),
    lost,
    destroy() {
      destroyedByUs = true;
      pool.clear();
      device.destroy();
    },
  };
}

function describeAdapter(
  adapter: GPUAdapter,
  enabled: OptionalFeature[],
  device: GPUDevice,
): AdapterReport {
  // Copy field by field: GPUAdapterInfo exposes getters, which structured clone drops.
  // Older browsers lack the subgroup and fallback fields, whatever the types say.
  const info = adapter.info;
  const optional = info as unknown as {
    subgroupMinSize?: number;
    subgroupMaxSize?: number;
    isFallbackAdapter?: boolean;
  };
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isFallback: optional.isFallbackAdapter ?? false,
    features: [...adapter.features].sort(),
    enabled,
    limits: Object.fromEntries(KEY_LIMITS.map((k) => [k, device.limits[k]])) as Record<
      KeyLimit,
      number
    >,
    subgroupSize:
      optional.subgroupMinSize && optional.subgroupMaxSize
        ? { min: optional.subgroupMinSize, max: optional.subgroupMaxSize }
        : null,
  };
}

/** A one-line name for the adapter, e.g. "google swiftshader (SwiftShader driver 5.0.0)". */
export function adapterName(report: AdapterReport): string {
  const name = [report.vendor, report.architecture].filter(Boolean).join(' ') || 'unknown adapter';
  return report.description ? `${name} (${report.description})` : name;
}
