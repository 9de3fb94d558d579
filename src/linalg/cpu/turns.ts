/**
 * Lets pending events (a worker's messages, timers) run before more CPU-bound work: code that
 * computes on the CPU awaits it between steps, so a worker running it still hears a cancel.
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
