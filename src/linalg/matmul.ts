import type { Gpu } from '../gpu/device.ts';
import { packParams, type Batch } from '../gpu/dispatch.ts';
import { ShapeError } from '../gpu/errors.ts';
import type { KernelSpec } from '../gpu/pipelines.ts';
import { shaderHash } from '../gpu/shaders.ts';
import {
  createTensor,
  isQuantized,
  numel,
  sameShape,
  shapeString,
  type DType,
  type Tensor,
} from '../gpu/tensor.ts';

/** Rows × columns of C each invocation computes in registers (fixed by shaders/matmul.wgsl). */
export const BLOCK_M = 8;
export const BLOCK_N = 4;

/**
 * How the matmul kernel is launched. Register blocking: a workgroup of wgX invocations along N
 * and wgY along M, optionally (`subgroups: 1`) sharing loads of A through subgroup shuffles.
 * Or (`shared: 1`) workgroup-memory tiling: 64×64 tiles of C, wgX = wgY = 16.
 */
export type MatmulTile = { wgX: number; wgY: number; shared?: 1; subgroups?: 1 };

/** A tile in words, e.g. "8×8", "8×8 + subgroups", "shared 64×64". */
export function describeTile(tile: MatmulTile): string {
  if (tile.shared) return 'shared 64×64';
  return `${tile.wgX}×${tile.wgY}${tile.subgroups ? ' + subgroups' : ''}`;
}

/** Edge of the C tile one workgroup computes with the workgroup-memory strategy. */
const SHARED_TILE = 64;

/**
 * 64 invocations, with no more along N than the blocks C has there: for a rank-8 output
 * (N = 8, two blocks) an 8×8 workgroup idled 75% of its invocations and ran 2× slower than
 * 2×32 on SwiftShader.
 */
export function defaultTile(N: number): MatmulTile {
  const wgX = Math.min(8, 2 ** Math.ceil(Math.log2(Math.max(1, Math.ceil(N / BLOCK_N)))));
  return { wgX, wgY: 64 / wgX };
}

export interface MatmulProblem {
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
}

/** Rounds up to a power of two, capped: problems in one class share a tuned tile. */
function sizeClass(n: number, cap: number): number {
  return Math.min(cap, 2 ** Math.ceil(Math.log2(Math.max(1, n))));
}

/** The problem class a tuned tile applies to, tied to the kernel's source. */
export function tuningKey(gpu: Gpu, p: MatmulProblem): string {
  const t = `${p.transA ? 'T' : 'N'}${p.transB ? 'T' : 'N'}`;
  const sizes = `M${sizeClass(p.M, 4096)}:N${sizeClass(p.N, 256)}:K${sizeClass(p.K, 4096)}`;
  return `matmul@${shaderHash(gpu.shaders, 'matmul')}:${t}:${sizes}`;
}

/** The tuned tile for this problem's class, or the static default. */
export function tileFor(gpu: Gpu, p: MatmulProblem): MatmulTile {
  const tuned = gpu.tuning.get(tuningKey(gpu, p)) as MatmulTile | undefined;
  return tuned ?? defaultTile(p.N);
}

export interface MatmulOptions {
  /** A is stored K×M (its transpose is used). */
  transA?: boolean;
  /** B is stored N×K. */
  transB?: boolean;
  alpha?: number;
  /** With `into`: C = alpha·op(A)·op(B) + beta·C. */
  beta?: number;
  /** Write (or accumulate, with beta) into this tensor instead of a new one. */
  into?: Tensor;
  tile?: MatmulTile;
}

/** The shapes of a (batched) product: op(A) M×K, op(B) K×N, and batch strides in elements. */
export interface MatmulShape {
  batch: number;
  M: number;
  N: number;
  K: number;
  strideA: number;
  strideB: number;
  outShape: number[];
}

/**
 * Resolves shapes: A is [...batch, M, K] ([..., K, M] with transA), B likewise. Batch
 * dimensions must match, or one operand has none and is shared by every batch entry.
 */
export function matmulShape(
  a: readonly number[],
  b: readonly number[],
  transA = false,
  transB = false,
): MatmulShape {
  const what = `matmul ${shapeString(a)}${transA ? 'ᵀ' : ''} · ${shapeString(b)}${transB ? 'ᵀ' : ''}`;
  if (a.length < 2 || b.length < 2)
    throw new ShapeError(`${what}: both operands need at least 2 dimensions`);
  const [ar, ac] = a.slice(-2) as [number, number];
  const [br, bc] = b.slice(-2) as [number, number];
  const [M, K] = transA ? [ac, ar] : [ar, ac];
  const [Kb, N] = transB ? [bc, br] : [br, bc];
  if (K !== Kb) throw new ShapeError(`${what}: inner dimensions differ (${K} vs ${Kb})`);
  const batchA = a.slice(0, -2);
  const batchB = b.slice(0, -2);
  if (batchA.length > 0 && batchB.length > 0 && !sameShape(batchA, batchB)) {
    throw new ShapeError(`${what}: batch dimensions differ`);
  }
  const batchDims = batchA.length > 0 ? batchA : batchB;
  return {
    batch: numel(batchDims),
    M,
    N,
    K,
    strideA: batchA.length > 0 ? M * K : 0,
    strideB: batchB.length > 0 ? K * N : 0,
    outShape: [...batchDims, M, N],
  };
}

