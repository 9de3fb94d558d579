import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { useGpu } from '../testing/gpu.ts';
import { fileTuningStore } from './tuning-file.ts';
import { deviceKey, persistTuning, restoreTuning } from './tuning.ts';

const gpu = useGpu();

it('persists tuned parameters per device in a file and restores them', async () => {
  const store = fileTuningStore(
    join(mkdtempSync(join(tmpdir(), 'tuning-')), 'nested', 'tuning.json'),
  );
  expect(await store.load(deviceKey(gpu()))).toBeUndefined();
  gpu().tuning.set('matmul:NN:M64:N8:K64', { wgX: 2, wgY: 32 });
  await persistTuning(gpu(), store);
  await store.save('another device', { 'matmul:NN:M1:N1:K1': { wgX: 1, wgY: 64 } });
  gpu().tuning.clear();
  await restoreTuning(gpu(), store);
  expect(Object.fromEntries(gpu().tuning)).toEqual({ 'matmul:NN:M64:N8:K64': { wgX: 2, wgY: 32 } });
});
