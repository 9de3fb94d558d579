/** CPU work runs this long at most before it lets the event loop turn. */
const SLICE_MS = 20;
// When the event loop last turned for CPU work: one clock for the whole thread it runs on.
let lastTurn = 0;
// One channel for the thread, held here: a MessageChannel nothing refers to may be collected
// with its message in flight (seen in Chromium under load), and the wait would never end.
let channel: MessageChannel | undefined;
const waiting: (() => void)[] = [];

/** A task after the events already queued: setImmediate in Node, a message to itself elsewhere. */
function macrotask(): Promise<void> {
  if (typeof setImmediate === 'function') return new Promise((resolve) => setImmediate(resolve));
  if (!channel) {
    channel = new MessageChannel();
    channel.port1.onmessage = () => waiting.shift()?.();
  }
  const port = channel.port2;
  return new Promise((resolve) => {
    waiting.push(resolve);
    port.postMessage(null);
  });
}

/**
 * Lets pending events (a worker's messages, timers) run before more CPU-bound work, once per
 * time slice: code that computes on the CPU awaits it between steps, so a worker running it
 * still hears a cancel, at no cost worth measuring. Not a timer: timers nested this deep wait
 * at least 4 ms in browsers.
 */
export async function nextTurn(): Promise<void> {
  if (performance.now() - lastTurn < SLICE_MS) return;
  await macrotask();
  lastTurn = performance.now();
}
