import type { Gpu } from './device.ts';

/** Tuned parameters of one device, as `Gpu.tuning` holds them. */
export type TuningEntries = Record<string, Readonly<Record<string, number>>>;

/** Where tuned parameters persist between sessions: IndexedDB in the browser, a file in Node. */
export interface TuningStore {
  load(device: string): Promise<TuningEntries | undefined>;
  save(device: string, entries: TuningEntries): Promise<void>;
}

/** Identifies a device for tuning: parameters tuned on one adapter say nothing of another. */
export function deviceKey(gpu: Gpu): string {
  const { vendor, architecture, device, description } = gpu.adapter;
  return [vendor, architecture, device, description].join('|');
}

/** Adds the stored parameters for this device to `gpu.tuning` (entries already there win). */
export async function restoreTuning(gpu: Gpu, store: TuningStore): Promise<void> {
  const stored = await store.load(deviceKey(gpu));
  for (const [key, value] of Object.entries(stored ?? {})) {
    if (!gpu.tuning.has(key)) gpu.tuning.set(key, value);
  }
}

export function persistTuning(gpu: Gpu, store: TuningStore): Promise<void> {
  return store.save(deviceKey(gpu), Object.fromEntries(gpu.tuning));
}
