// Attention (src/model/ops.ts) and its backward pass (src/train/kernels.ts) against an f64 CPU
// reference, whose own gradient is checked by central differences: grouped KV heads, scales
// other than 1/√headDim, sliding windows, prefill and decode over a KV cache, packed sequences.
import { describe, expect, it } from 'vitest';
import { run } from '../gpu/dispatch.ts';
import { readF32 } from '../gpu/readback.ts';
import { releaseTensor, uploadTensor, type Tensor } from '../gpu/tensor.ts';
import { maxScaledError } from '../linalg/compare.ts';
import { useGpu } from '../testing/gpu.ts';
import { randomArray, seededRandom } from '../testing/random.ts';
import { attentionBackward } from '../train/kernels.ts';
import { attention, type AttentionShape, type Positions } from './ops.ts';

const device = useGpu();

const HEADS = 4;
const KV_HEADS = 2;
const HEAD_DIM = 6;
const SCALE = 0.37;

type Values = ArrayLike<number>;

/** The key rows query t reads: [start, last], as attention.wgsl bounds them. */
function keyRange(t: number, tokens: number, s: AttentionShape, at: Positions): [number, number] {
  const seqLen = at.seqLen ?? tokens;
  const first = Math.floor(t / seqLen) * seqLen;
  const last = first + at.pos0 + (t % seqLen);
  return [s.window ? Math.max(first, last - s.window + 1) : first, last];
}

/** Each (token, head)'s probabilities over its key rows, from q·k·scale. */
function probabilities(q: Values, k: Values, s: AttentionShape, at: Positions) {
  const d = s.headDim;
  const tokens = q.length / (s.heads * d);
  const scale = s.scale ?? 1 / Math.sqrt(d);
  const rows: { t: number; h: number; g: number; keys: number[]; p: number[]; lse: number }[] = [];
  for (let t = 0; t < tokens; t++) {
    const [start, last] = keyRange(t, tokens, s, at);
    for (let h = 0; h < s.heads; h++) {
      const g = Math.floor(h / (s.heads / s.kvHeads));
      const keys = Array.from({ length: last - start + 1 }, (_, i) => start + i);
      const scores = keys.map((r) => {
        let dot = 0;
        for (let i = 0; i < d; i++)
          dot += q[(t * s.heads + h) * d + i] * k[(r * s.kvHeads + g) * d + i];
        return dot * scale;
      });
      const max = Math.max(...scores);
      const lse = max + Math.log(scores.reduce((sum, v) => sum + Math.exp(v - max), 0));
      rows.push({ t, h, g, keys, p: scores.map((v) => Math.exp(v - lse)), lse });
    }
  }
  return rows;
}

function attentionReference(q: Values, k: Values, v: Values, s: AttentionShape, at: Positions) {
  const d = s.headDim;
  const out = new Float64Array(q.length);
  const lse: number[] = [];
  for (const row of probabilities(q, k, s, at)) {
    lse.push(row.lse);
    row.keys.forEach((r, j) => {
      for (let i = 0; i < d; i++)
        out[(row.t * s.heads + row.h) * d + i] += row.p[j] * v[(r * s.kvHeads + row.g) * d + i];
    });
  }
  return { out, lse };
}

/** dq, dk, dv of L = Σ out·dOut for a training batch (keys are the batch's own, pos0 = 0). */
function backwardReference(
  q: Values,
  k: Values,
  v: Values,
  dOut: Values,
  s: AttentionShape,
  seqLen: number,
) {
  const d = s.headDim;
  const scale = s.scale ?? 1 / Math.sqrt(d);
  const [dq, dk, dv] = [q, k, v].map((x) => new Float64Array(x.length));
  for (const { t, h, g, keys, p } of probabilities(q, k, s, { pos0: 0, seqLen })) {
    const qBase = (t * s.heads + h) * d;
    const dp = keys.map((r) => {
      let dot = 0;
      for (let i = 0; i < d; i++) dot += dOut[qBase + i] * v[(r * s.kvHeads + g) * d + i];
      return dot;
    });
    const dsum = p.reduce((sum, pj, j) => sum + pj * dp[j], 0);
    keys.forEach((r, j) => {
      const kvBase = (r * s.kvHeads + g) * d;
      const ds = p[j] * (dp[j] - dsum) * scale;
      for (let i = 0; i < d; i++) {
        dq[qBase + i] += ds * k[kvBase + i];
        dk[kvBase + i] += ds * q[qBase + i];
        dv[kvBase + i] += p[j] * dOut[qBase + i];
      }
    });
  }
  return { dq, dk, dv };
}

function shape(window: number | undefined, scale: number | undefined): AttentionShape {
  return { heads: HEADS, kvHeads: KV_HEADS, headDim: HEAD_DIM, window, scale };
}

const WINDOWS = [undefined, 1, 3, 5];

