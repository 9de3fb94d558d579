import { describe, expect, it } from 'vitest';
import { createSampler } from './sampling.ts';

const logits = Float32Array.from([1, 3, 2, 0.5, 2.9]);

describe('sampling', () => {
  it('is greedy at temperature 0, with top-k 1, and with a tiny top-p', () => {
    expect(createSampler()(logits, [])).toBe(1);
    expect(createSampler({ temperature: 1, topK: 1 })(logits, [])).toBe(1);
    expect(createSampler({ temperature: 1, topP: 1e-6 })(logits, [])).toBe(1);
  });

  it('repeats exactly for a seed and differs across seeds', () => {
    const draw = (seed: number) => {
      const sample = createSampler({ temperature: 1, seed });
      return Array.from({ length: 50 }, () => sample(logits, []));
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
  });

  it('draws with softmax(logits / T) frequencies', () => {
    const sample = createSampler({ temperature: 2, seed: 1 });
    const n = 40_000;
    const counts = new Array<number>(logits.length).fill(0);
    for (let i = 0; i < n; i++) counts[sample(logits, [])]++;
    const weights = Array.from(logits, (l) => Math.exp(l / 2));
    const total = weights.reduce((a, b) => a + b, 0);
    weights.forEach((w, i) => {
      expect(Math.abs(counts[i] / n - w / total)).toBeLessThan(0.01);
    });
  });

  it('keeps only the top-k and the top-p nucleus', () => {
    const k2 = createSampler({ temperature: 1, topK: 2, seed: 3 });
    const p = createSampler({ temperature: 1, topP: 0.5, seed: 3 });
    for (let i = 0; i < 500; i++) {
      expect([1, 4]).toContain(k2(logits, []));
      // p(1) ≈ 0.38 < 0.5, so the nucleus is {1, 4} (0.38 + 0.34).
      expect([1, 4]).toContain(p(logits, []));
    }
  });

  it('penalises repeated tokens: divides positive logits, multiplies negative ones', () => {
    const greedy = createSampler({ repetitionPenalty: 2 });
    // 3/2 = 1.5 < 2.9: token 1 loses to token 4 once it has been seen.
    expect(greedy(logits, [1])).toBe(4);
    expect(greedy(Float32Array.from([-1, -1.5]), [0])).toBe(1);
  });

  it('refuses nonsense options', () => {
    expect(() => createSampler({ temperature: -1 })).toThrow(RangeError);
    expect(() => createSampler({ topP: 0 })).toThrow(RangeError);
  });
});
