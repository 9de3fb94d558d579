import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A static server on 127.0.0.1 that answers in the Hub's URL layout
 * (`/<org>/<repo>/resolve/main/<file>`) from in-memory repos, and counts requests.
 */
export async function startFakeHub(
  repos: Partial<Record<string, Map<string, Uint8Array>>>,
): Promise<{
  baseUrl: string;
  requests: string[];
  close: () => Promise<void>;
}> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const match = /^\/([^/]+\/[^/]+)\/resolve\/main\/(.+)$/.exec(req.url ?? '');
    const bytes = match ? repos[match[1]]?.get(match[2]) : undefined;
    res.setHeader('Access-Control-Allow-Origin', '*');
    if (!bytes) {
      res.writeHead(404).end('Entry not found');
      return;
    }
    res.writeHead(200, {
      'Content-Length': bytes.byteLength,
      'Content-Type': 'application/octet-stream',
    });
    res.end(bytes);
  });
  await new Promise<void>((resolve) => {
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.close(() => {
          resolve();
        });
      }),
  };
}
