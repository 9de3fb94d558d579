// S²FT's layout (src/adapters/s2ft.ts): which modules train, how many columns, and that the
// columns are whole heads on the attention output, drawn without replacement, reproducibly.
import { describe, expect, it } from 'vitest';
import { familyConfig, tinyConfig } from '../testing/tiny-model.ts';
import { seededRandom } from '../testing/random.ts';
import { adaptedModules, TARGET_PRESETS, type LoraSpec } from './config.ts';
import { s2ftColumns } from './s2ft.ts';

const spec = (patch: Partial<LoraSpec> = {}): LoraSpec => ({
  rank: 8,
  alpha: 16,
  rslora: false,
  targets: TARGET_PRESETS['all-linear'],
  dropout: 0,
  init: 's2ft',
  ...patch,
});

describe('S²FT layout', () => {
  it('trains the attention output (whole heads) and the down projection of each layer, by density', () => {
    // 4 heads of 6, 18 channels.
    const config = tinyConfig();
    const modules = adaptedModules(config, spec({ density: 0.5 }));
    expect(modules.map((m) => m.path)).toEqual([
      'model.layers.0.self_attn.o_proj',
      'model.layers.0.mlp.down_proj',
      'model.layers.1.self_attn.o_proj',
      'model.layers.1.mlp.down_proj',
    ]);
    const [o, down] = modules;
    expect([o.rank, o.group, o.scale]).toEqual([12, 6, 1]);
    expect([down.rank, down.group, down.scale]).toEqual([9, 1, 1]);
    // At least one head and one channel, however small the density.
    const tiny = adaptedModules(config, spec({ density: 0.01, layers: [1] }));
    expect(tiny.map((m) => m.rank)).toEqual([6, 1]);
    // The targets choose between the two; other targets are not S²FT's.
    const attention = adaptedModules(config, spec({ targets: ['attention'] }));
    expect(attention.map((m) => m.module)).toEqual(['o_proj', 'o_proj']);
    expect(() => adaptedModules(config, spec({ targets: ['q_proj'] }))).toThrow(
      /S²FT trains the attention output and MLP down projections \(o_proj, down_proj\)/,
    );
    expect(() => adaptedModules(config, spec({ density: 0 }))).toThrow(/density must be in/);
  });

  it('finds the attention output and down projection of GPT-2 too', () => {
    const config = familyConfig('gpt2');
    const modules = adaptedModules(config, spec({ layers: [0] }));
    expect(modules.map((m) => m.module)).toEqual(['attn.c_proj', 'mlp.c_proj']);
    expect(modules[0].rank % config.headDim).toBe(0);
  });

  it('draws whole groups without replacement, the same for the same seed', () => {
    const module = { in: 24, rank: 12, group: 4 };
    const columns = s2ftColumns(module, seededRandom(3));
    expect(columns).toHaveLength(12);
    expect(new Set(columns).size).toBe(12);
    for (let i = 0; i < 12; i += 4) {
      expect(columns[i] % 4).toBe(0);
      expect(columns.slice(i, i + 4)).toEqual([0, 1, 2, 3].map((k) => columns[i] + k));
    }
    expect(s2ftColumns(module, seededRandom(3))).toEqual(columns);
    expect(s2ftColumns(module, seededRandom(4))).not.toEqual(columns);
    expect(() => s2ftColumns({ in: 24, rank: 6, group: 4 }, seededRandom(1))).toThrow(
      /whole groups/,
    );
  });
});
