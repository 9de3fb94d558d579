// Files pushed to a Hugging Face Hub model repo in one commit, through the Hub's HTTP API as
// huggingface_hub (`HfApi.create_repo`, `create_commit`) and @huggingface/hub (`commit`) speak it:
//
// 1. POST {endpoint}/api/repos/create {type: "model", name, organization, private}: 200 made it,
//    409 it exists. A 401/403 may still leave a repo the token can write to (a fine-grained token
//    without the right to create repos): GET /api/models/{repo} says whether it exists.
// 2. POST {endpoint}/api/models/{repo}/preupload/{revision} {files: [{path, size, sample}]}
//    (sample: the first 512 bytes in base64): the Hub answers each file's uploadMode, "regular"
//    (sent inline in the commit) or "lfs" (its .gitattributes tracks it, or it is large or
//    binary). An empty file is always regular (storage refuses empty objects).
// 3. For the LFS files, POST {endpoint}/{repo}.git/info/lfs/objects/batch (Git LFS's batch API,
//    application/vnd.git-lfs+json) {operation: "upload", transfers: ["basic", "multipart"],
//    hash_algo: "sha256", ref: {name: revision}, objects: [{oid: sha256 hex, size}]}. Per object:
//    no `actions` (the Hub has it already), an `error`, or actions.upload: a presigned storage URL
//    to PUT the bytes to (basic), or, with header.chunk_size, one URL per part in
//    header["00001"]… and `href` the completion URL to POST {oid, parts: [{partNumber, etag}]}
//    to (multipart). actions.verify, when there, is POSTed {oid, size}.
// 4. POST {endpoint}/api/models/{repo}/commit/{revision}, application/x-ndjson: a "header" line
//    {summary, description}, then a "file" line {path, content (base64), encoding: "base64"} per
//    regular file and an "lfsFile" line {path, algo: "sha256", oid, size} per LFS file. The Hub
//    answers {commitOid, commitUrl}.
//
// The token goes in an Authorization header to the endpoint's own origin only, never to the
// storage URLs (presigned: they need none), and appears in no message: it lives in the caller's
// memory for the duration of the call. Every request has a timeout. Refusals are HubPushErrors
// with one line saying what to do. Runs in the browser and in Node (fetch, Web Crypto), and
// imports no engine code, so that the page's main thread can run it.

import { sha256Hex } from '../hash.ts';
import { isHubRepoId } from './repo-id.ts';

/** The Hub. Tests and mirrors give another endpoint. */
export const HUB_ENDPOINT = 'https://huggingface.co';

/** One file of the commit, by its path in the repo. */
export interface PushFile {
  path: string;
  bytes: Uint8Array;
}

export interface PushProgress {
  /** repo: creating it; preupload: asking how to send each file; lfs: uploading large files; commit. */
  phase: 'repo' | 'preupload' | 'lfs' | 'commit';
  /** The large file being uploaded (phase lfs). */
  file?: string;
  /** Bytes of the large files uploaded so far, of `total` (phase lfs). */
  done: number;
  total: number;
}

export interface PushOptions {
  /** `user/name` or `organization/name`. */
  repo: string;
  /** A User Access Token with write access: kept only for this call, never logged. */
  token: string;
  /** Default https://huggingface.co. */
  endpoint?: string;
  /** Branch to commit to; default main (a new repo has only main). */
  revision?: string;
  /** Whether a repo this call creates is private (an existing repo keeps its visibility). */
  private?: boolean;
  /** The commit's summary line. */
  message?: string;
  description?: string;
  /** Each API request's limit; an upload gets this plus the time of its bytes at 50 kB/s. */
  timeoutMs?: number;
  onProgress?: (progress: PushProgress) => void;
  signal?: AbortSignal;
  /** The fetch to use (tests). */
  fetch?: typeof fetch;
}

export interface PushedFile {
  path: string;
  bytes: number;
  /** inline: base64 in the commit; lfs: uploaded to the Hub's large-file storage first. */
  upload: 'inline' | 'lfs';
  /** The LFS object id (SHA-256, hex) of an LFS file. */
  sha256?: string;
}

export interface PushResult {
  repo: string;
  /** The repo's page. */
  url: string;
  revision: string;
  commit: { oid: string; url: string };
  /** Whether this push created the repo. */
  created: boolean;
  files: PushedFile[];
}

