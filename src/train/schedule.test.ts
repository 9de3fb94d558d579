import { describe, expect, it } from 'vitest';
import { learningRate, type Schedule } from './schedule.ts';

const at = (schedule: Schedule, step: number) =>
  learningRate(step, { schedule, lr: 1, warmupSteps: 4, totalSteps: 24 });

describe('learning-rate schedules', () => {
  it.each(['constant', 'cosine', 'wsd'] as const)('%s warms up linearly to the peak', (s) => {
    expect([0, 1, 2, 3].map((i) => at(s, i))).toEqual([0.25, 0.5, 0.75, 1]);
    expect(at(s, 4)).toBe(1);
  });

  it('cosine decays to zero at the last step and is halfway at the middle', () => {
    expect(at('cosine', 14)).toBeCloseTo(0.5, 10);
    expect(at('cosine', 24)).toBeCloseTo(0, 10);
    for (let i = 5; i < 24; i++) expect(at('cosine', i)).toBeLessThan(at('cosine', i - 1));
  });

  it('warmup-stable-decay holds the peak, then decays linearly over the last fifth', () => {
    expect(at('wsd', 18)).toBe(1);
    expect(at('wsd', 19)).toBe(1);
    expect(at('wsd', 20)).toBeCloseTo(0.8, 10);
    expect(at('wsd', 23)).toBeCloseTo(0.2, 10);
  });
});
