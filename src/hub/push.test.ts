// Pushing an adapter to the Hub through its upload API, against the fake Hub: a real adapter's
// files (PEFT, model card, merge recipe, GGUF) go up in one commit by each path the Hub may
// choose (inline base64, LFS basic, LFS multipart) and come back byte for byte through the
// studio's own Hub loader; the token reaches only the Hub's API; the model card's base_model is
// kept, filled in or refused; every refusal is one line naming what to do.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hubModelFiles, hubRepoFile } from '../model/hub.ts';
import { startFakeHub, type FakeHub } from '../testing/fake-hub.ts';
import { hubTestAdapter, TEST_BASE_MODEL } from '../testing/hub-adapter.ts';
import { adapterUpload, cardBaseModels } from './adapter-upload.ts';
import { HubPushError, pushToHub, type PushProgress } from './push.ts';

const WRITE = 'hf_write_token_for_tests';
const READ = 'hf_read_token_for_tests';
const adapter = hubTestAdapter();
const text = new TextEncoder();
const readText = (bytes: Uint8Array | undefined) => new TextDecoder().decode(bytes);

/** The adapter's upload with its GGUF, for `repo`. */
const upload = (repo: string) =>
  adapterUpload(adapter.files, { repo, gguf: { name: 'adapter.gguf', bytes: adapter.gguf } });

/** Downloads every pushed file back through the studio's Hub loader and compares the bytes. */
async function expectBack(
  hub: FakeHub,
  repo: string,
  files: { path: string; bytes: Uint8Array }[],
) {
  for (const f of files) {
    const back = await hubRepoFile(repo, f.path, { baseUrl: hub.baseUrl });
    expect(back, f.path).toEqual(f.bytes);
  }
}

