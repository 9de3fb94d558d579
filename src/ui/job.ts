import { errorMessage } from '../errors.ts';
import { withUpdates } from './worker-updates.ts';

/** A worker call that takes a while: its progress while it runs, then its result or failure. */
export type Job<T> =
  | { state: 'idle' }
  | { state: 'running'; done: number; total: number }
  | { state: 'done'; result: T }
  | { state: 'failed'; message: string };

/** How far a job got, as the worker counts it (merged modules, evaluated sequences…). */
export type OnProgress = (done: number, total: number) => void;

export const IDLE_JOB: Job<never> = { state: 'idle' };

/** A job just started: nothing counted yet (the progress bar is indeterminate). */
export const STARTED_JOB: Job<never> = { state: 'running', done: 0, total: 0 };

/** A job that failed, or was refused before it started, and why. */
export function failedJob(message: string): Job<never> {
  return { state: 'failed', message };
}

/**
 * Runs a worker call as a job that `show` puts on screen: running with the progress the worker
 * streams, then done with the call's result or failed with its message. Once `isCurrent` turns
 * false (a newer request made this one stale) nothing more of it is shown. Cancelling is the
 * worker's: a cancelled call rejects, and the job shows that as its failure.
 */
export async function runJob<T>(
  show: (job: Job<T>) => void,
  call: (onProgress: OnProgress) => Promise<T>,
  isCurrent: () => boolean = () => true,
): Promise<void> {
  const showIfCurrent = (job: Job<T>) => {
    if (isCurrent()) show(job);
  };
  showIfCurrent(STARTED_JOB);
  try {
    const onProgress: OnProgress = (done, total) => {
      showIfCurrent({ state: 'running', done, total });
    };
    showIfCurrent({ state: 'done', result: await withUpdates(onProgress, call) });
  } catch (e) {
    showIfCurrent(failedJob(errorMessage(e)));
  }
}
