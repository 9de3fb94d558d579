import { proxy, type Remote } from 'comlink';
import { create } from 'zustand';
import type { AdapterReport, GpuStatus, SelfCheckResult, StudioApi } from '../worker/api.ts';
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
  /** The result shown was kept from an earlier visit on this adapter, not run now. */
  selfCheckKept: boolean;
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

/** Where a self-check's result is kept: per adapter and driver, as the browser describes them. */
const selfCheckKey = (a: AdapterReport) =>
  `lora-studio-self-check:${[a.vendor, a.architecture, a.device, a.description].join('|')}`;

function keptSelfCheck(adapter: AdapterReport): SelfCheckResult[] | null {
  try {
    const saved = localStorage.getItem(selfCheckKey(adapter));
    const parsed: unknown = saved === null ? null : JSON.parse(saved);
    return Array.isArray(parsed) ? (parsed as SelfCheckResult[]) : null;
  } catch {
    return null; // storage refused, or an entry that is not ours: check again
  }
}

function keepSelfCheck(adapter: AdapterReport, result: SelfCheckResult[]): void {
  try {
    localStorage.setItem(selfCheckKey(adapter), JSON.stringify(result));
  } catch {
    // Storage refused (private mode, full): the check runs again next time.
  }
}

export const useGpuStore = create<GpuStore>((set, get) => ({
  status: { state: 'connecting' },
  selfCheck: IDLE_JOB,
  selfCheckKept: false,
  tuning: IDLE_JOB,

  connect() {
    if (studio) return;
    const worker = startStudioWorker((message) => {
      set({ status: { state: 'crashed', detail: message } });
    });
    studio = worker.api;
    const onStatus = (status: GpuStatus) => {
      set({ status });
      if (status.state !== 'ready') return;
      // Once per browser and adapter: a result kept from an earlier visit is shown, not re-run.
      const kept = keptSelfCheck(status.adapter);
      if (kept) set({ selfCheck: { state: 'done', result: kept }, selfCheckKept: true });
      else void get().runSelfCheck();
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
      set({ selfCheck: job, selfCheckKept: false });
    };
    await runJob(show, () => api.selfCheck());
    const { status, selfCheck } = get();
    if (status.state === 'ready' && selfCheck.state === 'done')
      keepSelfCheck(status.adapter, selfCheck.result);
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
