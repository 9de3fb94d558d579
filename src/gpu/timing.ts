/**
 * Median wall time of one unit of work, in ms. `runBatch(iters)` must do `iters` units and
 * wait until they are finished (a readback). A first call warms up (pipeline compilation),
 * a second sizes `iters` so each timed call takes ≥ `targetMs`, then `reps` calls are timed.
 */
export async function medianMs(
  runBatch: (iters: number) => Promise<void>,
  reps: number,
  targetMs = 100,
): Promise<number> {
  await runBatch(1);
  const t0 = performance.now();
  await runBatch(1);
  const single = performance.now() - t0;
  const iters = Math.max(1, Math.min(64, Math.ceil(targetMs / Math.max(single, 0.01))));
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const start = performance.now();
    await runBatch(iters);
    times.push((performance.now() - start) / iters);
  }
  times.sort((x, y) => x - y);
  return times[Math.floor(times.length / 2)];
}
