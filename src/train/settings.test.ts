import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS, withDefaultSettings, type TrainSettings } from './settings.ts';

describe('training settings', () => {
  it("default AdamW's betas and epsilon to the values training used before they were settings", () => {
    expect(DEFAULT_SETTINGS).toMatchObject({ adamBeta1: 0.9, adamBeta2: 0.999, adamEpsilon: 1e-8 });
  });

  it('complete a run saved before the AdamW settings existed, and keep those it saved', () => {
    // As checkpoint.json of an older run reads back: the AdamW fields are missing.
    const older: Partial<TrainSettings> = { ...DEFAULT_SETTINGS, lr: 0.02 };
    delete older.adamBeta1;
    delete older.adamBeta2;
    delete older.adamEpsilon;
    expect(withDefaultSettings(older as TrainSettings)).toEqual({ ...DEFAULT_SETTINGS, lr: 0.02 });
    const saved = { ...DEFAULT_SETTINGS, adamBeta1: 0.8, adamEpsilon: 1e-6 };
    expect(withDefaultSettings(saved)).toEqual(saved);
  });
});
