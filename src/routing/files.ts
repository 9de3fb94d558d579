// A router folder (docs/routing.md): `router.json` says what it is — the mode, top-k, the
// balance weight, the base model and the experts (adapters by name, the path they were read from
// relative to the folder and the SHA-256 of their adapter_model.safetensors; or experts trained
// with the router) — and `router.safetensors` holds what was learned: routers
// `<module>.router.weight` [E × in], learned scales `all.scales` or `layers.N.scales` [E], trained
// experts' stacked `<module>.experts.lora_A` [R × in] and `.lora_B` [out × R]. Reading checks
// everything against the model and the experts before anything runs.
import type { PeftAdapter } from '../adapters/peft-read.ts';
import { modulePath } from '../model/architecture.ts';
import type { ModelConfig } from '../model/config.ts';
import { FormatError } from '../model/errors.ts';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../model/safetensors.ts';
import { routingMode, type RoutingMode } from './modes.ts';
import { adapterRouterState, type RouterModuleState, type RouterState } from './router.ts';

export const ROUTER_JSON = 'router.json';
export const ROUTER_WEIGHTS = 'router.safetensors';
const FORMAT = 'lora-studio-router';
const VERSION = 1;

/** An expert as router.json records it. */
export interface ExpertRecord {
  name: string;
  /** An adapter expert: its folder relative to the router folder, and its weights' SHA-256. */
  path?: string;
  sha256?: string;
}

export interface RouterJson {
  format: typeof FORMAT;
  version: number;
  mode: RoutingMode;
  top_k: number;
  balance: number;
  base_model_name_or_path: string | null;
  experts: ExpertRecord[];
  /** Per routed module: its path, the experts' ranks there and the scaling of B·A. */
  modules: { path: string; layer: number; ranks: number[]; scale: number }[];
  /** Learned scales: one set (`all`) or per layer; absent for other modes. */
  scales?: 'all' | 'per-layer';
  /** How it was trained, as reported. */
  training?: Record<string, unknown>;
}

/** The folder's two files from a state. */
export function routerFiles(
  state: RouterState,
  options: {
    baseModel: string | null;
    experts: readonly ExpertRecord[];
    training?: Record<string, unknown>;
  },
): Map<string, Uint8Array> {
  const entry = routingMode(state.mode);
  const tensors: TensorToWrite[] = [];
  for (const [group, values] of state.scales)
    tensors.push({ name: `${group}.scales`, shape: [values.length], data: values });
  for (const m of state.modules) {
    const rank = m.a.length / m.in;
    if (m.router)
      tensors.push({
        name: `${m.path}.router.weight`,
        shape: [m.ranks.length, m.in],
        data: m.router,
      });
    if (entry.experts === 'trained') {
      tensors.push({ name: `${m.path}.experts.lora_A`, shape: [rank, m.in], data: m.a });
      tensors.push({ name: `${m.path}.experts.lora_B`, shape: [m.out, rank], data: m.b });
    }
  }
  const json: RouterJson = {
    format: FORMAT,
    version: VERSION,
    mode: state.mode,
    top_k: state.topK,
    balance: state.balance,
    base_model_name_or_path: options.baseModel,
    experts: [...options.experts],
    modules: state.modules.map((m) => ({
      path: m.path,
      layer: m.layer,
      ranks: m.ranks,
      scale: m.scale,
    })),
    ...(state.scales.size > 0 ? { scales: state.scales.has('all') ? 'all' : 'per-layer' } : {}),
    ...(options.training ? { training: options.training } : {}),
  };
  return new Map([
    [ROUTER_JSON, new TextEncoder().encode(`${JSON.stringify(json, null, 2)}\n`)],
    [ROUTER_WEIGHTS, writeSafetensors(tensors, { format: 'pt' })],
  ]);
}

