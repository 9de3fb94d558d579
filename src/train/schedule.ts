// Learning-rate schedules: linear warmup, then constant, cosine decay to zero, or
// warmup-stable-decay (constant, then a linear decay to zero over the last `decayFraction`).

export const SCHEDULES = ['constant', 'cosine', 'wsd'] as const;
export type Schedule = (typeof SCHEDULES)[number];

export interface ScheduleOptions {
  schedule: Schedule;
  /** Peak learning rate. */
  lr: number;
  warmupSteps: number;
  totalSteps: number;
  /** wsd only: the share of the steps spent decaying (default 0.2). */
  decayFraction?: number;
}

/** The learning rate of 0-based step `step`. */
export function learningRate(step: number, o: ScheduleOptions): number {
  if (step < o.warmupSteps) return (o.lr * (step + 1)) / o.warmupSteps;
  const span = Math.max(1, o.totalSteps - o.warmupSteps);
  const progress = Math.min(1, (step - o.warmupSteps) / span);
  switch (o.schedule) {
    case 'constant':
      return o.lr;
    case 'cosine':
      return 0.5 * o.lr * (1 + Math.cos(Math.PI * progress));
    case 'wsd': {
      const decay = o.decayFraction ?? 0.2;
      const decayStart = o.totalSteps - Math.max(1, Math.round(decay * o.totalSteps));
      if (step < decayStart) return o.lr;
      return (o.lr * (o.totalSteps - step)) / (o.totalSteps - decayStart);
    }
  }
}
