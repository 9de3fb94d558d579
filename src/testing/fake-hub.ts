import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FileCache } from '../model/hub.ts';

export interface FakeHub {
  baseUrl: string;
  /** Request URLs, with ` range=<Range header>` appended to ranged ones. */
  requests: string[];
  /** The next response for `file` sends only its first `bytes` bytes, then drops the connection. */
  interruptNext(file: string, bytes: number): void;
  close: () => Promise<void>;
}

/**
 * A static server on 127.0.0.1 that answers in the Hub's URL layout
 * (`/<org>/<repo>/resolve/main/<file>`) from in-memory repos, with ETags and `Range` /
 * `If-Range` support as the Hub's CDN has, and the API's file list
 * (`/api/models/<org>/<repo>/tree/main`, every file as a top-level one), and counts requests.
 */
export async function startFakeHub(
  repos: Partial<Record<string, Map<string, Uint8Array>>>,
): Promise<FakeHub> {
  const requests: string[] = [];
  const interruptions = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const range = req.headers.range;
    requests.push(`${req.url ?? ''}${range ? ` range=${range}` : ''}`);
    res.setHeader('Access-Control-Allow-Origin', '*');
    const tree = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/main$/.exec(req.url ?? '');
    if (tree) {
      const files = repos[tree[1]];
      if (!files) {
        res.writeHead(404, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: 'Repository not found' }));
        return;
      }
      const list = [...files].map(([path, bytes]) => ({ type: 'file', path, size: bytes.length }));
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(list));
      return;
    }
    const match = /^\/([^/]+\/[^/]+)\/resolve\/main\/(.+)$/.exec(req.url ?? '');
    const bytes = match ? repos[match[1]]?.get(match[2]) : undefined;
    if (!match || !bytes) {
      res.writeHead(404).end('Entry not found');
      return;
    }
    // Any stable function of the content will do as an entity tag here.
    const etag = `"${bytes.byteLength}-${bytes.reduce((h, b) => (h * 31 + b) >>> 0, 7)}"`;
    const start = Number(/^bytes=(\d+)-$/.exec(range ?? '')?.[1] ?? 0);
    const partial = start > 0 && (req.headers['if-range'] ?? etag) === etag;
    const body = partial ? bytes.subarray(start) : bytes;
    res.writeHead(partial ? 206 : 200, {
      'Content-Length': body.byteLength,
      'Content-Type': 'application/octet-stream',
      ETag: etag,
      ...(partial
        ? { 'Content-Range': `bytes ${start}-${bytes.byteLength - 1}/${bytes.byteLength}` }
        : {}),
    });
    const cut = interruptions.get(match[2]);
    if (cut === undefined) {
      res.end(body);
      return;
    }
    interruptions.delete(match[2]);
    res.write(body.subarray(0, cut), () => res.destroy());
  });
  await new Promise<void>((resolve) => {
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    interruptNext: (file, bytes) => interruptions.set(file, bytes),
    close: () =>
      new Promise((resolve) => {
        server.close(() => {
          resolve();
        });
        // A browser may hold keep-alive connections open; close() would wait for them.
        server.closeAllConnections();
      }),
  };
}

/** A FileCache in memory, as the browser's Cache Storage one behaves. */
export function memoryFileCache(): FileCache & { stored: Map<string, Uint8Array> } {
  const stored = new Map<string, Uint8Array>();
  const parts = new Map<string, { parts: Uint8Array[]; etag: string | null }>();
  return {
    stored,
    get: (url) => Promise.resolve(stored.get(url)),
    put: (url, bytes) => {
      stored.set(url, bytes);
      return Promise.resolve();
    },
    // Copies, as Cache Storage hands out: the caller's list must not change under it.
    parts: (url) => {
      const saved = parts.get(url);
      return Promise.resolve({ parts: [...(saved?.parts ?? [])], etag: saved?.etag ?? null });
    },
    addPart: (url, index, bytes, etag) => {
      const saved = parts.get(url) ?? { parts: [], etag };
      saved.parts[index] = bytes;
      parts.set(url, saved);
      return Promise.resolve();
    },
    clearParts: (url) => {
      parts.delete(url);
      return Promise.resolve();
    },
  };
}
