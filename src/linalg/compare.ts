/**
 * Largest |actual − expected| / max(|expected|, floor) over all elements. `floor` sets the
 * scale below which errors count as absolute. Equal values (also ±inf, NaN with NaN) count as 0.
 */
export function maxRelativeError(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  floor = 1,
): number {
  if (actual.length !== expected.length) {
    throw new Error(`length ${actual.length} ≠ expected ${expected.length}`);
  }
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Object.is(a, e)) continue;
    const err = Math.abs(a - e) / Math.max(Math.abs(e), floor);
    if (Number.isNaN(err)) return Infinity;
    worst = Math.max(worst, err);
  }
  return worst;
}

/** ‖actual − expected‖₂ / ‖expected‖₂ over all elements: the error of a whole tensor. */
export function relativeNormError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) {
    throw new Error(`length ${actual.length} ≠ expected ${expected.length}`);
  }
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < expected.length; i++) {
    diff += (actual[i] - expected[i]) ** 2;
    norm += expected[i] ** 2;
  }
  return Math.sqrt(diff / norm);
}

/** max |actual − expected| / max |expected|: errors measured against the tensor's scale. */
export function maxScaledError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let scale = 1e-30;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  return maxRelativeError(actual, expected, scale);
}
