// Model files from the Hugging Face Hub by repo id ("HuggingFaceTB/SmolLM2-135M"), downloaded
// with progress through a cache. The base URL is a parameter so tests serve fixtures in the Hub's
// URL layout (`<base>/<repo>/resolve/<revision>/<file>`) from 127.0.0.1.
import { FormatError } from './errors.ts';
import type { ModelFile } from './hf-folder.ts';

export interface DownloadProgress {
  file: string;
  loaded: number;
  /** From Content-Length; 0 when the server does not say. */
  total: number;
}

/** Downloaded files by URL (Cache Storage in the browser), so a reload need not download again. */
export interface FileCache {
  get(url: string): Promise<Uint8Array | undefined>;
  put(url: string, bytes: Uint8Array): Promise<void>;
}

export interface HubOptions {
  baseUrl?: string;
  revision?: string;
  cache?: FileCache;
  onProgress?: (progress: DownloadProgress) => void;
}

export const HUB_URL = 'https://huggingface.co';
const REPO_ID = /^[\w.-]+\/[\w.-]+$/;

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
      `has no config.json on the Hub (${e instanceof Error ? e.message : String(e)})`,
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
  if (await exists('tokenizer_config.json')) tokenizerFiles.push('tokenizer_config.json');
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

async function fetchBytes(url: string, file: string, options: HubOptions): Promise<Uint8Array> {
  const cached = await options.cache?.get(url);
  if (cached) return cached;
  const response = await fetch(url);
  if (!response.ok) throw new Error(`HTTP ${response.status} for ${file}`);
  const total = Number(response.headers.get('content-length') ?? 0);
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  if (response.body) {
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      loaded += value.byteLength;
      options.onProgress?.({ file, loaded, total });
    }
  }
  const bytes = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  await options.cache?.put(url, bytes);
  return bytes;
}
