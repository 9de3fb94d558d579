import { proxy, type Remote } from 'comlink';
import { create } from 'zustand';
import type { GpuStatus, SelfCheckResult, StudioApi } from '../worker/api.ts';
import { startStudioWorker } from '../worker/client.ts';

/** The worker's status, or its own failure to start (then nothing runs at all). */
export type GpuView = { state: 'connecting' } | { state: 'crashed'; detail: string } | GpuStatus;

/** Whether models, adapters and merges can run: on the GPU, or on the CPU without WebGPU. */
export function engineReady(status: GpuView): boolean {
  return status.state === 'ready' || status.state === 'cpu';
}

export type SelfCheckView =
  | { state: 'idle' }
  | { state: 'running' }
  | { state: 'done'; results: SelfCheckResult[] }
  | { state: 'failed'; message: string };

export type TuningView =
  | { state: 'idle' }
  | { state: 'running' }
  | { state: 'done'; tuned: { problem: string; tile: string }[] }
  | { state: 'failed'; message: string };

interface GpuStore {
  status: GpuView;
  selfCheck: SelfCheckView;
  tuning: TuningView;
  /** Starts the worker and acquires the GPU; safe to call more than once. */
  connect: () => void;
  reconnect: () => Promise<void>;
  runSelfCheck: () => Promise<void>;
  tuneMatmul: () => Promise<void>;
}

// The worker lives as long as the page; created on the first connect.
let studio: Remote<StudioApi> | undefined;

/** The worker's API once connect() has started it. */
export function studioApi(): Remote<StudioApi> | undefined {
  return studio;
}

export const useGpuStore = create<GpuStore>((set, get) => ({
  status: { state: 'connecting' },
  selfCheck: { state: 'idle' },
  tuning: { state: 'idle' },

  connect() {
    if (studio) return;
    const worker = startStudioWorker((message) => {
      set({ status: { state: 'crashed', detail: message } });
    });
    studio = worker.api;
    const onStatus = (status: GpuStatus) => {
      set({ status });
      if (status.state === 'ready') void get().runSelfCheck();
    };
    studio.connect(proxy(onStatus)).then(onStatus, (e: unknown) => {
      set({ status: { state: 'crashed', detail: String(e) } });
    });
  },

  async reconnect() {
    if (!studio) return;
    set({ status: { state: 'connecting' }, selfCheck: { state: 'idle' } });
    // The status arrives through the connect callback, which also starts the self-check.
    await studio.reconnect();
  },

  async runSelfCheck() {
    if (!studio || get().selfCheck.state === 'running') return;
    set({ selfCheck: { state: 'running' } });
    try {
      set({ selfCheck: { state: 'done', results: await studio.selfCheck() } });
    } catch (e) {
      set({ selfCheck: { state: 'failed', message: e instanceof Error ? e.message : String(e) } });
    }
  },

  async tuneMatmul() {
    if (!studio || get().tuning.state === 'running') return;
    set({ tuning: { state: 'running' } });
    try {
      set({ tuning: { state: 'done', tuned: await studio.tuneMatmul() } });
    } catch (e) {
      set({ tuning: { state: 'failed', message: e instanceof Error ? e.message : String(e) } });
    }
  },
}));
