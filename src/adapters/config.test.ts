import { describe, expect, it } from 'vitest';
import { tinyConfig } from '../testing/tiny-model.ts';
import { adaptedModules, scaling, TARGET_PRESETS, type LoraSpec } from './config.ts';
import { parseInit } from './inits.ts';

const config = tinyConfig({ numLayers: 3 });
const spec: LoraSpec = {
  rank: 4,
  alpha: 8,
  rslora: false,
  targets: TARGET_PRESETS.attention,
  dropout: 0,
  init: 'lora',
};

describe('LoRA specs', () => {
  it('adapts the chosen modules of the chosen layers, with alpha/r scaling', () => {
    const modules = adaptedModules(config, {
      ...spec,
      targets: ['q_proj', 'down_proj'],
      layers: [2, 0],
    });
    expect(modules.map((m) => m.path)).toEqual([
      'model.layers.0.self_attn.q_proj',
      'model.layers.0.mlp.down_proj',
      'model.layers.2.self_attn.q_proj',
      'model.layers.2.mlp.down_proj',
    ]);
    expect(modules[1]).toMatchObject({
      in: config.intermediateSize,
      out: config.hiddenSize,
      rank: 4,
      scale: 2,
    });
  });

  it('applies rank_pattern / alpha_pattern keys at a name boundary, and rsLoRA scaling', () => {
    const modules = adaptedModules(config, {
      ...spec,
      rslora: true,
      rankPattern: { 'layers.1.self_attn.q_proj': 2, v_proj: 6 },
      alphaPattern: { k_proj: 3 },
    });
    const byPath = new Map(modules.map((m) => [m.path, m]));
    expect(byPath.get('model.layers.1.self_attn.q_proj')?.rank).toBe(2);
    expect(byPath.get('model.layers.0.self_attn.q_proj')?.rank).toBe(4);
    expect(byPath.get('model.layers.2.self_attn.v_proj')?.rank).toBe(6);
    expect(byPath.get('model.layers.0.self_attn.k_proj')?.scale).toBe(3 / 2);
    expect(byPath.get('model.layers.0.self_attn.o_proj')?.scale).toBe(8 / 2);
    expect(scaling(8, 16, false)).toBe(0.5);
  });

  it('refuses impossible settings with one message listing them', () => {
    expect(() => adaptedModules(config, { ...spec, rank: 0, dropout: 1, layers: [7] })).toThrow(
      /rank must be an integer ≥ 1; dropout must be in \[0, 1\); layers 7 do not exist/,
    );
    expect(() => adaptedModules(config, { ...spec, rank: 13 })).toThrow(/rank 13 exceeds/);
    expect(parseInit('pissa_niter_4')).toBe('pissa_niter_4');
    expect(() => parseInit('pissa_niter_0')).toThrow(/unknown init/);
  });
});
