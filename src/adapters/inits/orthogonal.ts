// Orthogonal adaptation (Po et al. 2024, "Orthogonal Adaptation for Modular Customization of
// Diffusion Models"): adapters trained apart are merged by plain addition, so each is given A
// rows from one orthonormal basis that every adapter can rebuild from a shared seed, a different
// slice each, and A stays frozen while B trains. Then A_i·A_jᵀ = 0 for i ≠ j: the sum's term for
// adapter j sees adapter i's input directions only through what the inputs share, and
// B_i·A_i + B_j·A_j is close to a block-diagonal combination of the two.
import { householderQr } from '../../linalg/cpu/qr.ts';
import { gaussian } from '../../linalg/random.ts';
import { mat } from '../../linalg/cpu/dense.ts';
import type { AdaptedModule, OrthogonalBasis } from '../config.ts';
import type { Factors, FactorsJob } from '../inits.ts';
import { withZeroB } from './zero-b.ts';

/** FNV-1a of a string: the module's part of the basis seed, independent of which modules a run adapts. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * Rows K·r…K·r+r−1 of the module's shared basis, as A [r × in]: the first (K+1)·r columns of the
 * thin QR of a Gaussian [in × (K+1)·r] drawn column by column from the basis seed and the module's
 * path. A prefix of columns has the same QR factor whatever follows it, so every slice of one
 * seed comes from the same basis, whichever slice an adapter asks for.
 */
export function basisRows(module: AdaptedModule, basis: OrthogonalBasis): Float64Array {
  const { rank, in: n } = module;
  const columns = (basis.slice + 1) * rank;
  if (!(Number.isInteger(basis.slice) && basis.slice >= 0))
    throw new RangeError(`basis slice must be a whole number ≥ 0 (got ${basis.slice})`);
  if (columns > n)
    throw new RangeError(
      `${module.path}: slice ${basis.slice} of rank ${rank} needs ${columns} basis directions, but its input has ${n} (use slices below ${Math.floor(n / rank)})`,
    );
  const drawn = gaussian(n * columns, (basis.seed ^ fnv1a(module.path)) >>> 0);
  const g = mat(n, columns);
  for (let j = 0; j < columns; j++)
    for (let i = 0; i < n; i++) g.data[i * columns + j] = drawn[j * n + i];
  const { q } = householderQr(g);
  const rows = new Float64Array(rank * n);
  for (let k = 0; k < rank; k++)
    for (let i = 0; i < n; i++) rows[k * n + i] = q.data[i * columns + basis.slice * rank + k];
  return rows;
}

/** A = the module's slice of the shared orthonormal basis (unit rows), B = 0. */
export function orthogonalFactors({ gpu, module, basis }: FactorsJob<'none'>): Factors {
  return withZeroB(gpu, Float32Array.from(basisRows(module, basis)), module);
}