/** router.json, checked field by field. */
export function parseRouterJson(bytes: Uint8Array, file = ROUTER_JSON): RouterJson {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new FormatError(file, 'is not valid UTF-8 JSON');
  }
  const bad = (what: string) => new FormatError(file, what);
  if (typeof json !== 'object' || json === null) throw bad('is not a JSON object');
  const j = json as Partial<RouterJson>;
  if (j.format !== FORMAT) throw bad(`is not a router (format "${String(j.format)}")`);
  if (j.version !== VERSION)
    throw bad(`is router format version ${String(j.version)}; this reads ${VERSION}`);
  try {
    routingMode(String(j.mode));
  } catch (e) {
    throw bad((e as Error).message);
  }
  const count = (v: unknown) => Number.isInteger(v) && (v as number) >= 0;
  // Elements of hostile JSON may be anything, null included.
  const field = (x: unknown, key: string): unknown =>
    typeof x === 'object' && x !== null ? (x as Record<string, unknown>)[key] : undefined;
  if (!count(j.top_k)) throw bad('has no valid top_k');
  if (typeof j.balance !== 'number' || !Number.isFinite(j.balance))
    throw bad('has no valid balance');
  if (
    !Array.isArray(j.experts) ||
    j.experts.length === 0 ||
    j.experts.some(
      (e) =>
        typeof field(e, 'name') !== 'string' ||
        !['string', 'undefined'].includes(typeof field(e, 'path')) ||
        !['string', 'undefined'].includes(typeof field(e, 'sha256')),
    )
  )
    throw bad('has no valid experts list');
  if (
    !Array.isArray(j.modules) ||
    j.modules.some((m) => {
      const ranks = field(m, 'ranks');
      const scale = field(m, 'scale');
      return (
        typeof field(m, 'path') !== 'string' ||
        !count(field(m, 'layer')) ||
        !Array.isArray(ranks) ||
        ranks.length === 0 ||
        !ranks.every(count) ||
        typeof scale !== 'number' ||
        !Number.isFinite(scale)
      );
    })
  )
    throw bad('has no valid modules list');
  return j as RouterJson;
}

/**
 * The state of a router folder for a model: the adapters (for modes that route between adapters,
 * in the folder's order, already checked against their hashes by the caller) give the stacked
 * factors; the weights file gives what was learned. Refuses a folder that does not fit.
 */
export function readRouter(
  json: RouterJson,
  weights: Uint8Array,
  config: ModelConfig,
  adapters: readonly PeftAdapter[],
): RouterState {
  const entry = routingMode(json.mode);
  const st = readSafetensors(weights, ROUTER_WEIGHTS);
  const tensor = (name: string, shape: readonly number[]) => {
    const info = st.header.tensors.get(name);
    if (!info) throw new FormatError(ROUTER_WEIGHTS, `has no tensor "${name}"`);
    if (info.shape.join('×') !== shape.join('×'))
      throw new FormatError(
        ROUTER_WEIGHTS,
        `"${name}" is ${info.shape.join('×')}, the model needs ${shape.join('×')}`,
      );
    const values = st.read(name);
    if (values.some((v) => !Number.isFinite(v)))
      throw new FormatError(ROUTER_WEIGHTS, `"${name}" holds NaN or Inf`);
    return values;
  };
  let modules: RouterModuleState[];
  if (entry.experts === 'adapters') {
    if (adapters.length !== json.experts.length)
      throw new FormatError(
        ROUTER_JSON,
        `names ${json.experts.length} adapters, ${adapters.length} given`,
      );
    const rebuilt = adapterRouterState(
      config,
      adapters.map((adapter) => ({ adapter, weight: 1 })),
      json.mode,
    );
    const recorded = new Map(json.modules.map((m) => [m.path, m]));
    for (const m of rebuilt.modules) {
      const r = recorded.get(m.path);
      if (r?.ranks.join(',') !== m.ranks.join(','))
        throw new FormatError(
          ROUTER_JSON,
          `${m.path}: the adapters have ranks ${m.ranks.join(', ')} there, the router was trained on ${r ? r.ranks.join(', ') : 'none'}`,
        );
    }
    if (recorded.size !== rebuilt.modules.length)
      throw new FormatError(ROUTER_JSON, 'routes modules the adapters do not adapt');
    modules = rebuilt.modules;
  } else {
    const known = new Map<string, { in: number; out: number }>();
    for (let l = 0; l < config.numLayers; l++)
      for (const m of config.arch.modules) known.set(modulePath(config.arch, l, m), m);
    modules = json.modules.map((r) => {
      const shape = known.get(r.path);
      if (!shape) throw new FormatError(ROUTER_JSON, `${r.path}: the model has no such module`);
      const rank = r.ranks.reduce((a, b) => a + b, 0);
      return {
        path: r.path,
        layer: r.layer,
        in: shape.in,
        out: shape.out,
        ranks: r.ranks,
        scale: r.scale,
        a: tensor(`${r.path}.experts.lora_A`, [rank, shape.in]),
        b: tensor(`${r.path}.experts.lora_B`, [shape.out, rank]),
      };
    });
  }
  for (const m of modules)
    if (entry.gate === 'router')
      m.router = tensor(`${m.path}.router.weight`, [m.ranks.length, m.in]);
  const scales = new Map<string, Float32Array>();
  if (entry.gate === 'scales') {
    const groups =
      json.scales === 'per-layer' ? [...new Set(modules.map((m) => `layers.${m.layer}`))] : ['all'];
    for (const g of groups) scales.set(g, tensor(`${g}.scales`, [json.experts.length]));
  }
  return {
    mode: json.mode,
    topK: json.top_k,
    balance: json.balance,
    experts: json.experts.map((e) => e.name),
    modules,
    scales,
  };
}