/** A push refused or failed, in one line that says what to do; `status` is the HTTP status. */
export class HubPushError extends Error {
  override name = 'HubPushError';
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

const DEFAULT_TIMEOUT_MS = 60_000;
/** The slowest upload rate a push waits for before its timeout ends it (bytes per second). */
const MIN_UPLOAD_RATE = 50_000;
const LFS_HEADERS = {
  Accept: 'application/vnd.git-lfs+json',
  'Content-Type': 'application/vnd.git-lfs+json',
};
const TOKEN_CHARS = /^[\x21-\x7e]+$/;
const seconds = (ms: number) => String(Number((ms / 1000).toPrecision(2)));

/** `namespace/name` checked as the Hub checks repo ids; refuses anything else in one line. */
export function parseRepoId(repo: string): { namespace: string; name: string } {
  const parts = repo.split('/');
  if (!isHubRepoId(repo))
    throw new HubPushError(
      `"${repo}" is not a Hub repo id: give USER/NAME (letters, digits, "-", "_", "."; no "--" or "..")`,
    );
  return { namespace: parts[0], name: parts[1] };
}

/** Bytes as base64, in slices (a whole file through one String.fromCharCode would overflow). */
export function base64(bytes: Uint8Array): string {
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000)
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

/** The server's reason, from the Hub's X-Error-Message header or JSON {error} / {message}. */
async function reason(response: Response): Promise<string> {
  const header = response.headers.get('x-error-message');
  let text = header ?? '';
  if (!text) {
    const body = await response.text().catch(() => '');
    try {
      const parsed = JSON.parse(body) as { error?: unknown; message?: unknown };
      const said = [parsed.error, parsed.message].find((v) => typeof v === 'string');
      text = typeof said === 'string' ? said : body;
    } catch {
      text = body;
    }
  }
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/**
 * Pushes `files` to the Hub model repo `options.repo` in one commit, creating the repo when it
 * does not exist. Resolves with the commit; rejects with a HubPushError.
 */
export async function pushToHub(
  files: readonly PushFile[],
  options: PushOptions,
): Promise<PushResult> {
  const token = options.token.trim();
  if (!token)
    throw new HubPushError(
      'no Hub token: give a User Access Token with write access (https://huggingface.co/settings/tokens)',
    );
  if (!TOKEN_CHARS.test(token))
    throw new HubPushError('the Hub token holds spaces or characters a token cannot have');
  const { namespace, name } = parseRepoId(options.repo);
  const repo = `${namespace}/${name}`;
  if (files.length === 0) throw new HubPushError('nothing to push');
  const paths = new Set<string>();
  for (const f of files) {
    if (!f.path || f.path.startsWith('/') || f.path.split('/').some((p) => p === '..' || !p))
      throw new HubPushError(`"${f.path}" is not a path inside a repo`);
    if (paths.has(f.path)) throw new HubPushError(`${f.path} is given twice`);
    paths.add(f.path);
  }

  const endpoint = (options.endpoint ?? HUB_ENDPOINT).replace(/\/+$/, '');
  let origin: string;
  try {
    origin = new URL(endpoint).origin;
  } catch {
    throw new HubPushError(`the endpoint "${endpoint}" is not a URL`);
  }
  const revision = options.revision ?? 'main';
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const doFetch = options.fetch ?? fetch;
  const progress = (p: PushProgress) => options.onProgress?.(p);
  /** The token, scrubbed from any text that reaches a message (a short one would mangle it). */
  const clean = (text: string) => (token.length >= 8 ? text.split(token).join('***') : text);
  const host = (url: string) => {
    try {
      return new URL(url).host;
    } catch {
      return url;
    }
  };
  // A Hub behind another endpoint (a mirror, the tests' fake) may still name huggingface.co in
  // the URLs it hands out, as huggingface_hub's fix_hf_endpoint_in_url assumes.
  const onEndpoint = (url: string) =>
    endpoint !== HUB_ENDPOINT && url.startsWith(`${HUB_ENDPOINT}/`)
      ? endpoint + url.slice(HUB_ENDPOINT.length)
      : url;

  /** One request with a time limit; the token only to the endpoint's origin. */
  async function request(
    what: string,
    url: string,
    init: RequestInit & { authorized?: boolean },
    limitMs = timeoutMs,
  ): Promise<Response> {
    const { authorized, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (authorized && new URL(url).origin === origin)
      headers.set('Authorization', `Bearer ${token}`);
    const signals = [AbortSignal.timeout(Math.ceil(limitMs))];
    if (options.signal) signals.push(options.signal);
    try {
      return await doFetch(url, { ...rest, headers, signal: AbortSignal.any(signals) });
    } catch (e) {
      throw transportError(what, url, e, limitMs);
    }
  }

  function transportError(what: string, url: string, e: unknown, limitMs: number): HubPushError {
    if (options.signal?.aborted) return new HubPushError(`${what}: cancelled`);
    const err = e as {
      name?: string;
      message?: string;
      cause?: { code?: string; message?: string };
    };
    if (err.name === 'TimeoutError' || err.name === 'AbortError')
      return new HubPushError(`${what}: ${host(url)} did not answer within ${seconds(limitMs)} s`);
    const cause = err.cause?.code ?? err.cause?.message ?? err.message ?? String(e);
    return new HubPushError(clean(`${what}: could not reach ${host(url)} (${cause})`));
  }

  /** Reads a JSON answer within the request's time (the body may stall after the headers). */
  async function json<T>(what: string, url: string, response: Response): Promise<T> {
    try {
      return (await response.json()) as T;
    } catch (e) {
      if ((e as { name?: string }).name === 'SyntaxError')
        throw new HubPushError(`${what}: ${host(url)} answered something other than JSON`);
      throw transportError(what, url, e, timeoutMs);
    }
  }

  async function httpError(what: string, response: Response): Promise<HubPushError> {
    const why = clean(await reason(response));
    const status = `HTTP ${response.status}${why ? `: ${why}` : ''}`;
    if (response.status === 401 || response.status === 403)
      return new HubPushError(
        `${what}: the Hub refused the token (${status}): it is not valid, or lacks write access to ${repo}; use a token with the write role (https://huggingface.co/settings/tokens)`,
        response.status,
      );
    if (response.status === 404)
      return new HubPushError(
        `${what}: not found (${status}); check that ${repo} exists and has the branch "${revision}"`,
        404,
      );
    return new HubPushError(`${what}: ${status}`, response.status);
  }

  async function storageError(path: string, response: Response): Promise<HubPushError> {
    const why = clean(await reason(response));
    return new HubPushError(
      `uploading ${path} to the Hub's storage failed: HTTP ${response.status}${why ? `: ${why}` : ''}`,
      response.status,
    );
  }

  /** The multipart transfer: each part PUT to its URL, then the parts' ETags to complete it. */
  async function uploadParts(
    f: PushFile,
    oid: string,
    upload: LfsAction,
    chunkSize: number,
    limitMs: number,
    onPart: (bytes: number) => void,
  ): Promise<void> {
    const header = upload.header ?? {};
    const partUrls = Object.keys(header)
      .filter((k) => /^\d+$/.test(k))
      .sort((a, b) => Number(a) - Number(b))
      .map((k) => header[k]);
    if (
      !(Number.isInteger(chunkSize) && chunkSize > 0) ||
      partUrls.length !== Math.ceil(f.bytes.length / chunkSize)
    )
      throw new HubPushError(
        `the Hub's multipart upload of ${f.path} does not add up (chunk size ${header.chunk_size}, ${partUrls.length} parts)`,
      );
    const parts: { partNumber: number; etag: string }[] = [];
    for (const [i, partUrl] of partUrls.entries()) {
      const slice = f.bytes.subarray(i * chunkSize, (i + 1) * chunkSize);
      const what = `uploading part ${i + 1} of ${partUrls.length} of ${f.path}`;
      const put = await request(
        what,
        partUrl,
        { method: 'PUT', body: slice as Uint8Array<ArrayBuffer> },
        timeoutMs + (1000 * slice.length) / MIN_UPLOAD_RATE,
      );
      if (!put.ok) throw await storageError(f.path, put);
      const etag = put.headers.get('etag');
      await put.body?.cancel();
      if (!etag) throw new HubPushError(`${what}: the storage sent no ETag`);
      parts.push({ partNumber: i + 1, etag });
      onPart(slice.length);
    }
    const what = `completing the upload of ${f.path}`;
    const completion = await request(
      what,
      onEndpoint(upload.href),
      { method: 'POST', headers: LFS_HEADERS, body: JSON.stringify({ oid, parts }) },
      limitMs,
    );
    if (!completion.ok) throw await httpError(what, completion);
    await completion.body?.cancel();
  }

  const rev = encodeURIComponent(revision);
  const api = `${endpoint}/api/models/${repo}`;

  // 1. The repo.
  progress({ phase: 'repo', done: 0, total: 0 });
  let created = false;
  let url = `${endpoint}/${repo}`;
  {
    const what = `creating ${repo}`;
    const createUrl = `${endpoint}/api/repos/create`;
    const response = await request(what, createUrl, {
      method: 'POST',
      authorized: true,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        type: 'model',
        name,
        organization: namespace,
        private: options.private === true,
      }),
    });
    if (response.ok) {
      created = true;
      const body = await json<{ url?: unknown }>(what, createUrl, response);
      if (typeof body.url === 'string' && /^https?:\/\//.test(body.url)) url = body.url;
    } else if (response.status === 401 || response.status === 403) {
      // The token may write to an existing repo without the right to create one.
      const refusal = await httpError(what, response);
      const info = await request(`looking up ${repo}`, api, { authorized: true });
      if (!info.ok) throw refusal;
      await info.body?.cancel();
    } else if (response.status !== 409) {
      throw await httpError(what, response);
    } else {
      await response.body?.cancel();
    }
  }

  // 2. How each file goes: inline or through LFS.
  progress({ phase: 'preupload', done: 0, total: 0 });
  const modes = new Map<string, 'regular' | 'lfs'>();
  const PREUPLOAD_CHUNK = 256;
  for (let i = 0; i < files.length; i += PREUPLOAD_CHUNK) {
    const chunk = files.slice(i, i + PREUPLOAD_CHUNK);
    const what = 'asking the Hub how to upload the files';
    const preuploadUrl = `${api}/preupload/${rev}`;
    const response = await request(what, preuploadUrl, {
      method: 'POST',
      authorized: true,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        files: chunk.map((f) => ({
          path: f.path,
          size: f.bytes.length,
          sample: base64(f.bytes.subarray(0, 512)),
        })),
      }),
    });
    if (!response.ok) throw await httpError(what, response);
    const body = await json<{ files?: unknown }>(what, preuploadUrl, response);
    if (!Array.isArray(body.files))
      throw new HubPushError(`${what}: the Hub's answer lists no files`);
    for (const entry of body.files as { path?: unknown; uploadMode?: unknown }[]) {
      if (
        typeof entry.path === 'string' &&
        (entry.uploadMode === 'lfs' || entry.uploadMode === 'regular')
      )
        modes.set(entry.path, entry.uploadMode);
    }
  }
  const pushed: PushedFile[] = [];
  for (const f of files) {
    const mode = modes.get(f.path);
    if (!mode) throw new HubPushError(`the Hub said nothing of how to upload ${f.path}`);
    pushed.push({
      path: f.path,
      bytes: f.bytes.length,
      upload: mode === 'lfs' && f.bytes.length > 0 ? 'lfs' : 'inline',
    });
  }

