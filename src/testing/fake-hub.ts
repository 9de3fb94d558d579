import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FileCache } from '../model/hub.ts';

/** What the fake's upload API takes besides the repos it starts with. */
export interface FakeHubOptions {
  /** Tokens it accepts (`Authorization: Bearer <token>`) and what each may do. */
  tokens?: Partial<Record<string, 'read' | 'write'>>;
  /**
   * Whether the preupload answer sends a file through LFS. By default, as a repo's default
   * .gitattributes and the Hub's size and binary rules have it: a tracked extension
   * (safetensors, bin, gguf…), 10 MB or more, or a NUL byte in its first 512 bytes.
   */
  lfs?: (path: string, size: number, sample: Uint8Array) => boolean;
  /** LFS objects larger than this go as a multipart transfer in parts of this size. */
  multipartChunk?: number;
}

/** A commit the fake recorded. */
export interface FakeCommit {
  repo: string;
  revision: string;
  summary: string;
  description: string;
  oid: string;
  files: { path: string; upload: 'inline' | 'lfs'; bytes: number }[];
}

/** A request to the upload API (or its storage), and whether it carried the Authorization header. */
export interface FakeUploadCall {
  method: string;
  path: string;
  authorization: boolean;
}

export interface FakeHub {
  baseUrl: string;
  /** Request URLs, with ` range=<Range header>` appended to ranged ones. */
  requests: string[];
  /** Requests other than GET, in order: the upload API's and its storage's. */
  uploads: FakeUploadCall[];
  commits: FakeCommit[];
  /** The LFS storage: objects by SHA-256 (hex). */
  lfsObjects: Map<string, Uint8Array>;
  /** A repo's files at a revision (main by default), as its downloads serve them. */
  repoFiles(repo: string, revision?: string): Map<string, Uint8Array> | undefined;
  /** Whether a repo was created private. */
  isPrivate(repo: string): boolean | undefined;
  /** The next response for `file` sends only its first `bytes` bytes, then drops the connection. */
  interruptNext(file: string, bytes: number): void;
  close: () => Promise<void>;
}

interface Repo {
  private: boolean;
  revisions: Map<string, Map<string, Uint8Array>>;
}

const LFS_EXTENSIONS =
  /\.(safetensors|bin|gguf|pt|pth|ckpt|h5|msgpack|onnx|npy|npz|pkl|pickle|zip|tar|gz|zst|arrow|parquet|model)$/i;
const defaultLfs = (path: string, size: number, sample: Uint8Array) =>
  LFS_EXTENSIONS.test(path) || size >= 10_000_000 || sample.includes(0);
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const REPO = '([^/]+/[^/]+)';

/**
 * A server on 127.0.0.1 in the Hub's layout, from in-memory repos: downloads
 * (`/<org>/<repo>/resolve/<revision>/<file>`, with ETags and `Range` / `If-Range` support as the
 * Hub's CDN has) and the API's file list (`/api/models/<org>/<repo>/tree/<revision>`, every file
 * as a top-level one); and the upload API huggingface_hub uses (src/hub/push.ts): repo creation,
 * preupload, the LFS batch API with a storage that takes basic and multipart transfers and
 * verifies every object's SHA-256, LFS verify, and NDJSON commits, which later downloads serve.
 * The upload API checks the token; a private repo's downloads need one. Counts requests.
 */