describe('pushing an adapter to the Hub (the fake Hub)', () => {
  let hub: FakeHub;
  beforeAll(async () => {
    hub = await startFakeHub({}, { tokens: { [WRITE]: 'write', [READ]: 'read' } });
  });
  afterAll(() => hub.close());

  it('creates the repo, sends the large files through LFS and the rest inline, in one commit', async () => {
    const { files } = upload('alice/lfs-adapter');
    const progress: PushProgress[] = [];
    const result = await pushToHub(files, {
      repo: 'alice/lfs-adapter',
      token: WRITE,
      endpoint: hub.baseUrl,
      message: 'First push',
      onProgress: (p) => progress.push(p),
    });
    expect(result.created).toBe(true);
    expect(result.url).toBe(`${hub.baseUrl}/alice/lfs-adapter`);
    expect(result.files.map((f) => [f.path, f.upload])).toEqual([
      ['adapter_config.json', 'inline'],
      ['adapter_model.safetensors', 'lfs'],
      ['README.md', 'inline'],
      ['merge_recipe.json', 'inline'],
      ['adapter.gguf', 'lfs'],
    ]);
    const commit = hub.commits.at(-1)!;
    expect(commit).toMatchObject({
      repo: 'alice/lfs-adapter',
      revision: 'main',
      summary: 'First push',
    });
    expect(result.commit.oid).toBe(commit.oid);
    expect(result.commit.url).toBe(`${hub.baseUrl}/alice/lfs-adapter/commit/${commit.oid}`);
    expect(commit.files.map((f) => f.upload)).toEqual(['inline', 'lfs', 'inline', 'inline', 'lfs']);
    // The token went to the API, never to the storage's presigned URLs.
    const calls = hub.uploads.filter((c) => c.method !== 'OPTIONS');
    expect(calls.filter((c) => c.path.startsWith('/lfs-storage/'))).toHaveLength(2);
    for (const c of calls)
      expect(c.authorization, c.path).toBe(!c.path.startsWith('/lfs-storage/'));
    const last = progress.filter((p) => p.phase === 'lfs').at(-1)!;
    expect(last.done).toBe(last.total);
    expect(last.total).toBe(
      adapter.gguf.length + adapter.files.get('adapter_model.safetensors')!.length,
    );
    expect(progress.at(-1)?.phase).toBe('commit');

    await expectBack(hub, 'alice/lfs-adapter', files);
    // A repo without config.json is a GGUF repo to the model loader: it finds the pushed file.
    const [gguf] = await hubModelFiles('alice/lfs-adapter', { baseUrl: hub.baseUrl });
    expect(gguf.name).toBe('adapter.gguf');
    expect(await gguf.bytes()).toEqual(adapter.gguf);
  });

  it('pushes again into the existing repo; objects the storage has are not uploaded again', async () => {
    const before = hub.uploads.length;
    const { files } = upload('alice/lfs-adapter');
    const card = text.encode(`${readText(adapter.files.get('README.md'))}\nSecond version.\n`);
    const changed = files.map((f) => (f.path === 'README.md' ? { ...f, bytes: card } : f));
    const result = await pushToHub(changed, {
      repo: 'alice/lfs-adapter',
      token: WRITE,
      endpoint: hub.baseUrl,
    });
    expect(result.created).toBe(false);
    expect(hub.uploads.slice(before).some((c) => c.path.startsWith('/lfs-storage/'))).toBe(false);
    expect(hub.commits.filter((c) => c.repo === 'alice/lfs-adapter')).toHaveLength(2);
    expect(
      readText(await hubRepoFile('alice/lfs-adapter', 'README.md', { baseUrl: hub.baseUrl })),
    ).toMatch(/Second version/);
  });

  it('makes a private repo when asked: the loader, which sends no token, is refused', async () => {
    const { files } = upload('alice/private-adapter');
    await pushToHub(files, {
      repo: 'alice/private-adapter',
      token: WRITE,
      endpoint: hub.baseUrl,
      private: true,
    });
    expect(hub.isPrivate('alice/private-adapter')).toBe(true);
    expect(hub.repoFiles('alice/private-adapter')?.get('adapter.gguf')).toEqual(adapter.gguf);
    await expect(
      hubRepoFile('alice/private-adapter', 'adapter_config.json', { baseUrl: hub.baseUrl }),
    ).rejects.toThrow(/is not on the Hub, or is private/);
  });

  it.each([
    ['no token', { token: '  ' }, /^no Hub token: give a User Access Token with write access/],
    ['a token with spaces', { token: 'hf_a b' }, /token holds spaces/],
    [
      'a repo id without a user',
      { repo: 'adapter' },
      /"adapter" is not a Hub repo id: give USER\/NAME/,
    ],
    ['a repo id with three parts', { repo: 'a/b/c' }, /is not a Hub repo id/],
    ['a repo id with ".."', { repo: 'alice/a..b' }, /is not a Hub repo id/],
    [
      'a read token',
      { token: READ },
      /the Hub refused the token \(HTTP 403[^)]*\): it is not valid, or lacks write access to alice\/refused/,
    ],
    [
      'an unknown token',
      { token: 'hf_nobody' },
      /the Hub refused the token \(HTTP 401: Invalid credentials[^)]*\).*write role/,
    ],
  ])('refuses %s in one line', async (_, change, message) => {
    const { files } = upload('alice/refused');
    const error = await pushToHub(files, {
      repo: 'alice/refused',
      token: WRITE,
      endpoint: hub.baseUrl,
      ...change,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HubPushError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toMatch(/\n/);
    expect(hub.repoFiles('alice/refused')).toBeUndefined();
  });

  it('refuses a branch the repo does not have', async () => {
    const { files } = upload('alice/lfs-adapter');
    await expect(
      pushToHub(files, {
        repo: 'alice/lfs-adapter',
        token: WRITE,
        endpoint: hub.baseUrl,
        revision: 'dev',
      }),
    ).rejects.toThrow(
      /not found \(HTTP 404: Invalid rev id: dev\); check that alice\/lfs-adapter exists and has the branch "dev"/,
    );
  });
});

