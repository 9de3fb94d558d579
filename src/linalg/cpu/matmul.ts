import type { MatmulShape } from '../matmul.ts';

/**
 * CPU reference for shaders/matmul.wgsl: C = alpha·op(A)·op(B) + beta·C per batch entry,
 * accumulated in f64. `c` (when given) supplies the beta term; the result is a new array.
 */
export function matmulCpu(
  a: Float32Array,
  b: Float32Array,
  s: MatmulShape,
  {
    transA = false,
    transB = false,
    alpha = 1,
    beta = 0,
    c,
  }: { transA?: boolean; transB?: boolean; alpha?: number; beta?: number; c?: Float32Array } = {},
): Float32Array {
  const { M, N, K } = s;
  const out = new Float32Array(s.batch * M * N);
  for (let z = 0; z < s.batch; z++) {
    const oa = z * s.strideA;
    const ob = z * s.strideB;
    const oc = z * M * N;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let acc = 0;
        for (let k = 0; k < K; k++) {
          const av = transA ? a[oa + k * M + m] : a[oa + m * K + k];
          const bv = transB ? b[ob + n * K + k] : b[ob + k * N + n];
          acc += av * bv;
        }
        const prior = beta !== 0 && c ? beta * c[oc + m * N + n] : 0;
        out[oc + m * N + n] = alpha * acc + prior;
      }
    }
  }
  return out;
}
