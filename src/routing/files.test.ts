// Router folders round-trip exactly (every mode), and a folder that does not fit — hostile
// JSON, tensors of the wrong shape or with NaN, other adapters — is refused by name.
import { describe, expect, it } from 'vitest';
import { readPeftAdapter } from '../adapters/peft-read.ts';
import { FormatError } from '../model/errors.ts';
import { writeSafetensors } from '../model/safetensors.ts';
import { randomAdapterFiles } from '../testing/random-adapter.ts';
import { tinyConfig } from '../testing/tiny-model.ts';
import { parseRouterJson, readRouter, routerFiles, ROUTER_JSON, ROUTER_WEIGHTS } from './files.ts';
import { ROUTING_MODE_NAMES, routingMode, type RoutingMode } from './modes.ts';
import { adapterRouterState, trainedRouterState, type RouterState } from './router.ts';

const config = tinyConfig();
const adapters = [1, 2].map((seed) =>
  readPeftAdapter(
    randomAdapterFiles(config, {
      seed,
      rank: seed + 1,
      alpha: 4,
      range: 0.3,
      baseModel: 'tiny',
      modules: seed === 1 ? undefined : ['q_proj', 'down_proj'],
    }),
    `adapter ${seed}`,
  ),
);

function stateFor(mode: RoutingMode): RouterState {
  if (routingMode(mode).experts === 'adapters')
    return adapterRouterState(
      config,
      adapters.map((adapter, i) => ({ adapter, weight: 1 - 0.25 * i })),
      mode,
      { topK: 1, balance: 0.01, perLayer: true, seed: 4 },
    );
  const state = trainedRouterState(config, mode, {
    targets: ['attention'],
    experts: [1, 3],
    rank: 2,
    alpha: 4,
    seed: 5,
  });
  for (const m of state.modules) m.b = m.b.map((_, i) => Math.sin(i));
  return state;
}

const experts = (state: RouterState) => state.experts.map((name) => ({ name }));

describe('router folders', () => {
  it.each(ROUTING_MODE_NAMES)('%s: files → state gives back the state exactly', (mode) => {
    const state = stateFor(mode);
    const files = routerFiles(state, { baseModel: 'tiny', experts: experts(state) });
    const json = parseRouterJson(files.get(ROUTER_JSON)!);
    const read = readRouter(json, files.get(ROUTER_WEIGHTS)!, config, adapters);
    expect(read.mode).toBe(mode);
    expect(read.topK).toBe(state.topK);
    expect(read.experts).toEqual(state.experts);
    expect([...read.scales.keys()]).toEqual([...state.scales.keys()]);
    for (const [g, v] of state.scales)
      expect(Array.from(read.scales.get(g)!)).toEqual(Array.from(v));
    expect(read.modules.map((m) => m.path)).toEqual(state.modules.map((m) => m.path));
    read.modules.forEach((m, i) => {
      const want = state.modules[i];
      expect(m.ranks).toEqual(want.ranks);
      expect(m.scale).toBe(want.scale);
      expect(Array.from(m.a)).toEqual(Array.from(want.a));
      expect(Array.from(m.b)).toEqual(Array.from(want.b));
      expect(m.router && Array.from(m.router)).toEqual(want.router && Array.from(want.router));
    });
  });

  it('MoLA: more experts in higher layers, per layer band', () => {
    const state = trainedRouterState(tinyConfig({ numLayers: 4 }), 'mixlora', {
      targets: ['q_proj'],
      experts: [2, 4],
      rank: 1,
      alpha: 2,
      seed: 1,
    });
    expect(state.modules.map((m) => m.ranks.length)).toEqual([2, 2, 4, 4]);
    expect(state.topK).toBe(2);
  });

  it('stacks each adapter’s B with its scaling folded in, an empty block where it does not adapt', () => {
    const state = stateFor('token');
    const v = state.modules.find((m) => m.path.endsWith('v_proj'))!;
    expect(v.ranks).toEqual([2, 0]);
    const q = state.modules.find((m) => m.path === 'model.layers.0.self_attn.q_proj')!;
    expect(q.ranks).toEqual([2, 3]);
    const second = adapters[1].modules.get(q.path)!;
    const total = 5;
    expect(q.b[0 * total + 2]).toBeCloseTo(second.scale * second.b[0], 6);
    expect(Array.from(q.a.subarray(2 * q.in))).toEqual(Array.from(second.a));
  });

  it.each([
    ['not JSON', '{', /is not valid UTF-8 JSON/],
    ['another format', '{"format": "peft"}', /is not a router/],
    ['a newer version', '{"format": "lora-studio-router", "version": 9}', /version 9/],
    [
      'an unknown mode',
      '{"format": "lora-studio-router", "version": 1, "mode": "moe"}',
      /unknown routing mode "moe"/,
    ],
    [
      'null experts',
      '{"format": "lora-studio-router", "version": 1, "mode": "token", "top_k": 0, "balance": 0, "experts": [null], "modules": []}',
      /no valid experts list/,
    ],
    [
      'a bad module',
      '{"format": "lora-studio-router", "version": 1, "mode": "token", "top_k": 0, "balance": 0, "experts": [{"name": "a"}], "modules": [{"path": "x", "layer": 0, "ranks": [-1], "scale": 1}]}',
      /no valid modules list/,
    ],
  ])('router.json with %s is refused', (_, text, message) => {
    expect(() => parseRouterJson(new TextEncoder().encode(text))).toThrow(message);
  });

  it('refuses weights of the wrong shape or with NaN, and adapters that are not the ones trained on', () => {
    const state = stateFor('token');
    const files = routerFiles(state, { baseModel: 'tiny', experts: experts(state) });
    const json = parseRouterJson(files.get(ROUTER_JSON)!);
    const first = state.modules[0];
    const tensors = state.modules.map((m) => ({
      name: `${m.path}.router.weight`,
      shape: [m.ranks.length, m.in],
      data: m === first ? new Float32Array(m.router!.length).fill(NaN) : m.router!,
    }));
    expect(() => readRouter(json, writeSafetensors(tensors), config, adapters)).toThrow(
      /holds NaN or Inf/,
    );
    const short = writeSafetensors([
      {
        name: `${first.path}.router.weight`,
        shape: [1, first.in],
        data: new Float32Array(first.in),
      },
    ]);
    expect(() => readRouter(json, short, config, adapters)).toThrow(/is 1×\d+, the model needs 2×/);
    expect(() =>
      readRouter(json, files.get(ROUTER_WEIGHTS)!, config, [adapters[1], adapters[0]]),
    ).toThrow(FormatError);
    expect(() => readRouter(json, files.get(ROUTER_WEIGHTS)!, config, [adapters[0]])).toThrow(
      /names 2 adapters, 1 given/,
    );
  });
});
