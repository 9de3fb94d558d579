import type { FileCache } from '../model/hub.ts';

const CACHE = 'lora-studio-models';
const partUrl = (url: string, index: number) => `${url}#part=${index}`;

/**
 * Hub downloads in the browser's Cache Storage, keyed by URL: a reload does not download again,
 * and an interrupted download keeps its parts (`<url>#part=<i>`) to continue from.
 */
export const cacheStorageFiles: FileCache = {
  async get(url) {
    const hit = await (await caches.open(CACHE)).match(url);
    return hit ? new Uint8Array(await hit.arrayBuffer()) : undefined;
  },
  async put(url, bytes) {
    await (await caches.open(CACHE)).put(url, new Response(new Uint8Array(bytes)));
  },
  async parts(url) {
    const cache = await caches.open(CACHE);
    const parts: Uint8Array[] = [];
    let etag: string | null = null;
    for (let i = 0; ; i++) {
      const hit = await cache.match(partUrl(url, i));
      if (!hit) break;
      etag = hit.headers.get('etag');
      parts.push(new Uint8Array(await hit.arrayBuffer()));
    }
    return { parts, etag };
  },
  async addPart(url, index, bytes, etag) {
    const headers = etag ? { etag } : undefined;
    await (
      await caches.open(CACHE)
    ).put(partUrl(url, index), new Response(new Uint8Array(bytes), { headers }));
  },
  async clearParts(url) {
    const cache = await caches.open(CACHE);
    for (let i = 0; await cache.delete(partUrl(url, i)); i++);
  },
};
