// Adapters whose numbers would turn the model's output into NaN are refused before applying.
import { describe, expect, it } from 'vitest';
import { fixture } from '../testing/fixtures.ts';
import { applyRefusal } from './applicable.ts';
import { readPeftAdapter } from './peft-read.ts';

const DIR = 'adapters/qwen2.5-0.5b-instruct/MatthewZhang473_20251017_101834_r6_alpha32';

function adapter(config: (c: Record<string, unknown>) => object = (c) => c) {
  const json = JSON.parse(
    new TextDecoder().decode(fixture(`${DIR}/adapter_config.json`)),
  ) as Record<string, unknown>;
  return readPeftAdapter(
    new Map([
      ['adapter_config.json', new TextEncoder().encode(JSON.stringify(config(json)))],
      ['adapter_model.safetensors', fixture(`${DIR}/adapter_model.safetensors`)],
    ]),
    'qwen',
  );
}

describe('applyRefusal', () => {
  it('lets a sound adapter through', () => {
    expect(applyRefusal(adapter())).toBeNull();
  });

  it('refuses NaN factors and a scaling beyond float32', () => {
    const nan = adapter();
    const module = nan.modules.get('model.layers.2.self_attn.v_proj')!;
    module.b[3] = NaN;
    nan.nonFinite.push({
      tensor: 'base_model.model.model.layers.2.self_attn.v_proj.lora_B.weight',
      count: 1,
    });
    expect(applyRefusal(nan)).toMatch(/^qwen: 1 tensor holds NaN or infinite values \(.*v_proj/);
    expect(applyRefusal(adapter((c) => ({ ...c, lora_alpha: 1e308 })))).toMatch(
      /qwen: model.layers.0.self_attn.q_proj's scaling 1.67e\+307 \(lora_alpha \/ r\) puts its update beyond float32/,
    );
  });
});