describe('attention forward', () => {
  const tokens = 7;
  // k and v hold `rows` rows: a KV cache whose rows past pos0 + tokens are NaN, never to be read.
  const cases: [string, Positions, number][] = [
    ['one sequence', { pos0: 0 }, tokens],
    ['sequences of 3', { pos0: 0, seqLen: 3 }, tokens],
    ['prefill after 3 cached', { pos0: 3 }, 16],
  ];
  describe.each(cases)('%s', (_, at, rows) => {
    it.each(WINDOWS.flatMap((w) => [[w, undefined] as const, [w, SCALE] as const]))(
      'window %s, scale %s',
      async (window, scale) => {
        const s = shape(window, scale);
        const random = seededRandom(rows + (window ?? 0) + at.pos0);
        const filled = (at.pos0 + tokens) * KV_HEADS * HEAD_DIM;
        const cache = () =>
          Float32Array.from({ length: rows * KV_HEADS * HEAD_DIM }, (_, i) =>
            i < filled ? 2 * random() - 1 : NaN,
          );
        const q = randomArray(random, tokens * HEADS * HEAD_DIM, -2, 2);
        const [k, v] = [cache(), cache()];
        await expectAttention(q, k, v, s, at);
      },
    );
  });

  it.each(WINDOWS)('decodes one token over a longer cache, window %s', async (window) => {
    const s = shape(window, SCALE);
    const at = { pos0: 9 };
    const rows = 12;
    const random = seededRandom(window ?? 0);
    // Only the rows the window covers hold values: the kernel must read no other.
    const firstRead = window ? at.pos0 - window + 1 : 0;
    const cache = () =>
      Float32Array.from({ length: rows * KV_HEADS * HEAD_DIM }, (_, i) => {
        const row = Math.floor(i / (KV_HEADS * HEAD_DIM));
        return row >= firstRead && row <= at.pos0 ? 2 * random() - 1 : NaN;
      });
    const q = randomArray(random, HEADS * HEAD_DIM, -2, 2);
    await expectAttention(q, cache(), cache(), s, at);
  });
});

async function expectAttention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  s: AttentionShape,
  at: Positions,
): Promise<void> {
  const gpu = device();
  const qt = uploadTensor(gpu, q, [q.length / (HEADS * HEAD_DIM), HEADS * HEAD_DIM], 'f32');
  const [kt, vt] = [k, v].map((x) =>
    uploadTensor(gpu, x, [x.length / (KV_HEADS * HEAD_DIM), KV_HEADS * HEAD_DIM], 'f32'),
  );
  const { out, lse } = await run(gpu, (b) => attention(b, qt, kt, vt, s, at));
  const expected = attentionReference(q, k, v, s, at);
  expect(maxScaledError(await readF32(gpu, out), expected.out)).toBeLessThan(1e-5);
  expect(maxScaledError(await readF32(gpu, lse), expected.lse)).toBeLessThan(1e-5);
  releaseTensor(gpu, qt, kt, vt, out, lse);
}

describe('attention backward in training batches', () => {
  const tokens = 9;
  it.each(WINDOWS.flatMap((w) => [[w, tokens] as const, [w, 4] as const]))(
    'window %s, sequences of %i',
    async (window, seqLen) => {
      const s = shape(window, window === undefined && seqLen === tokens ? undefined : SCALE);
      const random = seededRandom(seqLen * 10 + (window ?? 0));
      const q = randomArray(random, tokens * HEADS * HEAD_DIM, -2, 2);
      const [k, v] = [0, 0].map(() => randomArray(random, tokens * KV_HEADS * HEAD_DIM, -2, 2));
      const dOut = randomArray(random, q.length);
      const at = { pos0: 0, seqLen };
      const expected = backwardReference(q, k, v, dOut, s, seqLen);

      // The reference is the gradient of its own forward pass, by central differences in f64.
      const loss = (qq: Values, kk: Values, vv: Values) =>
        attentionReference(qq, kk, vv, s, at).out.reduce((sum, o, i) => sum + o * dOut[i], 0);
      const numeric = [q, k, v].map((x, which) => {
        const perturbed = [q, k, v].map((y) => Float64Array.from(y));
        return Array.from(x, (xi, i) => {
          const h = 1e-6;
          perturbed[which][i] = xi + h;
          const plus = loss(perturbed[0], perturbed[1], perturbed[2]);
          perturbed[which][i] = xi - h;
          const minus = loss(perturbed[0], perturbed[1], perturbed[2]);
          perturbed[which][i] = xi;
          return (plus - minus) / (2 * h);
        });
      });
      [expected.dq, expected.dk, expected.dv].forEach((g, i) => {
        expect(maxScaledError(g, numeric[i])).toBeLessThan(1e-6);
      });

      const gpu = device();
      const qt = uploadTensor(gpu, q, [tokens, HEADS * HEAD_DIM], 'f32');
      const [kt, vt] = [k, v].map((x) =>
        uploadTensor(gpu, x, [tokens, KV_HEADS * HEAD_DIM], 'f32'),
      );
      const dOutT = uploadTensor(gpu, dOut, [tokens, HEADS * HEAD_DIM], 'f32');
      const kept: Tensor[] = [];
      const keep = (t: Tensor) => (kept.push(t), t);
      const grads = await run(gpu, (b) => {
        const { out, lse } = attention(b, qt, kt, vt, s, at);
        const saved = { q: qt, k: kt, v: vt, out: keep(out), lse: keep(lse) };
        return attentionBackward(b, saved, dOutT, s, seqLen, keep);
      });
      expect(maxScaledError(await readF32(gpu, grads.dq), expected.dq)).toBeLessThan(1e-5);
      expect(maxScaledError(await readF32(gpu, grads.dk), expected.dk)).toBeLessThan(1e-5);
      expect(maxScaledError(await readF32(gpu, grads.dv), expected.dv)).toBeLessThan(1e-5);
      releaseTensor(gpu, qt, kt, vt, dOutT, ...kept);
    },
  );
});