/**
 * B's storage files (shaders/matmul_b_*.wgsl and what they build on) and WGSL extensions. A
 * quantized B is decoded by its type's shaders/quant_<dtype>.wgsl (f16 scales unpacked from
 * words, so on any device).
 */
export function bOperand(gpu: Gpu, dtype: DType): { files: string[]; enables: string[] } {
  if (isQuantized(dtype))
    return { files: ['quant', `quant_${dtype}`, 'matmul_b_quant'], enables: [] };
  switch (dtype) {
    case 'f32':
      return { files: ['matmul_b_f32'], enables: [] };
    case 'f16':
      // Native half loads where the device has them; otherwise the same bytes, unpacked.
      return gpu.has['shader-f16']
        ? { files: ['matmul_b_f16'], enables: ['f16'] }
        : { files: ['half', 'matmul_b_f16_packed'], enables: [] };
    case 'bf16':
      return { files: ['half', 'matmul_b_bf16'], enables: [] };
    default:
      throw new ShapeError(`matmul: B stored as ${dtype} cannot be read as floats`);
  }
}

/** Which entry point runs a problem with a tile; a tile's extras apply only where they can. */
function kernelFor(
  gpu: Gpu,
  s: MatmulShape,
  transA: boolean,
  transB: boolean,
  tile: MatmulTile,
  bDType: DType,
): KernelSpec {
  const b = bOperand(gpu, bDType);
  const base = { shader: 'matmul', uses: b.files, enables: b.enables };
  if (tile.shared) return { ...base, entryPoint: 'main_shared' };
  // vec4 loads need K and each operand's contiguous dimension to be multiples of 4.
  const vec4 = s.K % 4 === 0 && (transA ? s.M : s.K) % 4 === 0 && (transB ? s.K : s.N) % 4 === 0;
  if (!vec4) return { ...base, entryPoint: 'main' };
  if (tile.subgroups && !transA && tile.wgX % 4 === 0 && subgroupsFit(gpu, tile)) {
    return {
      shader: 'matmul_subgroups',
      entryPoint: 'main_subgroups',
      uses: [...b.files, 'matmul'],
      enables: ['subgroups', ...b.enables],
    };
  }
  return { ...base, entryPoint: 'main_vec4' };
}

/** Subgroups of a known size that is a multiple of 4 and divides the workgroup. */
export function subgroupsFit(gpu: Gpu, tile: MatmulTile): boolean {
  const size = gpu.adapter.subgroupSize;
  return (
    gpu.has.subgroups &&
    size !== null &&
    size.min >= 4 &&
    size.min % 4 === 0 &&
    (tile.wgX * tile.wgY) % size.max === 0
  );
}

/**
 * C = alpha·op(A)·op(B) (+ beta·C with `into`), batched, f32 accumulation. B may be stored as
 * f16 or bf16 (frozen weights at half the memory) or in a ggml quantized type (a GGUF model's
 * weights as the file has them), widened to f32 as it is read.
 */
export function matmul(batch: Batch, a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  const { transA = false, transB = false, alpha = 1, beta = 0, into } = options;
  const s = matmulShape(a.shape, b.shape, transA, transB);
  const what = `${shapeString(a.shape)}${transA ? 'ᵀ' : ''}·${shapeString(b.shape)}${transB ? 'ᵀ' : ''}`;
  for (const t of [a, ...(into ? [into] : [])]) {
    if (t.dtype !== 'f32') throw new ShapeError(`matmul ${what}: expected f32, got ${t.dtype}`);
  }
  if (into && !sameShape(into.shape, s.outShape)) {
    throw new ShapeError(
      `matmul ${what}: output ${shapeString(into.shape)} should be ${shapeString(s.outShape)}`,
    );
  }
  if (into && (into.buffer === a.buffer || into.buffer === b.buffer)) {
    throw new ShapeError(`matmul ${what}: the output must not alias an input`);
  }
  if (beta !== 0 && !into)
    throw new ShapeError(`matmul ${what}: beta needs an output to accumulate into`);

  const tile = options.tile ?? tileFor(batch.gpu, { M: s.M, N: s.N, K: s.K, transA, transB });
  const c = into ?? createTensor(batch.gpu, s.outShape, 'f32', 'matmul');
  const kernel = batch.gpu.pipelines.get({
    ...kernelFor(batch.gpu, s, transA, transB, tile, b.dtype),
    constants: { TRANS_A: Number(transA), TRANS_B: Number(transB), WG_X: tile.wgX, WG_Y: tile.wgY },
  });
  const params = packParams([
    { u32: s.M },
    { u32: s.N },
    { u32: s.K },
    { u32: s.strideA },
    { u32: s.strideB },
    { u32: s.M * s.N },
    { f32: alpha },
    { f32: beta },
  ]);
  const grid = tile.shared
    ? ([Math.ceil(s.N / SHARED_TILE), Math.ceil(s.M / SHARED_TILE), s.batch] as const)
    : ([
        Math.ceil(s.N / (BLOCK_N * tile.wgX)),
        Math.ceil(s.M / (BLOCK_M * tile.wgY)),
        s.batch,
      ] as const);
  if (s.M * s.N * s.batch > 0) batch.dispatch(kernel, [a, b, c], grid, params, what);
  return c;
}
