import { wrap, type Remote } from 'comlink';
import type { StudioApi } from './api.ts';

/** Starts the GPU worker and returns its API; `terminate` stops it. */
export function startStudioWorker(): { api: Remote<StudioApi>; terminate: () => void } {
  const worker = new Worker(new URL('./studio.worker.ts', import.meta.url), {
    type: 'module',
    name: 'lora-studio-gpu',
  });
  return { api: wrap<StudioApi>(worker), terminate: () => worker.terminate() };
}
