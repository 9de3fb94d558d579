import { wrap, type Remote } from 'comlink';
import type { StudioApi } from './api.ts';

/**
 * Starts the GPU worker and returns its API; `terminate` stops it. `onCrash` hears a
 * worker that failed to load or threw outside a call (calls would otherwise never settle).
 */
export function startStudioWorker(onCrash: (message: string) => void): {
  api: Remote<StudioApi>;
  terminate: () => void;
} {
  const worker = new Worker(new URL('./studio.worker.ts', import.meta.url), {
    type: 'module',
    name: 'lora-studio-gpu',
  });
  worker.addEventListener('error', (event) => {
    onCrash(event.message || 'the GPU worker failed to start');
  });
  return {
    api: wrap<StudioApi>(worker),
    terminate: () => {
      worker.terminate();
    },
  };
}
