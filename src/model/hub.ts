// Model files from the Hugging Face Hub by repo id ("HuggingFaceTB/SmolLM2-135M"), downloaded
// with progress through a cache. A repo of GGUF files gives one of them, picked by the quant tag
// after the id as llama.cpp (`-hf repo:Q4_K_M`) and ollama (`hf.co/repo:Q4_K_M`) take it. The
// base URL is a parameter so tests serve fixtures in the Hub's URL layout
// (`<base>/<repo>/resolve/<revision>/<file>`, `<base>/api/models/<repo>/tree/<revision>`) from
// 127.0.0.1.
import { errorMessage } from '../errors.ts';
import { FormatError } from './errors.ts';
import type { ModelFile } from './hf-folder.ts';
import { CHAT_TEMPLATE_FILE } from './load.ts';

export interface DownloadProgress {
  file: string;
  loaded: number;
  /** From Content-Length; 0 when the server does not say. */
  total: number;
}

/**
 * Downloaded files by URL (Cache Storage in the browser), so a reload need not download again;
 * and the parts of an interrupted download, so a reload continues it with a Range request.
 */
export interface FileCache {
  get(url: string): Promise<Uint8Array | undefined>;
  put(url: string, bytes: Uint8Array): Promise<void>;
  /** The parts saved so far, in order, with the ETag of the response they came from. */
  parts(url: string): Promise<{ parts: Uint8Array[]; etag: string | null }>;
  addPart(url: string, index: number, bytes: Uint8Array, etag: string | null): Promise<void>;
  clearParts(url: string): Promise<void>;
}

export interface HubOptions {
  baseUrl?: string;
  revision?: string;
  cache?: FileCache;
  onProgress?: (progress: DownloadProgress) => void;
  /** Size of the parts an interrupted download keeps (default 8 MiB). */
  partBytes?: number;
  /** A file larger than this is refused before (or as soon as) its bytes pass it. */
  maxBytes?: number;
}

export const HUB_URL = 'https://huggingface.co';
/** `owner/name`, optionally `:QUANT` (letters, digits, `_` and `-`: `Q4_K_M`, `UD-Q4_K_XL`). */
const REPO_REF = /^([\w.-]+\/[\w.-]+)(?::([\w-]+))?$/;
/** llama.cpp's and ollama's choice where the id names no quant and the repo has this one. */
const DEFAULT_QUANT = 'Q4_K_M';
/** One of the parts llama-gguf-split cuts a model into: `<name>-00001-of-00003.gguf`. */
const SPLIT_PART = /-(\d{5})-of-(\d{5})\.gguf$/i;

/**
 * A file the server would not send. `code` is the Hub's `X-Error-Code` (`GatedRepo`,
 * `RepoNotFound`…), which it exposes to browsers through CORS; null where a server sends none.
 */
class HubHttpError extends Error {
  override name = 'HubHttpError';
  constructor(
    readonly status: number,
    readonly code: string | null,
    file: string,
  ) {
    super(`HTTP ${status} for ${file}`);
  }
}

/** No answer at all: offline, a DNS failure, a refused connection (fetch rejects, not a status). */
class HubUnreachable extends Error {
  override name = 'HubUnreachable';
  constructor(cause: unknown) {
    super(`the Hub could not be reached (${errorMessage(cause)}): is the network connected?`);
  }
}

/** fetch, with a network failure said as such rather than as a missing file. */
async function hubFetch(url: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (e) {
    throw new HubUnreachable(e);
  }
}

/**
 * Why the Hub refused a repo's config.json with 401/403, in words, or null for other failures.
 * The studio sends no credentials (it has no login and no server to keep a token), so a gated
 * repo — one whose licence must be accepted on huggingface.co first — always answers 401 here.
 */
function refusal(repo: string, e: unknown): string | null {
  if (!(e instanceof HubHttpError) || (e.status !== 401 && e.status !== 403)) return null;
  const gated = `the Hub serves a gated repo's files only to a logged-in account that has accepted its licence, and this studio downloads without logging in: accept the licence at ${HUB_URL}/${repo}, download the files there and drop them on the Model panel`;
  if (e.code === 'GatedRepo') return `is gated (${e.message}): ${gated}`;
  if (e.code === 'RepoNotFound') return `is not on the Hub, or is private (${e.message})`;
  return `was refused by the Hub (${e.message}): it is gated or private, or does not exist. If it is gated, ${gated}`;
}

/**
 * The files of a Hub model repository that the studio needs, downloaded on demand: an HF folder's
 * (config.json, the safetensors, the tokenizer), or one .gguf — for `repo:QUANT`, or a repo
 * without config.json.
 */
