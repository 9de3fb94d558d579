import { linearGrid, packParams, type Batch } from '../gpu/dispatch.ts';
import { ShapeError } from '../gpu/errors.ts';
import { createTensor, shapeString, type Tensor } from '../gpu/tensor.ts';

/** Unary ops in the order of their OP codes in shaders/elementwise.wgsl. */
export const UNARY_OPS = [
  'neg',
  'abs',
  'exp',
  'log',
  'sqrt',
  'square',
  'relu',
  'sigmoid',
  'silu',
  'tanh',
] as const;
export type UnaryOp = (typeof UNARY_OPS)[number];

/** Binary ops in the order of their OP codes in shaders/elementwise.wgsl. */
export const BINARY_OPS = ['add', 'sub', 'mul', 'div', 'max', 'min'] as const;
export type BinaryOp = (typeof BINARY_OPS)[number];

// Memory-bound kernels: 256 invocations is the largest workgroup every adapter allows,
// and there is no workgroup memory whose size would argue for less.
const WG = 256;

function checkF32(op: string, ...tensors: Tensor[]): void {
  for (const t of tensors) {
    if (t.dtype !== 'f32')
      throw new ShapeError(`${op}: expected f32, got ${t.dtype}${shapeString(t.shape)}`);
  }
}

/** y = f(x), elementwise. */
export function unary(batch: Batch, op: UnaryOp, x: Tensor): Tensor {
  checkF32(op, x);
  const y = createTensor(batch.gpu, x.shape, 'f32', op);
  const kernel = batch.gpu.pipelines.get({
    shader: 'elementwise',
    entryPoint: 'unary',
    constants: { OP: UNARY_OPS.indexOf(op), WG },
  });
  const params = packParams([{ u32: x.numel }, { u32: 0 }, { f32: 0 }, { f32: 0 }]);
  batch.dispatch(
    kernel,
    [x, y],
    linearGrid(Math.ceil(x.numel / WG), batch.gpu),
    params,
    `${op} ${shapeString(x.shape)}`,
  );
  return y;
}

/** y = alpha·x + beta, elementwise (one rounding: fused multiply-add). */
export function affine(batch: Batch, x: Tensor, alpha: number, beta = 0): Tensor {
  checkF32('affine', x);
  const y = createTensor(batch.gpu, x.shape, 'f32', 'affine');
  const kernel = batch.gpu.pipelines.get({
    shader: 'elementwise',
    entryPoint: 'affine',
    constants: { WG },
  });
  const params = packParams([{ u32: x.numel }, { u32: 0 }, { f32: alpha }, { f32: beta }]);
  batch.dispatch(
    kernel,
    [x, y],
    linearGrid(Math.ceil(x.numel / WG), batch.gpu),
    params,
    `affine ${shapeString(x.shape)}`,
  );
  return y;
}

/** y ← alpha·x + y, in place. */
export function axpy(batch: Batch, alpha: number, x: Tensor, y: Tensor): void {
  checkF32('axpy', x, y);
  if (x.numel !== y.numel)
    throw new ShapeError(
      `axpy: ${shapeString(x.shape)} and ${shapeString(y.shape)} differ in size`,
    );
  if (x.buffer === y.buffer) throw new ShapeError('axpy: x and y must not alias');
  const kernel = batch.gpu.pipelines.get({
    shader: 'elementwise',
    entryPoint: 'axpy',
    constants: { WG },
  });
  const params = packParams([{ u32: x.numel }, { u32: 0 }, { f32: alpha }, { f32: 0 }]);
  batch.dispatch(
    kernel,
    [x, y],
    linearGrid(Math.ceil(x.numel / WG), batch.gpu),
    params,
    `axpy ${shapeString(x.shape)}`,
  );
}

/**
 * out = a ∘ b, elementwise. b's shape must equal a trailing part of a's shape
 * (or be a single value), and b then repeats over a's leading dimensions. `into` (shaped like a,
 * aliasing neither) receives the result instead of a fresh tensor.
 */
export function binary(batch: Batch, op: BinaryOp, a: Tensor, b: Tensor, into?: Tensor): Tensor {
  checkF32(op, a, b, ...(into ? [into] : []));
  if (into && (into.numel !== a.numel || into.buffer === a.buffer || into.buffer === b.buffer))
    throw new ShapeError(`${op}: into must be shaped like a and alias neither operand`);
  if (!broadcastsOver(b.shape, a.shape)) {
    throw new ShapeError(
      `${op}: shape ${shapeString(b.shape)} does not broadcast over ${shapeString(a.shape)} ` +
        '(it must match the trailing dimensions or hold one value)',
    );
  }
  const out = into ?? createTensor(batch.gpu, a.shape, 'f32', op);
  if (a.numel === 0) return out;
  const kernel = batch.gpu.pipelines.get({
    shader: 'elementwise',
    entryPoint: 'binary',
    constants: { OP: BINARY_OPS.indexOf(op), WG },
  });
  const params = packParams([{ u32: a.numel }, { u32: b.numel }, { f32: 0 }, { f32: 0 }]);
  batch.dispatch(
    kernel,
    [a, b, out],
    linearGrid(Math.ceil(a.numel / WG), batch.gpu),
    params,
    `${op} ${shapeString(a.shape)} ${shapeString(b.shape)}`,
  );
  return out;
}

export function broadcastsOver(b: readonly number[], a: readonly number[]): boolean {
  const bn = b.reduce((x, y) => x * y, 1);
  if (bn === 1) return true;
  if (b.length > a.length) return false;
  const offset = a.length - b.length;
  return b.every((d, i) => d === a[offset + i]);
}
