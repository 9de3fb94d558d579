// The contract between the UI and the worker that owns the GPU. The UI imports only
// this file (types) and the client; everything behind it runs in the worker.
export type { AdapterReport } from '../gpu/device.ts';
import type { AdapterReport } from '../gpu/device.ts';

/** Why WebGPU cannot be used, each with its own advice in the UI. */
export type UnavailableReason = 'no-webgpu' | 'insecure-context' | 'no-adapter' | 'device-failed';

export type GpuStatus =
  | { state: 'ready'; adapter: AdapterReport }
  | { state: 'unavailable'; reason: UnavailableReason; detail: string }
  | { state: 'lost'; reason: string; detail: string };

/** One kernel run on the GPU and compared with its CPU reference. */
export interface SelfCheckResult {
  kernel: string;
  elements: number;
  ok: boolean;
  /** Largest error relative to max(|expected|, 1). */
  maxError: number;
  tolerance: number;
  /** Wall time of the GPU run including upload and readback. */
  ms: number;
}

export interface StudioApi {
  /** Acquires the GPU. `onStatus` hears later changes (device lost, reconnected). */
  connect(onStatus: (status: GpuStatus) => void): Promise<GpuStatus>;
  /** Re-acquires the device after a loss. */
  reconnect(): Promise<GpuStatus>;
  /** Runs the kernels on the GPU and compares them with their CPU references. */
  selfCheck(): Promise<SelfCheckResult[]>;
}
