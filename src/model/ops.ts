// The transformer-specific GPU ops (shaders/rmsnorm, rope, attention, rows.wgsl). Each records
// into a batch; outputs are new tensors the caller owns, except the in-place rope and writeRows.
import { linearGrid, packParams, type Batch } from '../gpu/dispatch.ts';
import { createTensor, shapeString, type Tensor } from '../gpu/tensor.ts';

const ROW_WG = 64;
const ELEMENT_WG = 256;

/** y = x · w / √(mean(x²) + eps) per row of x [rows × d]. */
export function rmsNorm(batch: Batch, x: Tensor, weight: Tensor, eps: number): Tensor {
  const d = x.shape[x.shape.length - 1];
  const rows = x.numel / d;
  const y = createTensor(batch.gpu, x.shape, 'f32', 'rmsnorm');
  const kernel = batch.gpu.pipelines.get({ shader: 'rmsnorm', constants: { WG: ROW_WG } });
  const params = packParams([{ u32: rows }, { u32: d }, { f32: eps }]);
  batch.dispatch(
    kernel,
    [x, weight, y],
    linearGrid(rows, batch.gpu),
    params,
    `rmsnorm ${shapeString(x.shape)}`,
  );
  return y;
}

/**
 * Rotates x [tokens × heads × headDim] in place for positions pos0 …; `cosSin` holds
 * [positions × headDim/2 × (cos, sin)] (see ropeTable).
 */
export function rope(
  batch: Batch,
  x: Tensor,
  cosSin: Tensor,
  heads: number,
  headDim: number,
  pos0: number,
): void {
  const tokens = x.numel / (heads * headDim);
  const half = headDim / 2;
  const kernel = batch.gpu.pipelines.get({ shader: 'rope', constants: { WG: ELEMENT_WG } });
  const params = packParams([{ u32: tokens }, { u32: heads }, { u32: half }, { u32: pos0 }]);
  const count = tokens * heads * half;
  batch.dispatch(
    kernel,
    [x, cosSin],
    linearGrid(Math.ceil(count / ELEMENT_WG), batch.gpu),
    params,
    `rope ${shapeString(x.shape)}`,
  );
}

/** cos and sin of pos·θ^(−2j/headDim), in f64 then rounded: [positions × headDim/2 × 2]. */
export function ropeTable(positions: number, headDim: number, theta: number): Float32Array {
  const half = headDim / 2;
  const table = new Float32Array(positions * half * 2);
  for (let pos = 0; pos < positions; pos++) {
    for (let j = 0; j < half; j++) {
      const angle = pos * theta ** (-(2 * j) / headDim);
      table[(pos * half + j) * 2] = Math.cos(angle);
      table[(pos * half + j) * 2 + 1] = Math.sin(angle);
    }
  }
  return table;
}

export interface AttentionShape {
  heads: number;
  kvHeads: number;
  headDim: number;
}

/** Causal attention of q [tokens × heads × headDim] at positions pos0 … over the caches. */
export function attention(
  batch: Batch,
  q: Tensor,
  kCache: Tensor,
  vCache: Tensor,
  s: AttentionShape,
  pos0: number,
): Tensor {
  const tokens = q.numel / (s.heads * s.headDim);
  const out = createTensor(batch.gpu, q.shape, 'f32', 'attention');
  const kernel = batch.gpu.pipelines.get({ shader: 'attention', constants: { WG: ROW_WG } });
  const params = packParams([
    { u32: tokens },
    { u32: s.heads },
    { u32: s.kvHeads },
    { u32: s.headDim },
    { u32: pos0 },
    { f32: 1 / Math.sqrt(s.headDim) },
  ]);
  const rows = tokens * s.heads;
  batch.dispatch(
    kernel,
    [q, kCache, vCache, out],
    linearGrid(Math.ceil(rows / ROW_WG), batch.gpu),
    params,
    `attention ${shapeString(q.shape)} at ${pos0}`,
  );
  return out;
}

/** out[r, :] = table[ids[r], :] for table [n × width] and u32 ids [rows]. */
export function gatherRows(batch: Batch, table: Tensor, ids: Tensor): Tensor {
  const width = table.shape[table.shape.length - 1];
  const out = createTensor(batch.gpu, [ids.numel, width], 'f32', 'gather');
  const kernel = batch.gpu.pipelines.get({
    shader: 'rows',
    entryPoint: 'gather',
    constants: { WG: ELEMENT_WG },
  });
  const params = packParams([{ u32: ids.numel }, { u32: width }, { u32: 0 }]);
  batch.dispatch(
    kernel,
    [table, ids, out],
    linearGrid(Math.ceil(out.numel / ELEMENT_WG), batch.gpu),
    params,
    `gather ${shapeString(out.shape)}`,
  );
  return out;
}

/** dst[row0 + r, :] = src[r, :]: appends src's rows to a cache at row0. */
export function writeRows(batch: Batch, dst: Tensor, src: Tensor, row0: number): void {
  const width = dst.shape[dst.shape.length - 1];
  const rows = src.numel / width;
  const kernel = batch.gpu.pipelines.get({
    shader: 'rows',
    entryPoint: 'write_at',
    constants: { WG: ELEMENT_WG },
  });
  const params = packParams([{ u32: rows }, { u32: width }, { u32: row0 }]);
  batch.dispatch(
    kernel,
    [src, dst],
    linearGrid(Math.ceil(src.numel / ELEMENT_WG), batch.gpu),
    params,
    `write rows ${row0}…`,
  );
}