export async function hubModelFiles(
  repoRef: string,
  options: HubOptions = {},
): Promise<ModelFile[]> {
  const ref = REPO_REF.exec(repoRef);
  if (!ref)
    throw new FormatError(
      repoRef,
      'is not a Hub repo id like "HuggingFaceTB/SmolLM2-135M" (or "owner/name:Q4_K_M" for a GGUF file of the repo)',
    );
  const repo = ref[1];
  const quant = ref[2] as string | undefined;
  const { baseUrl = HUB_URL, revision = 'main' } = options;
  const base = baseUrl.replace(/\/$/, '');
  const url = (file: string) => `${base}/${repo}/resolve/${revision}/${file}`;
  // Each file is fetched at most once, whether probed for existence or read as a weight.
  const downloads = new Map<string, Promise<Uint8Array>>();
  const download = (file: string) => {
    let pending = downloads.get(file);
    if (!pending) {
      pending = fetchBytes(url(file), file, options);
      downloads.set(file, pending);
    }
    return pending;
  };
  const exists = async (file: string) =>
    (await download(file).catch(() => undefined)) !== undefined;
  const gguf = (files: string[]): ModelFile[] => {
    const file = pickGguf(repo, files, quant);
    return [
      {
        name: file,
        // A gated repo lists its files to anyone and refuses only the download.
        bytes: () =>
          download(file).catch((e: unknown) => {
            const why = refusal(repo, e);
            throw why ? new FormatError(repo, why) : e;
          }),
      },
    ];
  };
  const listing = () => listFiles(`${base}/api/models/${repo}/tree/${revision}`);

  if (quant !== undefined)
    return gguf(
      await listing().catch((e: unknown) => {
        throw new FormatError(
          repo,
          refusal(repo, e) ??
            (e instanceof HubUnreachable
              ? e.message
              : `has no file list on the Hub (${errorMessage(e)})`),
        );
      }),
    );
  let config: Uint8Array;
  try {
    config = await download('config.json');
  } catch (e) {
    const why = refusal(repo, e) ?? (e instanceof HubUnreachable ? e.message : null);
    if (why) throw new FormatError(repo, why);
    const files = await listing().catch(() => undefined);
    if (!files) throw new FormatError(repo, `has no config.json on the Hub (${errorMessage(e)})`);
    return gguf(files);
  }
  const index = await download('model.safetensors.index.json').catch(() => undefined);
  const shards = index ? shardNames(index) : ['model.safetensors'];
  const tokenizerFiles: string[] = [];
  for (const file of ['tokenizer.json', 'tok512.bin']) {
    if (await exists(file)) {
      tokenizerFiles.push(file);
      break;
    }
  }
  for (const file of ['tokenizer_config.json', CHAT_TEMPLATE_FILE])
    if (await exists(file)) tokenizerFiles.push(file);
  const lazy = (file: string): ModelFile => ({ name: file, bytes: () => download(file) });
  return [
    { name: 'config.json', bytes: () => Promise.resolve(config) },
    ...(index
      ? [{ name: 'model.safetensors.index.json', bytes: () => Promise.resolve(index) }]
      : []),
    ...shards.map(lazy),
    ...tokenizerFiles.map(lazy),
  ];
}

/**
 * One file of a Hub repo by its path (an adapter's adapter_config.json…), downloaded through the
 * cache like a model's; a refused download says why in one line.
 */
export async function hubRepoFile(
  repo: string,
  file: string,
  options: HubOptions = {},
): Promise<Uint8Array> {
  if (!REPO_REF.test(repo) || repo.includes(':'))
    throw new FormatError(repo, 'is not a Hub repo id like "owner/name"');
  const { baseUrl = HUB_URL, revision = 'main' } = options;
  // A revision such as refs/pr/1 is one path segment, as huggingface_hub quotes it.
  const url = `${baseUrl.replace(/\/$/, '')}/${repo}/resolve/${encodeURIComponent(revision)}/${file}`;
  return fetchBytes(url, file, options).catch((e: unknown) => {
    const problem =
      e instanceof HubHttpError
        ? `HTTP ${e.status}`
        : e instanceof FormatError
          ? e.problem
          : errorMessage(e);
    throw new FormatError(`${repo}/${file}`, refusal(repo, e) ?? problem);
  });
}

/**
 * The paths of the files at the top of a repo, from the Hub API's tree listing (a JSON array of
 * `{type, path, size}`). Not cached: a listing kept from an earlier visit would hide quants added
 * since.
 */
async function listFiles(url: string): Promise<string[]> {
  const response = await hubFetch(url);
  if (!response.ok)
    throw new HubHttpError(response.status, response.headers.get('x-error-code'), 'the file list');
  const entries: unknown = await response.json();
  if (!Array.isArray(entries)) throw new Error('the file list is not a JSON array');
  return entries.flatMap((e: unknown) => {
    const { type, path } = (e ?? {}) as { type?: unknown; path?: unknown };
    return type === 'file' && typeof path === 'string' ? [path] : [];
  });
}

/** A .gguf name without the extension and the split suffix: `Llama-3.2-1B-Instruct-Q4_K_M`. */
const ggufStem = (file: string) => file.replace(SPLIT_PART, '').replace(/\.gguf$/i, '');

/**
 * Whether the file is of the quant: the tag (any case) is a whole part of the name between `-`
 * and `.` delimiters (`model-Q4_K_M.gguf`, `model.Q4_K_M.gguf`, `model-UD-Q4_K_XL.gguf` for
 * `UD-Q4_K_XL` or `Q4_K_XL`), so that `F16` is not `BF16`'s and `Q4_K` not `Q4_K_M`'s.
 */
