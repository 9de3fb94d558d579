// The Extract panel's form, without a browser: what a drop or a pick is called and taken for, and
// the settings the worker gets from the form (or why the form is refused before anything is sent).
import { describe, expect, it } from 'vitest';
import { checkpointOf, DEFAULT_EXTRACT_FORM, extractSettings } from './extract-store.ts';

const picked = (path: string, size = 10) => ({
  path,
  file: new File([new Uint8Array(size)], path.slice(path.lastIndexOf('/') + 1)),
});

describe('the Extract panel’s form', () => {
  it('names a dropped folder, a .gguf and loose files, and says what they look like', () => {
    expect(
      checkpointOf([
        picked('Llama-3.2-1B/config.json'),
        picked('Llama-3.2-1B/model.safetensors', 90),
      ]),
    ).toMatchObject({ name: 'Llama-3.2-1B', kind: 'HF folder', bytes: 100 });
    expect(checkpointOf([picked('tuned-Q8_0.gguf')])).toMatchObject({
      name: 'tuned-Q8_0.gguf',
      kind: 'GGUF',
    });
    expect(checkpointOf([picked('notes.txt'), picked('weights.pt')])).toMatchObject({
      name: 'notes.txt, weights.pt',
      kind: 'files',
    });
    expect(checkpointOf([])).toBeNull();
  });

  it('sends a rank, or an energy share with its largest rank; refuses what is not one', () => {
    expect(extractSettings({ ...DEFAULT_EXTRACT_FORM, rank: 8 })).toEqual({
      rule: 8,
      targets: ['all-linear'],
      embeddings: 'skip',
      head: 'skip',
    });
    expect(
      extractSettings({
        ...DEFAULT_EXTRACT_FORM,
        mode: 'energy',
        energyPercent: 90,
        maxRank: 32,
        embeddings: 'save',
        head: 'save',
        targets: 'attention',
      }),
    ).toEqual({
      rule: { energy: 0.9, max: 32 },
      targets: ['attention'],
      embeddings: 'save',
      head: 'save',
    });
    expect(extractSettings({ ...DEFAULT_EXTRACT_FORM, rank: 2.5 })).toMatch(/whole number/);
    expect(extractSettings({ ...DEFAULT_EXTRACT_FORM, rank: NaN })).toMatch(/whole number/);
    const energy = { ...DEFAULT_EXTRACT_FORM, mode: 'energy' as const };
    expect(extractSettings({ ...energy, energyPercent: 0 })).toMatch(/more than 0 %/);
    expect(extractSettings({ ...energy, energyPercent: 120 })).toMatch(/at most 100 %/);
    expect(extractSettings({ ...energy, maxRank: 0 })).toMatch(/largest rank/);
  });
});