describe('the inline and multipart paths', () => {
  it('sends every file inline when the Hub says so, and they come back whole', async () => {
    const hub = await startFakeHub({}, { tokens: { [WRITE]: 'write' }, lfs: () => false });
    try {
      const { files } = upload('bob/inline-adapter');
      const result = await pushToHub(files, {
        repo: 'bob/inline-adapter',
        token: WRITE,
        endpoint: hub.baseUrl,
      });
      expect(result.files.every((f) => f.upload === 'inline')).toBe(true);
      expect(hub.uploads.some((c) => c.path.includes('lfs'))).toBe(false);
      await expectBack(hub, 'bob/inline-adapter', files);
    } finally {
      await hub.close();
    }
  });

  it('uploads a large file in parts when the LFS batch API asks for a multipart transfer', async () => {
    const chunk = 16_384;
    const hub = await startFakeHub({}, { tokens: { [WRITE]: 'write' }, multipartChunk: chunk });
    try {
      const { files } = upload('bob/multipart-adapter');
      await pushToHub(files, {
        repo: 'bob/multipart-adapter',
        token: WRITE,
        endpoint: hub.baseUrl,
      });
      const parts = hub.uploads.filter((c) => /^\/lfs-storage\/\w+\/part\/\d+$/.test(c.path));
      const weights = adapter.files.get('adapter_model.safetensors')!.length;
      expect(parts.length).toBe(
        Math.ceil(weights / chunk) + Math.ceil(adapter.gguf.length / chunk),
      );
      expect(parts.every((c) => !c.authorization)).toBe(true);
      expect(hub.uploads.filter((c) => c.path === '/api/complete_multipart')).toHaveLength(2);
      await expectBack(hub, 'bob/multipart-adapter', files);
    } finally {
      await hub.close();
    }
  });
});

describe('network failures', () => {
  /** A server that takes connections and never answers, or echoes the Authorization header. */
  async function server(
    handler: Parameters<typeof createServer>[1],
  ): Promise<{ url: string; server: Server }> {
    const s = createServer(handler);
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, server: s };
  }
  const close = (s: Server) =>
    new Promise<void>((resolve) => {
      s.closeAllConnections();
      s.close(() => {
        resolve();
      });
    });
  const { files } = upload('carol/adapter');

  it('says when the Hub cannot be reached', async () => {
    const { url, server: s } = await server(() => undefined);
    await close(s);
    await expect(
      pushToHub(files, { repo: 'carol/adapter', token: WRITE, endpoint: url }),
    ).rejects.toThrow(
      new RegExp(
        `^creating carol/adapter: could not reach 127\\.0\\.0\\.1:\\d+ \\(ECONNREFUSED\\)$`,
      ),
    );
  });

  it('gives up on a request after its timeout', async () => {
    const { url, server: s } = await server(() => undefined);
    try {
      const started = Date.now();
      await expect(
        pushToHub(files, { repo: 'carol/adapter', token: WRITE, endpoint: url, timeoutMs: 300 }),
      ).rejects.toThrow(/^creating carol\/adapter: 127\.0\.0\.1:\d+ did not answer within 0.3 s$/);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await close(s);
    }
  });

  it('never puts the token in a message, even when the server repeats it', async () => {
    const { url, server: s } = await server((req, res) => {
      res.writeHead(401, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error: `bad token ${req.headers.authorization ?? ''}` }));
    });
    try {
      const error = (await pushToHub(files, {
        repo: 'carol/adapter',
        token: WRITE,
        endpoint: url,
      }).catch((e: unknown) => e)) as Error;
      expect(error.message).toMatch(/HTTP 401: bad token Bearer \*\*\*/);
      expect(error.message).not.toContain(WRITE);
    } finally {
      await close(s);
    }
  });
});

