// The Library panel's "Push to Hub", without a browser: the form's push of a library adapter (its
// files as Download gives them, from a stand-in for the worker) to the fake Hub, with the GGUF
// and a base model the form names; the lines the form shows; the Hub the page talks to; and the
// built page's CSP, which lets uploads reach the Hub's storage and nothing else of S3.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTENT_SECURITY_POLICY } from '../../vite.config.ts';
import { startFakeHub, type FakeHub } from '../testing/fake-hub.ts';
import { hubTestAdapter } from '../testing/hub-adapter.ts';
import { hubEndpoint } from './hub-endpoint.ts';
import {
  EMPTY_PUSH_FORM,
  progressText,
  pushLibraryAdapter,
  resultText,
  type PushProgress,
  type PushSource,
} from './hub-push.ts';

const TOKEN = 'hf_studio_write_token_0123456789';

/** The worker's two calls, over one library entry's files. */
function source(
  files: Map<string, Uint8Array>,
  gguf: Uint8Array,
): PushSource & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    adapterFiles: (id) => {
      calls.push(`files ${id}`);
      return Promise.resolve([...files].map(([name, bytes]) => ({ name, bytes })));
    },
    adapterGguf: (id) => {
      calls.push(`gguf ${id}`);
      return Promise.resolve({ name: 'trained.gguf', bytes: gguf });
    },
  };
}

describe('Push to Hub in the studio', () => {
  let hub: FakeHub;
  beforeAll(async () => {
    hub = await startFakeHub({}, { tokens: { [TOKEN]: 'write' } });
  });
  afterAll(() => hub.close());

  it('pushes a library adapter trained on a local model, with the base model and GGUF the form names', async () => {
    // Trained on the built-in model: its card and config name a file, not a Hub repo.
    const adapter = hubTestAdapter('stories260K');
    const worker = source(adapter.files, adapter.gguf);
    const progress: PushProgress[] = [];
    const form = {
      ...EMPTY_PUSH_FORM,
      repo: ' erin/stories-adapter ',
      token: TOKEN,
      baseModel: 'karpathy/tinyllamas',
      gguf: true,
    };
    const result = await pushLibraryAdapter(worker, 'trained-1', form, {
      endpoint: hub.baseUrl,
      onProgress: (p) => progress.push(p),
    });
    expect(worker.calls).toEqual(['files trained-1', 'gguf trained-1']);
    expect(result.card).toBe('base_model filled');
    expect(resultText(result)).toBe(
      `Pushed 5 files to erin/stories-adapter (new repo, base_model filled): commit ${result.commit.oid.slice(0, 7)}`,
    );
    expect([...new Set(progress.map((p) => p.phase))]).toEqual([
      'repo',
      'preupload',
      'lfs',
      'commit',
    ]);
    expect(progress.map(progressText)).toContain('Uploading the large files (trained.gguf)…');
    // What the Hub now serves (the loader's round trip is src/hub/push.test.ts's).
    const pushed = hub.repoFiles('erin/stories-adapter')!;
    expect(new TextDecoder().decode(pushed.get('README.md'))).toMatch(
      /^---\nbase_model: karpathy\/tinyllamas\n/,
    );
    for (const name of ['adapter_config.json', 'adapter_model.safetensors', 'merge_recipe.json'])
      expect(pushed.get(name), name).toEqual(adapter.files.get(name));
    expect(pushed.get('trained.gguf')).toEqual(adapter.gguf);
    expect(JSON.stringify(result)).not.toContain(TOKEN);
  });

  it('says in one line why a push cannot go: no Hub base model, no token', async () => {
    const adapter = hubTestAdapter('stories260K');
    const worker = source(adapter.files, adapter.gguf);
    const push = (form: Partial<typeof EMPTY_PUSH_FORM>) =>
      pushLibraryAdapter(
        worker,
        'x',
        { ...EMPTY_PUSH_FORM, repo: 'erin/x', token: TOKEN, ...form },
        { endpoint: hub.baseUrl },
      );
    await expect(push({})).rejects.toThrow(/^the base model "stories260K" is not a Hub model id/);
    await expect(push({ baseModel: 'karpathy/tinyllamas', token: '' })).rejects.toThrow(
      /^no Hub token/,
    );
    expect(hub.repoFiles('erin/x')).toBeUndefined();
  });

  it('talks to the Hub ?hub= names, else huggingface.co', () => {
    expect(hubEndpoint('?hub=http%3A%2F%2F127.0.0.1%3A9999')).toBe('http://127.0.0.1:9999');
    expect(hubEndpoint('')).toBeUndefined();
  });
});

describe("the built page's Content-Security-Policy", () => {
  const connect = CONTENT_SECURITY_POLICY.split('; ')
    .find((d) => d.startsWith('connect-src '))!
    .split(' ')
    .slice(1);

  it('lets uploads reach the Hub, its LFS storage and local mirrors, and no other host', () => {
    expect(connect).toEqual([
      "'self'",
      'https://huggingface.co',
      'https://*.huggingface.co',
      'https://*.hf.co',
      'https://s3.us-east-1.amazonaws.com/lfs.huggingface.co/',
      'https://hf-hub-lfs-us-east-1.s3-accelerate.amazonaws.com',
      'http://127.0.0.1:*',
      'http://localhost:*',
    ]);
  });
});
