// OLoRA (Büyükakyüz 2024): an orthonormal start from the QR decomposition of W.
import type { Gpu } from '../../gpu/device.ts';
import { run } from '../../gpu/dispatch.ts';
import { releaseTensor, type Tensor } from '../../gpu/tensor.ts';
import { columns } from '../../linalg/cpu/dense.ts';
import { readMat, uploadMat } from '../../linalg/host.ts';
import { matmul } from '../../linalg/matmul.ts';
import { qr } from '../../linalg/qr.ts';
import type { AdaptedModule } from '../config.ts';
import type { Factors } from '../inits.ts';

/**
 * Q, R = qr(W); B = Q[:, :r], A = R[:r]. Householder's first r columns of Q span W's first r
 * columns, so a tall-skinny QR of those gives Q_r and A = Q_rᵀ·W gives R[:r].
 */
export async function oloraFactors(
  gpu: Gpu,
  module: AdaptedModule,
  weight: Tensor,
): Promise<Factors> {
  const first = uploadMat(gpu, columns(await readMat(gpu, weight), 0, module.rank));
  const { q } = await qr(gpu, first);
  releaseTensor(gpu, first);
  const a = await run(gpu, (b) => matmul(b, q, weight, { transA: true }));
  return { a, b: q };
}
