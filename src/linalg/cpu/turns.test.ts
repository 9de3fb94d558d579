import { afterEach, describe, expect, it, vi } from 'vitest';
import { nextTurn } from './turns.ts';

/** CPU-bound steps with nextTurn between them, until a timer set first has fired (or 2 s). */
async function timerFiresDuringWork(): Promise<boolean> {
  const timer = { fired: false };
  setTimeout(() => (timer.fired = true), 0);
  const start = performance.now();
  while (!timer.fired && performance.now() - start < 2000) {
    const step = performance.now();
    while (performance.now() - step < 5); // 5 ms of work
    await nextTurn();
  }
  return timer.fired;
}

describe('nextTurn', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it('lets queued events run between steps of CPU work (Node: setImmediate)', async () => {
    expect(await timerFiresDuringWork()).toBe(true);
  });

  it('does so by a message to itself where there is no setImmediate (browsers)', async () => {
    vi.stubGlobal('setImmediate', undefined);
    expect(await timerFiresDuringWork()).toBe(true);
  });
});