const hasQuant = (file: string, quant: string) =>
  // REPO_REF lets no regular-expression syntax into the tag.
  new RegExp(`(^|[-.])${quant}([-.]|$)`, 'i').test(ggufStem(file));

/** The quant tag a .gguf name ends with, as the repo spells it. */
const quantOf = (file: string) => /[^-.]*$/.exec(ggufStem(file))![0];

/**
 * The one .gguf model among a repo's files that `quant` names; without one, Q4_K_M where the
 * repo has it, else the first model file (llama.cpp's and ollama's default). Projector files for
 * vision models (`mmproj-*`) are no models; a model split into parts is refused, as the GGUF
 * loader refuses the parts.
 */
function pickGguf(repo: string, files: readonly string[], quant: string | undefined): string {
  const models = files.filter((f) => /\.gguf$/i.test(f) && !/^mmproj/i.test(f));
  const whole = (candidates: string[]) => candidates.filter((f) => !SPLIT_PART.test(f));
  const quants = (candidates: string[]) => [...new Set(candidates.map(quantOf))].join(', ');
  if (models.length === 0) {
    const listed = files.slice(0, 8).join(', ') + (files.length > 8 ? ', …' : '');
    throw new FormatError(
      repo,
      `has ${quant === undefined ? 'neither config.json nor a .gguf model' : `no .gguf model to take ${quant} from`} on the Hub (its files: ${listed || 'none'})`,
    );
  }
  const tagged = models.filter((f) => hasQuant(f, quant ?? DEFAULT_QUANT));
  if (quant !== undefined && tagged.length === 0)
    throw new FormatError(repo, `has no .gguf model of quant ${quant} (it has ${quants(models)})`);
  const candidates = tagged.length > 0 ? tagged : models;
  const file = whole(candidates)[0] as string | undefined;
  if (file) return file;
  const parts = Number(SPLIT_PART.exec(candidates[0])![2]);
  const others = whole(models);
  throw new FormatError(
    repo,
    `keeps ${ggufStem(candidates[0])} in ${parts} parts (${candidates[0]}…), and the studio loads one file: merge the parts (llama-gguf-split --merge) and drop the merged file on the Model panel${others.length > 0 ? `, or name a quant the repo keeps whole (${quants(others)})` : ''}`,
  );
}

function shardNames(index: Uint8Array): string[] {
  const parsed = JSON.parse(new TextDecoder().decode(index)) as {
    weight_map?: Record<string, string>;
  };
  return [...new Set(Object.values(parsed.weight_map ?? {}))];
}

const PART_BYTES = 8 * 1024 * 1024;

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  return bytes;
}

/**
 * One file, from the cache or the network. While downloading, every `partBytes` received are
 * saved as a part; a later call sends `Range: bytes=<saved>-` with `If-Range: <etag>` and
 * appends, or starts over when the server sends the whole file (no range support, or the file
 * changed).
 */
async function fetchBytes(url: string, file: string, options: HubOptions): Promise<Uint8Array> {
  const { cache, partBytes = PART_BYTES } = options;
  const cached = await cache?.get(url);
  if (cached) return cached;
  const saved = (await cache?.parts(url)) ?? { parts: [], etag: null };
  let parts = saved.parts;
  let offset = parts.reduce((n, p) => n + p.byteLength, 0);
  const headers: Record<string, string> = {};
  if (offset > 0) {
    headers.Range = `bytes=${offset}-`;
    if (saved.etag) headers['If-Range'] = saved.etag;
  }
  const response = await hubFetch(url, { headers });
  if (!response.ok)
    throw new HubHttpError(response.status, response.headers.get('x-error-code'), file);
  if (offset > 0 && response.status !== 206) {
    await cache?.clearParts(url);
    parts = [];
    offset = 0;
  }
  const etag = response.headers.get('etag') ?? saved.etag;
  const total = offset + Number(response.headers.get('content-length') ?? 0);
  const { maxBytes = Infinity } = options;
  const mib = (bytes: number) => `${Number((bytes / 2 ** 20).toPrecision(3))} MiB`;
  const tooLarge = (size?: number) =>
    new FormatError(
      file,
      `is ${size === undefined ? 'larger than' : `${mib(size)}, more than`} the ${mib(maxBytes)} this download may take`,
    );
  if (total > maxBytes) {
    await response.body?.cancel();
    throw tooLarge(total);
  }
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let loaded = offset;
  if (offset > 0) options.onProgress?.({ file, loaded, total });
  if (response.body) {
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      pending.push(value);
      pendingBytes += value.byteLength;
      loaded += value.byteLength;
      if (loaded > maxBytes) {
        await reader.cancel();
        throw tooLarge();
      }
      if (cache && pendingBytes >= partBytes) {
        const part = concat(pending);
        await cache.addPart(url, parts.length, part, etag);
        parts = [...parts, part];
        pending = [];
        pendingBytes = 0;
      }
      options.onProgress?.({ file, loaded, total });
    }
  }
  const bytes = concat([...parts, ...pending]);
  await cache?.put(url, bytes);
  await cache?.clearParts(url);
  return bytes;
}
