// A composition shared as a link: the page's URL with the board in its fragment,
// `#compose=<base64url of JSON>`. The fragment never reaches a server (browsers do not send it),
// so a link carries the recipe and nothing leaves the machine until its reader opens it; the
// adapters are named by Hub repo (and commit, so the link keeps meaning what it meant), and
// opening it downloads them from the Hub. Everything in a link is checked before anything is
// downloaded: a damaged or hostile one is refused in one line.
import { isHubRepoId, isRevision, refText, sameRef, type HubRef } from '../hub/repo-id.ts';
import { errorMessage } from '../errors.ts';
import { resolveOptions, type MergeOptions } from '../worker/api.ts';
import { WEIGHT_MAX, WEIGHT_MIN } from './library-store.ts';

/** A board card: its adapter, and its switch and weight in the run-time composition. */
export interface SharedAdapter extends HubRef {
  weight: number;
  on: boolean;
}

export interface SharedComposition {
  /** What the adapters were composed on (a Hub id where the model came from the Hub). */
  baseModel?: string;
  /** In board order: a merge's order. */
  adapters: SharedAdapter[];
  /** The merge card's method, its parameters, and the layer grid and LiNeS when not neutral. */
  merge: MergeOptions;
  /** The live preview's prompt. */
  prompt?: string;
}

const KEY = 'compose=';
const VERSION = 1;
/** Far above any real board (a 32-layer grid is ~3 kB), far below what could hurt the page. */
const MAX_LINK_CHARS = 100_000;
const MAX_ADAPTERS = 32;
const MAX_TEXT = 4000;
const MAX_GRID_LAYERS = 1024;
const MAX_GRID_MODULES = 64;

function toBase64Url(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000)
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text: string): Uint8Array {
  if (!/^[\w-]*$/.test(text)) throw new Error('it holds characters base64url does not use');
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** The page at `pageUrl` (its fragment replaced) opening `composition`. */
export function compositionLink(pageUrl: string, composition: SharedComposition): string {
  const json = {
    lora_studio_composition: VERSION,
    ...(composition.baseModel !== undefined && { base_model: composition.baseModel }),
    adapters: composition.adapters.map(({ repo, revision, weight, on }) => ({
      repo,
      ...(revision !== undefined && { revision }),
      weight,
      on,
    })),
    merge: composition.merge,
    ...(composition.prompt !== undefined && { prompt: composition.prompt }),
  };
  const payload = toBase64Url(new TextEncoder().encode(JSON.stringify(json)));
  return `${pageUrl.replace(/#.*$/, '')}#${KEY}${payload}`;
}

class LinkError extends Error {
  override name = 'LinkError';
  constructor(problem: string) {
    super(`This composition link ${problem}.`);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function optionalText(value: unknown, field: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length > MAX_TEXT)
    throw new LinkError(`has a ${field} that is not text of at most ${MAX_TEXT} characters`);
  return value;
}

function sharedAdapter(value: unknown, i: number): SharedAdapter {
  const at = `adapter ${i + 1}`;
  if (!isObject(value)) throw new LinkError(`names ${at} without its repo, weight and switch`);
  const { repo, revision, weight, on } = value;
  if (typeof repo !== 'string' || !isHubRepoId(repo))
    throw new LinkError(`names ${at} by "${String(repo).slice(0, 100)}", not a Hub repo id`);
  if (revision !== undefined && (typeof revision !== 'string' || !isRevision(revision)))
    throw new LinkError(`gives ${repo} a revision that is no branch or commit id`);
  if (typeof weight !== 'number' || !(weight >= WEIGHT_MIN && weight <= WEIGHT_MAX))
    throw new LinkError(
      `gives ${repo} the weight ${String(weight)}; weights go from ${WEIGHT_MIN} to ${WEIGHT_MAX}`,
    );
  if (typeof on !== 'boolean') throw new LinkError(`does not say whether ${repo} is switched on`);
  return { repo, ...(revision !== undefined && { revision }), weight, on };
}

function mergeOptions(value: unknown): MergeOptions {
  if (!isObject(value) || typeof value.method !== 'string')
    throw new LinkError('has no merge method');
  const grid = value.layerGrid;
  if (grid !== undefined) {
    const { modules, weights } = isObject(grid) ? grid : {};
    if (
      !Array.isArray(modules) ||
      modules.length > MAX_GRID_MODULES ||
      !modules.every((m) => typeof m === 'string' && m.length <= 100) ||
      !Array.isArray(weights) ||
      weights.length > MAX_GRID_LAYERS ||
      !weights.every((row) => Array.isArray(row) && row.every((w) => typeof w === 'number'))
    )
      throw new LinkError(
        `has a layer grid that is not module names and one row of numbers per layer (at most ${MAX_GRID_LAYERS} layers × ${MAX_GRID_MODULES} modules)`,
      );
  }
  const options = value as unknown as MergeOptions;
  try {
    resolveOptions(options);
  } catch (e) {
    throw new LinkError(`has merge settings this studio refuses (${errorMessage(e)})`);
  }
  return options;
}

/**
 * The composition a page URL's fragment holds; null when the fragment is no composition link.
 * Refuses, in one line, a link that is damaged, too long, or holds anything a board could not.
 */
export function sharedComposition(hash: string): SharedComposition | null {
  const fragment = hash.replace(/^#/, '');
  if (!fragment.startsWith(KEY)) return null;
  const payload = fragment.slice(KEY.length);
  if (payload.length > MAX_LINK_CHARS)
    throw new LinkError(
      `is ${Math.round(payload.length / 1000)} kB long; a composition fits in ${MAX_LINK_CHARS / 1000} kB`,
    );
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(fromBase64Url(payload)));
  } catch (e) {
    throw new LinkError(`is cut short or damaged (${errorMessage(e)}): copy it again whole`);
  }
  if (!isObject(json) || typeof json.lora_studio_composition !== 'number')
    throw new LinkError('holds no LoRA Studio composition');
  if (json.lora_studio_composition !== VERSION)
    throw new LinkError(
      `was made by another version of the studio (format ${json.lora_studio_composition}; this one reads ${VERSION})`,
    );
  const { adapters } = json;
  if (!Array.isArray(adapters) || adapters.length === 0 || adapters.length > MAX_ADAPTERS)
    throw new LinkError(`must name 1 to ${MAX_ADAPTERS} adapters`);
  const shared = adapters.map(sharedAdapter);
  for (const [i, a] of shared.entries())
    if (shared.findIndex((b) => sameRef(a, b)) !== i)
      throw new LinkError(`names ${refText(a)} twice`);
  const baseModel = optionalText(json.base_model, 'base model');
  const prompt = optionalText(json.prompt, 'prompt');
  return {
    ...(baseModel !== undefined && { baseModel }),
    adapters: shared,
    merge: mergeOptions(json.merge),
    ...(prompt !== undefined && { prompt }),
  };
}
