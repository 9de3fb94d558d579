// The init table is the one list of inits: every entry must reach every place that offers,
// parses, exports, studies or documents inits, so that one forgotten there fails here.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { usage } from '../cli/main.ts';
import { tinyConfig } from '../testing/tiny-model.ts';
import { VARIANTS } from '../studies/init-study.ts';
import { INIT_CHOICES } from '../ui/train-settings-store.ts';
import { adaptedModules, TARGET_PRESETS, type LoraSpec } from './config.ts';
import { initChoice, initEntry, INIT_NAMES, INITS, parseInit } from './inits.ts';
import { exportAdapter, peftFiles } from './peft.ts';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
const DOCS = read('docs/initialisations.md');

describe.each(INITS.map((e) => [e.name, e] as const))('init %s', (name, entry) => {
  const choice = initChoice(entry);

  it('is offered by the Train panel, with its label and explanation', () => {
    expect(INIT_CHOICES).toContainEqual({
      value: choice,
      label: entry.label,
      explanation: entry.explanation,
    });
  });

  it("is listed by the CLI's --init help and accepted by its parser", () => {
    const listed = /\[--init ([^\]\s]+)\]/.exec(usage())?.[1].split('|');
    expect(listed).toContain(name);
    expect(parseInit(choice)).toBe(choice);
    expect(initEntry(choice)).toBe(entry);
  });

  it('is trained by the init study', () => {
    expect(VARIANTS).toContainEqual({ label: entry.shortName, init: choice });
  });

  it('is named in docs/initialisations.md', () => {
    expect(DOCS.includes(`\`${name}\``), `\`${name}\` in the docs`).toBe(true);
  });

  it("exports to PEFT's adapter_config.json with its init_lora_weights", () => {
    const config = tinyConfig();
    const spec: LoraSpec = {
      rank: 2,
      alpha: 4,
      rslora: false,
      targets: TARGET_PRESETS.attention,
      layers: [0],
      dropout: 0,
      init: choice,
    };
    const modules = adaptedModules(config, spec);
    const factors = new Map(
      modules.map((m) => [
        m.path,
        { a: new Float32Array(m.rank * m.in), b: new Float32Array(m.out * m.rank) },
      ]),
    );
    const files = peftFiles(exportAdapter(modules, factors, spec, 'tiny', config));
    const written = JSON.parse(
      new TextDecoder().decode(files.get('adapter_config.json')),
    ) as Record<string, unknown>;
    expect([true, 'gaussian']).toContain(entry.initLoraWeights);
    expect(written.init_lora_weights).toBe(entry.initLoraWeights);
  });

  it('reads batches of the data exactly when it needs a statistic of them', () => {
    expect(entry.batches > 0).toBe(entry.statistic !== 'none');
  });
});

describe('the init table', () => {
  it('names each init once; short names are unique and fit init-study --only', () => {
    const names = INITS.map((e) => e.name);
    const shortNames = INITS.map((e) => e.shortName);
    expect(new Set(names).size).toBe(names.length);
    expect(new Set(shortNames).size).toBe(shortNames.length);
    for (const s of shortNames) expect(s).not.toContain(',');
  });

  it('imports no code at run time: the UI bundles it for its choices', () => {
    const source = read('src/adapters/inits.ts');
    expect(source.match(/^import (?!type )[^;]*;/gm)).toBeNull();
  });

  it("is the README's list of --init values", () => {
    expect(read('README.md')).toContain(`\`--init ${INIT_NAMES.join('|')}\``);
  });

  it('parses a parameterised name for every whole number N ≥ 1, and nothing else', () => {
    expect(parseInit('pissa_niter_1')).toBe('pissa_niter_1');
    expect(parseInit('pissa_niter_16')).toBe('pissa_niter_16');
    for (const bad of ['pissa_niter_N', 'pissa_niter_0', 'pissa_niter_04', 'pissa_niter_', 'svd'])
      expect(() => parseInit(bad), bad).toThrow(/unknown init/);
  });
});
