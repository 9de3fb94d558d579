// S²FT's factors (src/adapters/s2ft.ts): A one-hot rows selecting the module's chosen input
// columns (frozen), B = 0 (trained): B·A is the weights' change on exactly those columns.
import { seededRandom } from '../../linalg/random.ts';
import { s2ftColumns } from '../s2ft.ts';
import type { Factors, FactorsJob } from '../inits.ts';
import { withZeroB } from './zero-b.ts';

export function s2ftFactors({ gpu, module, seed }: FactorsJob<'none'>): Factors {
  const columns = s2ftColumns(module, seededRandom(seed));
  const a = new Float32Array(module.rank * module.in);
  columns.forEach((column, row) => {
    a[row * module.in + column] = 1;
  });
  return withZeroB(gpu, a, module);
}
