import { proxy, type Remote } from 'comlink';
import { create } from 'zustand';
import type { GpuStatus, SelfCheckResult, StudioApi } from '../worker/api.ts';
import { startStudioWorker } from '../worker/client.ts';
import { IDLE_JOB, runJob, type Job } from './job.ts';

/** The worker's status, or its own failure to start (then nothing runs at all). */
export type GpuView = { state: 'connecting' } | { state: 'crashed'; detail: string } | GpuStatus;

/** Whether models, adapters and merges can run: on the GPU, or on the CPU without WebGPU. */
export function engineReady(status: GpuView): boolean {
  return status.state === 'ready' || status.state === 'cpu';
}

/** A tuned problem and the workgroup tile that ran it fastest. */
export interface TunedProblem {
  problem: string;
  tile: string;
}

interface GpuStore {
  status: GpuView;
  selfCheck: Job<SelfCheckResult[]>;
  tuning: Job<TunedProblem[]>;
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
  selfCheck: IDLE_JOB,
  tuning: IDLE_JOB,

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
    set({ status: { state: 'connecting' }, selfCheck: IDLE_JOB });
    // The status arrives through the connect callback, which also starts the self-check.
    await studio.reconnect();
  },

  async runSelfCheck() {
    const api = studio;
    if (!api || get().selfCheck.state === 'running') return;
    const show = (job: Job<SelfCheckResult[]>) => {
      set({ selfCheck: job });
    };
    await runJob(show, () => api.selfCheck());
  },

  async tuneMatmul() {
    const api = studio;
    if (!api || get().tuning.state === 'running') return;
    const show = (job: Job<TunedProblem[]>) => {
      set({ tuning: job });
    };
    await runJob(show, () => api.tuneMatmul());
  },
}));
