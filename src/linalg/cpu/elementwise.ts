import type { BinaryOp, UnaryOp } from '../elementwise.ts';

// CPU references for shaders/elementwise.wgsl: computed in f64, rounded once to f32.

const UNARY: Record<UnaryOp, (v: number) => number> = {
  neg: (v) => -v,
  abs: Math.abs,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  square: (v) => v * v,
  relu: (v) => Math.max(v, 0),
  sigmoid: (v) => 1 / (1 + Math.exp(-v)),
  silu: (v) => v / (1 + Math.exp(-v)),
  tanh: Math.tanh,
};

const BINARY: Record<BinaryOp, (u: number, v: number) => number> = {
  add: (u, v) => u + v,
  sub: (u, v) => u - v,
  mul: (u, v) => u * v,
  div: (u, v) => u / v,
  max: Math.max,
  min: Math.min,
};

export function unaryCpu(op: UnaryOp, x: Float32Array): Float32Array {
  return x.map(UNARY[op]);
}

export function affineCpu(x: Float32Array, alpha: number, beta: number): Float32Array {
  return x.map((v) => Math.fround(alpha) * v + Math.fround(beta));
}

/** b repeats over a (b.length divides a.length), as in the GPU kernel. */
export function binaryCpu(op: BinaryOp, a: Float32Array, b: Float32Array): Float32Array {
  const f = BINARY[op];
  return a.map((u, i) => f(u, b[i % b.length]));
}
