import type { FileCache } from '../model/hub.ts';

const CACHE = 'lora-studio-models';

/** Hub downloads in the browser's Cache Storage, keyed by URL: a reload does not download again. */
export const cacheStorageFiles: FileCache = {
  async get(url) {
    const hit = await (await caches.open(CACHE)).match(url);
    return hit ? new Uint8Array(await hit.arrayBuffer()) : undefined;
  },
  async put(url, bytes) {
    await (await caches.open(CACHE)).put(url, new Response(new Uint8Array(bytes)));
  },
};
