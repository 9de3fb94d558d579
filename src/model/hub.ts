// Model files from the Hugging Face Hub by repo id ("HuggingFaceTB/SmolLM2-135M"), downloaded
// with progress through a cache. The base URL is a parameter so tests serve fixtures in the Hub's
// URL layout (`<base>/<repo>/resolve/<revision>/<file>`) from 127.0.0.1.
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
}

export const HUB_URL = 'https://huggingface.co';
const REPO_ID = /^[\w.-]+\/[\w.-]+$/;

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

/** The files of a Hub model repository that the studio needs, downloaded on demand. */
export async function hubModelFiles(repo: string, options: HubOptions = {}): Promise<ModelFile[]> {
  if (!REPO_ID.test(repo))
    throw new FormatError(repo, 'is not a Hub repo id like "HuggingFaceTB/SmolLM2-135M"');
  const { baseUrl = HUB_URL, revision = 'main' } = options;
  const url = (file: string) => `${baseUrl.replace(/\/$/, '')}/${repo}/resolve/${revision}/${file}`;
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

  const config = await download('config.json').catch((e: unknown) => {
    throw new FormatError(
      repo,
      refusal(repo, e) ?? `has no config.json on the Hub (${errorMessage(e)})`,
    );
  });
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
  const response = await fetch(url, { headers });
  if (!response.ok)
    throw new HubHttpError(response.status, response.headers.get('x-error-code'), file);
  if (offset > 0 && response.status !== 206) {
    await cache?.clearParts(url);
    parts = [];
    offset = 0;
  }
  const etag = response.headers.get('etag') ?? saved.etag;
  const total = offset + Number(response.headers.get('content-length') ?? 0);
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