describe('what an adapter push uploads (the model card)', () => {
  const files = (card: string | null, base = TEST_BASE_MODEL) => {
    const f = new Map(hubTestAdapter(base).files);
    if (card === null) f.delete('README.md');
    else f.set('README.md', text.encode(card));
    return f;
  };
  const cardOf = (u: ReturnType<typeof adapterUpload>) =>
    readText(u.files.find((f) => f.path === 'README.md')?.bytes);

  it('keeps a card whose base_model is a Hub id, byte for byte', () => {
    const u = adapterUpload(adapter.files, { repo: 'dave/a' });
    expect(u.card).toBe('kept');
    expect(u.baseModel).toEqual([TEST_BASE_MODEL]);
    expect(u.files.find((f) => f.path === 'README.md')?.bytes).toBe(adapter.files.get('README.md'));
  });

  it('fills base_model from adapter_config.json into front matter that lacks it', () => {
    const u = adapterUpload(files('---\nlicense: mit\n---\n# Mine\n'), { repo: 'dave/a' });
    expect(u.card).toBe('base_model filled');
    expect(cardOf(u)).toBe(`---\nlicense: mit\nbase_model: ${TEST_BASE_MODEL}\n---\n# Mine\n`);
    expect(cardBaseModels(cardOf(u))).toEqual([TEST_BASE_MODEL]);
  });

  it('replaces a base_model that is a local name, and puts front matter before a card without', () => {
    const local = adapterUpload(files('---\nbase_model: stories260K\n---\nText\n'), {
      repo: 'dave/a',
    });
    expect(cardBaseModels(cardOf(local))).toEqual([TEST_BASE_MODEL]);
    const bare = adapterUpload(files('# Just text\n'), { repo: 'dave/a' });
    expect(cardOf(bare)).toMatch(
      new RegExp(`^---\\nbase_model: ${TEST_BASE_MODEL}\\n[\\s\\S]*---\\n\\n# Just text\\n$`),
    );
  });

  it('writes a card for an adapter without one, after the PEFT files', () => {
    const u = adapterUpload(files(null), { repo: 'dave/new-adapter' });
    expect(u.card).toBe('written');
    expect(u.files.map((f) => f.path)).toEqual([
      'adapter_config.json',
      'adapter_model.safetensors',
      'README.md',
      'merge_recipe.json',
    ]);
    expect(cardOf(u)).toMatch(/^---\nbase_model: unsloth\/Llama-3\.2-1B-Instruct\n/);
    expect(cardOf(u)).toMatch(/PeftModel\.from_pretrained\(base_model, "dave\/new-adapter"\)/);
  });

  it('reads a base_model list, and takes the id the user gives over both', () => {
    expect(cardBaseModels('---\nbase_model:\n  - a/b\n  - c/d\n---\n')).toEqual(['a/b', 'c/d']);
    const u = adapterUpload(files('---\nbase_model: stories260K\n---\n', 'stories260K'), {
      repo: 'dave/a',
      baseModel: 'karpathy/tinyllamas',
    });
    expect(u.baseModel).toEqual(['karpathy/tinyllamas']);
    expect(cardBaseModels(cardOf(u))).toEqual(['karpathy/tinyllamas']);
  });

  it.each([
    [
      'a local base model in both the card and the config',
      files('---\nbase_model: stories260K\n---\n', 'stories260K'),
      {},
      /the base model "stories260K" is not a Hub model id \(owner\/name\): the Hub's model card needs base_model/,
    ],
    [
      'no base model anywhere',
      files(null, '/models/mine'),
      {},
      /the base model "\/models\/mine" is not a Hub model id/,
    ],
    [
      'a base model option that is no Hub id',
      adapter.files,
      { baseModel: 'gpt2' },
      /the base model "gpt2" is not a Hub model id/,
    ],
    [
      'no weights',
      new Map([['adapter_config.json', text.encode('{}')]]),
      {},
      /the adapter has no adapter_model\.safetensors/,
    ],
    [
      'a GGUF not named .gguf',
      adapter.files,
      { gguf: { name: 'x.bin', bytes: adapter.gguf } },
      /"x\.bin" is not a \.gguf file name/,
    ],
  ])('refuses %s', (_, f, options, message) => {
    expect(() => adapterUpload(f, { repo: 'dave/a', ...options })).toThrow(message);
  });
});