export async function startFakeHub(
  repos: Partial<Record<string, Map<string, Uint8Array>>>,
  options: FakeHubOptions = {},
): Promise<FakeHub> {
  const requests: string[] = [];
  const uploads: FakeUploadCall[] = [];
  const commits: FakeCommit[] = [];
  const lfsObjects = new Map<string, Uint8Array>();
  const multipart = new Map<string, Map<number, { bytes: Uint8Array; etag: string }>>();
  const interruptions = new Map<string, number>();
  const stored = new Map<string, Repo>();
  for (const [id, files] of Object.entries(repos))
    if (files) stored.set(id, { private: false, revisions: new Map([['main', files]]) });
  const lfs = options.lfs ?? defaultLfs;
  let baseUrl = '';

  const send = (res: ServerResponse, status: number, body: unknown, code?: string) => {
    res.writeHead(status, {
      'Content-Type': 'application/json',
      ...(code ? { 'X-Error-Code': code } : {}),
    });
    res.end(JSON.stringify(body));
  };
  const tokenOf = (req: IncomingMessage) =>
    /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
  /** The token's right, or undefined (no token, or one the fake does not know). */
  const access = (req: IncomingMessage) => {
    const token = tokenOf(req);
    return token === undefined ? undefined : options.tokens?.[token];
  };
  /** Refuses (401 or 403) a request without a write token; true when it may go on. */
  const mayWrite = (req: IncomingMessage, res: ServerResponse, repo: string) => {
    const right = access(req);
    if (right === 'write') return true;
    if (right === undefined)
      send(res, 401, { error: 'Invalid credentials in Authorization header' });
    else send(res, 403, { error: `You don't have the rights to write to ${repo}` });
    return false;
  };
  /** The repo's files at the revision, or a 404 sent. */
  const revisionOf = (res: ServerResponse, repo: string, revision: string) => {
    const found = stored.get(repo);
    if (!found) {
      send(res, 404, { error: 'Repository not found' }, 'RepoNotFound');
      return undefined;
    }
    const files = found.revisions.get(revision);
    if (!files) send(res, 404, { error: `Invalid rev id: ${revision}` }, 'RevisionNotFound');
    return files;
  };
  /** Whether the repo's downloads may be served: a private one's only with a token. */
  const readable = (req: IncomingMessage, repo: string) =>
    !stored.get(repo)?.private || access(req) !== undefined;

  async function body(req: IncomingMessage): Promise<Uint8Array> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return new Uint8Array(Buffer.concat(chunks));
  }
  const jsonBody = async (req: IncomingMessage): Promise<Record<string, unknown>> =>
    JSON.parse(new TextDecoder().decode(await body(req))) as Record<string, unknown>;

  function lfsActions(repo: string, oid: string, size: number) {
    const verify = { href: `${baseUrl}/${repo}.git/info/lfs/objects/verify` };
    const chunk = options.multipartChunk;
    if (chunk === undefined || size <= chunk)
      return { upload: { href: `${baseUrl}/lfs-storage/${oid}` }, verify };
    const header: Record<string, string> = { chunk_size: String(chunk) };
    for (let part = 1; part <= Math.ceil(size / chunk); part++)
      header[String(part).padStart(5, '0')] = `${baseUrl}/lfs-storage/${oid}/part/${part}`;
    return { upload: { href: `${baseUrl}/api/complete_multipart?oid=${oid}`, header }, verify };
  }

  async function uploadApi(req: IncomingMessage, res: ServerResponse, path: string) {
    const method = req.method ?? 'GET';
    let m: RegExpExecArray | null;
    if (method === 'POST' && path === '/api/repos/create') {
      const right = access(req);
      const payload = await jsonBody(req);
      const id = `${String(payload.organization)}/${String(payload.name)}`;
      if (right !== 'write') {
        if (right === undefined)
          send(res, 401, { error: 'Invalid credentials in Authorization header' });
        else
          send(res, 403, {
            error: `You don't have the rights to create a model under the namespace "${String(payload.organization)}"`,
          });
        return;
      }
      if (payload.type !== undefined && payload.type !== 'model') {
        send(res, 400, { error: 'this fake makes model repos only' });
        return;
      }
      if (stored.has(id)) {
        send(res, 409, {
          error: 'You already created this model repo',
          url: `${baseUrl}/${id}`,
        });
        return;
      }
      stored.set(id, {
        private: payload.private === true,
        revisions: new Map([['main', new Map<string, Uint8Array>()]]),
      });
      send(res, 200, { url: `${baseUrl}/${id}`, name: id, id });
      return;
    }
    if (
      (m = new RegExp(`^/api/models/${REPO}/preupload/([^/]+)$`).exec(path)) &&
      method === 'POST'
    ) {
      const [, repo, revision] = m;
      if (!mayWrite(req, res, repo) || !revisionOf(res, repo, decodeURIComponent(revision))) return;
      const payload = (await jsonBody(req)) as {
        files: { path: string; size: number; sample: string }[];
      };
      send(res, 200, {
        files: payload.files.map((f) => ({
          path: f.path,
          uploadMode: lfs(f.path, f.size, new Uint8Array(Buffer.from(f.sample, 'base64')))
            ? 'lfs'
            : 'regular',
          shouldIgnore: false,
        })),
      });
      return;
    }
    if (
      (m = new RegExp(`^/${REPO}\\.git/info/lfs/objects/batch$`).exec(path)) &&
      method === 'POST'
    ) {
      const [, repo] = m;
      if (!/application\/vnd\.git-lfs\+json/.test(req.headers.accept ?? '')) {
        send(res, 406, { message: 'Accept must be application/vnd.git-lfs+json' });
        return;
      }
      if (!mayWrite(req, res, repo)) return;
      if (!stored.has(repo)) {
        send(res, 404, { message: 'Repository not found' });
        return;
      }
      const payload = (await jsonBody(req)) as {
        operation: string;
        objects: { oid: string; size: number }[];
      };
      if (payload.operation !== 'upload') {
        send(res, 422, { message: 'this fake takes uploads only' });
        return;
      }
      send(res, 200, {
        transfer: options.multipartChunk === undefined ? 'basic' : 'multipart',
        objects: payload.objects.map(({ oid, size }) =>
          !/^[0-9a-f]{64}$/.test(oid)
            ? { oid, size, error: { code: 422, message: 'Invalid oid' } }
            : lfsObjects.has(oid)
              ? { oid, size, authenticated: true }
              : { oid, size, authenticated: true, actions: lfsActions(repo, oid, size) },
        ),
      });
      return;
    }
    if ((m = /^\/lfs-storage\/([0-9a-f]{64})$/.exec(path)) && method === 'PUT') {
      const bytes = await body(req);
      if (sha256(bytes) !== m[1]) {
        send(res, 400, { message: 'content does not match its oid' });
        return;
      }
      lfsObjects.set(m[1], bytes);
      res.writeHead(200, { ETag: `"${m[1].slice(0, 32)}"` }).end();
      return;
    }
    if ((m = /^\/lfs-storage\/([0-9a-f]{64})\/part\/(\d+)$/.exec(path)) && method === 'PUT') {
      const bytes = await body(req);
      const etag = `"${sha256(bytes).slice(0, 32)}"`;
      const parts = multipart.get(m[1]) ?? new Map<number, { bytes: Uint8Array; etag: string }>();
      parts.set(Number(m[2]), { bytes, etag });
      multipart.set(m[1], parts);
      res.writeHead(200, { ETag: etag }).end();
      return;
    }
    if (path === '/api/complete_multipart' && method === 'POST') {
      const payload = (await jsonBody(req)) as {
        oid: string;
        parts: { partNumber: number; etag: string }[];
      };
      const parts = multipart.get(payload.oid);
      const pieces = payload.parts.map((p) => {
        const part = parts?.get(p.partNumber);
        return part?.etag === p.etag ? part.bytes : undefined;
      });
      if (!parts || pieces.some((p) => !p) || pieces.length !== parts.size) {
        send(res, 400, { message: 'the parts do not match the uploaded ones' });
        return;
      }
      const bytes = new Uint8Array(Buffer.concat(pieces as Uint8Array[]));
      if (sha256(bytes) !== payload.oid) {
        send(res, 400, { message: 'content does not match its oid' });
        return;
      }
      multipart.delete(payload.oid);
      lfsObjects.set(payload.oid, bytes);
      send(res, 200, {});
      return;
    }
    if (
      (m = new RegExp(`^/${REPO}\\.git/info/lfs/objects/verify$`).exec(path)) &&
      method === 'POST'
    ) {
      if (!mayWrite(req, res, m[1])) return;
      const { oid, size } = (await jsonBody(req)) as { oid: string; size: number };
      const object = lfsObjects.get(oid);
      if (object?.length !== size) {
        send(res, 404, { message: 'Object not found' });
        return;
      }
      send(res, 200, {});
      return;
    }
    if ((m = new RegExp(`^/api/models/${REPO}/commit/([^/]+)$`).exec(path)) && method === 'POST') {
      const [, repo, rev] = m;
      const revision = decodeURIComponent(rev);
      if (!mayWrite(req, res, repo)) return;
      const current = revisionOf(res, repo, revision);
      if (!current) return;
      if (req.headers['content-type'] !== 'application/x-ndjson') {
        send(res, 400, { error: 'a commit is application/x-ndjson' });
        return;
      }
      const lines = new TextDecoder()
        .decode(await body(req))
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as { key: string; value: Record<string, unknown> });
      const [header, ...operations] = lines;
      if (
        lines.length === 0 ||
        header.key !== 'header' ||
        typeof header.value.summary !== 'string'
      ) {
        send(res, 400, { error: 'the first line must be the header with a summary' });
        return;
      }
      const next = new Map(current);
      const files: FakeCommit['files'] = [];
      for (const { key, value } of operations) {
        const path = String(value.path);
        if (key === 'file') {
          if (value.encoding !== 'base64') {
            send(res, 400, { error: `${path}: this fake takes base64 files` });
            return;
          }
          const bytes = new Uint8Array(Buffer.from(String(value.content), 'base64'));
          next.set(path, bytes);
          files.push({ path, upload: 'inline', bytes: bytes.length });
        } else if (key === 'lfsFile') {
          const bytes = lfsObjects.get(String(value.oid));
          if (value.algo !== 'sha256' || !bytes || bytes.length !== value.size) {
            send(res, 422, { error: `${path}: no such LFS object was uploaded` });
            return;
          }
          next.set(path, bytes);
          files.push({ path, upload: 'lfs', bytes: bytes.length });
        } else {
          send(res, 400, { error: `unknown operation ${key}` });
          return;
        }
      }
      const oid = createHash('sha1')
        .update(JSON.stringify([repo, revision, commits.length, header.value, files]))
        .digest('hex');
      // The Hub serves a repo at any of its commits as at a branch.
      stored.get(repo)!.revisions.set(revision, next).set(oid, next);
      const description =
        typeof header.value.description === 'string' ? header.value.description : '';
      commits.push({ repo, revision, summary: header.value.summary, description, oid, files });
      send(res, 200, {
        success: true,
        commitOid: oid,
        commitUrl: `${baseUrl}/${repo}/commit/${oid}`,
        hookOutput: '',
      });
      return;
    }
    send(res, 404, { error: `the fake Hub has no ${method} ${path}` });
  }

  const server: Server = createServer((req, res) => {
    const range = req.headers.range;
    requests.push(`${req.url ?? ''}${range ? ` range=${range}` : ''}`);
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader(
      'Access-Control-Expose-Headers',
      'ETag, Content-Range, X-Error-Code, X-Error-Message',
    );
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS') {
      res.writeHead(204, {
        'Access-Control-Allow-Methods': 'GET, POST, PUT, OPTIONS',
        'Access-Control-Allow-Headers': 'Authorization, Content-Type, Accept, Range, If-Range',
      });
      res.end();
      return;
    }
    if (method !== 'GET' && method !== 'HEAD') {
      uploads.push({ method, path, authorization: req.headers.authorization !== undefined });
      uploadApi(req, res, path).catch((e: unknown) => {
        if (!res.headersSent) send(res, 400, { error: `bad request (${String(e)})` });
      });
      return;
    }
    const tree = new RegExp(`^/api/models/${REPO}/tree/([^/]+)$`).exec(path);
    if (tree) {
      const repo = tree[1];
      const files = readable(req, repo)
        ? stored.get(repo)?.revisions.get(decodeURIComponent(tree[2]))
        : undefined;
      if (!files) {
        send(res, 404, { error: 'Repository not found' }, 'RepoNotFound');
        return;
      }
      const list = [...files].map(([path, bytes]) => ({ type: 'file', path, size: bytes.length }));
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(list));
      return;
    }
    const info = new RegExp(`^/api/models/${REPO}$`).exec(path);
    if (info) {
      if (!stored.has(info[1]) || !readable(req, info[1])) {
        send(res, 404, { error: 'Repository not found' }, 'RepoNotFound');
        return;
      }
      send(res, 200, { id: info[1], private: stored.get(info[1])!.private });
      return;
    }
    const match = new RegExp(`^/${REPO}/resolve/([^/]+)/(.+)$`).exec(path);
    if (match && !readable(req, match[1])) {
      send(res, 401, { error: 'Repository not found' }, 'RepoNotFound');
      return;
    }
    const bytes = match
      ? stored.get(match[1])?.revisions.get(decodeURIComponent(match[2]))?.get(match[3])
      : undefined;
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
    const cut = interruptions.get(match[3]);
    if (cut === undefined) {
      res.end(body);
      return;
    }
    interruptions.delete(match[3]);
    res.write(body.subarray(0, cut), () => res.destroy());
  });
  await new Promise<void>((resolve) => {
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  baseUrl = `http://127.0.0.1:${port}`;
  return {
    baseUrl,
    requests,
    uploads,
    commits,
    lfsObjects,
    repoFiles: (repo, revision = 'main') => stored.get(repo)?.revisions.get(revision),
    isPrivate: (repo) => stored.get(repo)?.private,
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
