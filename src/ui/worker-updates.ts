import { proxy } from 'comlink';

/**
 * Calls a worker method that streams updates (text so far, progress) into a callback, and stops
 * listening once the call settles: the updates travel on the callback's own message port, so the
 * last of them can arrive after the call's result and would undo what the result set (a finished
 * generation shown as running again).
 */
export async function withUpdates<A extends unknown[], T>(
  onUpdate: (...args: A) => void,
  call: (callback: (...args: A) => void) => Promise<T>,
): Promise<T> {
  let listening = true;
  try {
    return await call(
      proxy((...args: A) => {
        if (listening) onUpdate(...args);
      }),
    );
  } finally {
    listening = false;
  }
}