  // 3. The large files, to the Hub's storage.
  const lfs = files.filter((_, i) => pushed[i].upload === 'lfs');
  if (lfs.length > 0) {
    const total = lfs.reduce((n, f) => n + f.bytes.length, 0);
    let done = 0;
    progress({ phase: 'lfs', done, total });
    const oids = await Promise.all(lfs.map((f) => sha256Hex(f.bytes)));
    for (const [i, f] of lfs.entries()) pushed.find((p) => p.path === f.path)!.sha256 = oids[i];
    const what = 'asking the Hub where to upload the large files';
    const batchUrl = `${endpoint}/${repo}.git/info/lfs/objects/batch`;
    const response = await request(what, batchUrl, {
      method: 'POST',
      authorized: true,
      headers: LFS_HEADERS,
      body: JSON.stringify({
        operation: 'upload',
        transfers: ['basic', 'multipart'],
        hash_algo: 'sha256',
        ref: { name: revision },
        objects: lfs.map((f, i) => ({ oid: oids[i], size: f.bytes.length })),
      }),
    });
    if (!response.ok) throw await httpError(what, response);
    const batch = await json<{ objects?: unknown }>(what, batchUrl, response);
    if (!Array.isArray(batch.objects))
      throw new HubPushError(`${what}: the Hub's answer lists no objects`);
    const objects = batch.objects as LfsObject[];
    for (const [i, f] of lfs.entries()) {
      const object = objects.find((o) => o.oid === oids[i]);
      if (!object) throw new HubPushError(`${what}: the Hub's answer leaves out ${f.path}`);
      if (object.error)
        throw new HubPushError(
          clean(
            `the Hub will not store ${f.path}: ${object.error.message ?? 'error'} (${object.error.code ?? '?'})`,
          ),
        );
      const upload = object.actions?.upload;
      if (upload) {
        if (typeof upload.href !== 'string')
          throw new HubPushError(`${what}: no upload URL for ${f.path}`);
        const limit = timeoutMs + (1000 * f.bytes.length) / MIN_UPLOAD_RATE;
        const chunkSize = Number(upload.header?.chunk_size);
        const onPart = (bytes: number) => {
          done += bytes;
          progress({ phase: 'lfs', file: f.path, done, total });
        };
        if (upload.header?.chunk_size !== undefined) {
          await uploadParts(f, oids[i], upload, chunkSize, limit, onPart);
        } else {
          const put = await request(
            `uploading ${f.path}`,
            upload.href,
            { method: 'PUT', body: f.bytes as Uint8Array<ArrayBuffer> },
            limit,
          );
          if (!put.ok) throw await storageError(f.path, put);
          await put.body?.cancel();
          onPart(f.bytes.length);
        }
        const verify = object.actions?.verify;
        if (verify && typeof verify.href === 'string') {
          const verifyUrl = onEndpoint(verify.href);
          const checked = await request(`checking the upload of ${f.path}`, verifyUrl, {
            method: 'POST',
            authorized: true,
            headers: LFS_HEADERS,
            body: JSON.stringify({ oid: oids[i], size: f.bytes.length }),
          });
          if (!checked.ok) throw await httpError(`checking the upload of ${f.path}`, checked);
          await checked.body?.cancel();
        }
      } else {
        // The storage has these bytes already.
        done += f.bytes.length;
        progress({ phase: 'lfs', file: f.path, done, total });
      }
    }
  }

  // 4. The commit.
  progress({ phase: 'commit', done: 0, total: 0 });
  const lines: unknown[] = [
    {
      key: 'header',
      value: {
        summary: options.message ?? 'Upload adapter with LoRA Studio',
        description: options.description ?? '',
      },
    },
    ...files.map((f, i) => {
      const p = pushed[i];
      return p.upload === 'lfs'
        ? { key: 'lfsFile', value: { path: f.path, algo: 'sha256', oid: p.sha256, size: p.bytes } }
        : { key: 'file', value: { path: f.path, content: base64(f.bytes), encoding: 'base64' } };
    }),
  ];
  const what = `committing to ${repo}`;
  const commitUrl = `${api}/commit/${rev}`;
  const response = await request(what, commitUrl, {
    method: 'POST',
    authorized: true,
    headers: { 'Content-Type': 'application/x-ndjson' },
    body: lines.map((line) => JSON.stringify(line)).join('\n') + '\n',
  });
  if (!response.ok) throw await httpError(what, response);
  const commit = await json<{ commitOid?: unknown; commitUrl?: unknown }>(
    what,
    commitUrl,
    response,
  );
  if (typeof commit.commitOid !== 'string')
    throw new HubPushError(`${what}: the Hub's answer names no commit`);
  return {
    repo,
    url,
    revision,
    commit: {
      oid: commit.commitOid,
      url:
        typeof commit.commitUrl === 'string' && /^https?:\/\//.test(commit.commitUrl)
          ? commit.commitUrl
          : `${endpoint}/${repo}/commit/${commit.commitOid}`,
    },
    created,
    files: pushed,
  };
}

interface LfsAction {
  href: string;
  header?: Record<string, string>;
}

interface LfsObject {
  oid: string;
  size: number;
  actions?: { upload?: LfsAction; verify?: LfsAction };
  error?: { code?: number; message?: string };
}
