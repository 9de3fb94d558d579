import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryFileCache, startFakeHub } from '../testing/fake-hub.ts';
import { builtIn, fixture, FIXTURES } from '../testing/fixtures.ts';
import { useGpu } from '../testing/gpu.ts';
import { createGpuModel } from './forward.ts';
import { familyOfType } from './families.ts';
import { generateAll } from './generate.ts';
import { hfFolderFiles } from './hf-export.ts';
import { hubModelFiles, hubRepoFile, type DownloadProgress } from './hub.ts';
import { readLlama2c } from './llama2c.ts';
import { loadGgufModel } from './gguf/load.ts';
import { baseModelId, loadModelFiles, type LoadedModelFiles } from './load.ts';

const gpu = useGpu();
let hub: Awaited<ReturnType<typeof startFakeHub>>;

const ARCH = `${FIXTURES}models/arch/`;
const ARCH_DIRS = readdirSync(ARCH);

/**
 * A family's reference checkpoint as a Hub repo (`arch/<dir>`): its top-level files without the
 * expected logits. GPT-2's drops tokenizer_config.json, as openai-community/gpt2 has none.
 */
function archRepo(dir: string): Map<string, Uint8Array> {
  const names = readdirSync(ARCH + dir).filter(
    (name) =>
      statSync(`${ARCH}${dir}/${name}`).isFile() &&
      !name.startsWith('expected') &&
      !(dir === 'gpt2' && name === 'tokenizer_config.json'),
  );
  return new Map(
    names.map((name) => [name, new Uint8Array(readFileSync(`${ARCH}${dir}/${name}`))]),
  );
}

const gguf = (quant: string) => fixture(`models/gguf/llama/model-${quant}.gguf`);
/**
 * A GGUF repo as bartowski's and llama.cpp's converters lay one out: a file per quant, a vision
 * projector, a README. Q8_0 comes first, so that the default pick is seen to prefer Q4_K_M. Only
 * the picked files are downloaded, so the ones never picked may hold any bytes.
 */
const GGUF_REPO = new Map([
  ['README.md', new TextEncoder().encode('# Tiny')],
  ['Tiny-Q8_0.gguf', gguf('Q8_0')],
  ['Tiny-Q4_K_M.gguf', gguf('Q4_K_M')],
  ['Tiny-BF16.gguf', gguf('f16')],
  ['Tiny-f16.gguf', gguf('f16')],
  ['mmproj-Tiny-f16.gguf', new Uint8Array(8)],
]);

beforeAll(async () => {
  const { config, weights } = readLlama2c(builtIn('stories260K.bin'), 'stories260K.bin');
  const files = hfFolderFiles(config, weights);
  files.set('tok512.bin', builtIn('tok512.bin'));
  hub = await startFakeHub({
    'karpathy/stories260K': files,
    ...Object.fromEntries(ARCH_DIRS.map((dir) => [`arch/${dir}`, archRepo(dir)])),
    'tiny/Tiny-GGUF': GGUF_REPO,
    'tiny/Tiny-Q8-GGUF': new Map([
      ['Tiny-Q8_0.gguf', gguf('Q8_0')],
      ['Tiny-f16.gguf', gguf('f16')],
    ]),
    'tiny/Split-GGUF': new Map([
      ['Tiny-Q4_K_M-00001-of-00002.gguf', new Uint8Array(8)],
      ['Tiny-Q4_K_M-00002-of-00002.gguf', new Uint8Array(8)],
      ['Tiny.Q8_0.gguf', gguf('Q8_0')],
    ]),
    'tiny/docs-only': new Map([['README.md', new TextEncoder().encode('# Nothing')]]),
  });
});
afterAll(() => hub.close());

/** The loaded model tells llama2.c's published greedy story: every byte arrived intact. */
async function expectLlama2cStory(loaded: LoadedModelFiles): Promise<void> {
  const model = createGpuModel(gpu(), loaded.config, loaded.weights);
  try {
    const tokens = await generateAll(model, [1], { maxNewTokens: 200 });
    const expected = new TextDecoder()
      .decode(fixture('models/llama2c/stories260K.greedy200.txt'))
      .trimEnd();
    expect(loaded.tokenizer.decode([1, ...tokens])).toBe(expected);
  } finally {
    model.dispose();
  }
}

describe('loading from the Hub by repo id (a local server in the Hub layout)', () => {
  it('downloads with progress, loads and generates llama2.c’s story; a cache serves the second load', async () => {
    const cache = memoryFileCache();
    const progress: DownloadProgress[] = [];
    const options = {
      baseUrl: hub.baseUrl,
      cache,
      onProgress: (p: DownloadProgress) => progress.push(p),
    };
    const loaded = await loadModelFiles(
      await hubModelFiles('karpathy/stories260K', options),
      'karpathy/stories260K',
    );
    const last = progress.findLast((p) => p.file === 'model.safetensors');
    expect(last?.loaded).toBe(last?.total);
    expect(last?.total).toBeGreaterThan(1_000_000);

    await expectLlama2cStory(loaded);

    const before = hub.requests.length;
    await loadModelFiles(await hubModelFiles('karpathy/stories260K', options), 'again');
    // Probes for optional files that do not exist (404s are not cached) are all that remain.
    expect(
      hub.requests
        .slice(before)
        .every((r) => /index\.json|tokenizer(_config)?\.json|chat_template\.jinja/.test(r)),
    ).toBe(true);
  });

  it('continues an interrupted download where it stopped (Range), after a reload', async () => {
    const cache = memoryFileCache();
    const options = { baseUrl: hub.baseUrl, cache, partBytes: 64 * 1024 };
    hub.interruptNext('model.safetensors', 300_000);
    const interrupted = await loadModelFiles(
      await hubModelFiles('karpathy/stories260K', options),
      'first try',
    ).catch((e: unknown) => e);
    expect(interrupted).toBeInstanceOf(Error);
    const url = `${hub.baseUrl}/karpathy/stories260K/resolve/main/model.safetensors`;
    const { parts } = await cache.parts(url);
    // Of the 300 000 bytes that arrived, the whole parts (≥ 64 KiB each) were kept.
    const kept = parts.reduce((n, p) => n + p.byteLength, 0);
    expect(kept).toBeGreaterThanOrEqual(2 * 64 * 1024);
    expect(kept).toBeLessThanOrEqual(300_000);

    const before = hub.requests.length;
    const progress: DownloadProgress[] = [];
    const loaded = await loadModelFiles(
      await hubModelFiles('karpathy/stories260K', {
        ...options,
        onProgress: (p) => progress.push(p),
      }),
      'reloaded',
    );
    expect(hub.requests.slice(before)).toContain(
      `/karpathy/stories260K/resolve/main/model.safetensors range=bytes=${kept}-`,
    );
    // Progress starts where the kept parts end.
    expect(progress.find((p) => p.file === 'model.safetensors')?.loaded).toBe(kept);
    expect((await cache.parts(url)).parts).toHaveLength(0);
    await expectLlama2cStory(loaded);
  });

  it('says clearly when a repo does not exist or the id is malformed', async () => {
    await expect(hubModelFiles('nobody/nothing', { baseUrl: hub.baseUrl })).rejects.toThrow(
      /nobody\/nothing: has no config.json on the Hub \(HTTP 404 for config.json\)/,
    );
    await expect(hubModelFiles('../etc/passwd', { baseUrl: hub.baseUrl })).rejects.toThrow(
      /is not a Hub repo id/,
    );
  });

  it('says the network is unreachable when no server answers, not that a file is missing', async () => {
    // Nothing listens on port 1 of the loopback: the connection is refused.
    const offline = { baseUrl: 'http://127.0.0.1:1' };
    for (const id of ['karpathy/stories260K', 'unsloth/model-GGUF:Q4_K_M'])
      await expect(hubModelFiles(id, offline)).rejects.toThrow(
        /: the Hub could not be reached \(.*\): is the network connected\?$/,
      );
  });

  it('refuses a file larger than the download may take, before reading it and while reading it', async () => {
    const [repo, file] = ['karpathy/stories260K', 'model.safetensors'];
    const maxBytes = 2 ** 19;
    await expect(hubRepoFile(repo, file, { baseUrl: hub.baseUrl, maxBytes })).rejects.toThrow(
      /^karpathy\/stories260K\/model\.safetensors: is 0\.997 MiB, more than the 0\.5 MiB this download may take$/,
    );
    // A server that sends no Content-Length: the bytes are counted as they come.
    const server = createServer((_, res) => {
      res.writeHead(200, { 'Transfer-Encoding': 'chunked' });
      res.end(builtIn('stories260K.bin'));
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const { port } = server.address() as AddressInfo;
    try {
      await expect(
        hubRepoFile(repo, file, { baseUrl: `http://127.0.0.1:${port}`, maxBytes }),
      ).rejects.toThrow(
        /^karpathy\/stories260K\/model\.safetensors: is larger than the 0\.5 MiB this download may take$/,
      );
    } finally {
      server.close();
    }
  });
});

describe('GGUF repos from the Hub, a file picked by quant (`repo:Q4_K_M`)', () => {
  const names = async (repo: string) =>
    (await hubModelFiles(repo, { baseUrl: hub.baseUrl })).map((f) => f.name);
  const message = (repo: string) =>
    hubModelFiles(repo, { baseUrl: hub.baseUrl }).then(
      () => '',
      (e: unknown) => (e as Error).message,
    );

  it('without a quant takes Q4_K_M, downloads it only when read, and loads it as a model', async () => {
    const before = hub.requests.length;
    const progress: DownloadProgress[] = [];
    const files = await hubModelFiles('tiny/Tiny-GGUF', {
      baseUrl: hub.baseUrl,
      cache: memoryFileCache(),
      onProgress: (p) => progress.push(p),
    });
    expect(files.map((f) => f.name)).toEqual(['Tiny-Q4_K_M.gguf']);
    // The repo has no config.json, so its file list was asked for; no .gguf is fetched yet.
    expect(hub.requests.slice(before)).toEqual([
      '/tiny/Tiny-GGUF/resolve/main/config.json',
      '/api/models/tiny/Tiny-GGUF/tree/main',
    ]);
    const loaded = await loadModelFiles(files, 'tiny/Tiny-GGUF');
    expect(hub.requests.at(-1)).toBe('/tiny/Tiny-GGUF/resolve/main/Tiny-Q4_K_M.gguf');
    expect(progress.at(-1)).toEqual({
      file: 'Tiny-Q4_K_M.gguf',
      loaded: gguf('Q4_K_M').byteLength,
      total: gguf('Q4_K_M').byteLength,
    });
    expect(loaded.config.vocabSize).toBe(280);
    expect(loaded.config.numLayers).toBe(2);
    expect(loaded.config).toEqual(loadGgufModel(gguf('Q4_K_M'), 'x.gguf').config);
    expect(loaded.tokenizer.encode('hello').length).toBeGreaterThan(0);
    // The fixture names no source repo: an adapter trained on it names the model as loaded.
    expect(baseModelId(loaded)).toBe('tiny/Tiny-GGUF');
  });

  it('without Q4_K_M takes the first model file', async () => {
    expect(await names('tiny/Tiny-Q8-GGUF')).toEqual(['Tiny-Q8_0.gguf']);
  });

  it('takes the quant named, in any case, as a whole part of the name, without asking for config.json', async () => {
    const before = hub.requests.length;
    expect(await names('tiny/Tiny-GGUF:q8_0')).toEqual(['Tiny-Q8_0.gguf']);
    expect(hub.requests.slice(before)).toEqual(['/api/models/tiny/Tiny-GGUF/tree/main']);
    // F16 is not BF16's tag, and the vision projector is no model.
    expect(await names('tiny/Tiny-GGUF:F16')).toEqual(['Tiny-f16.gguf']);
    expect(await names('tiny/Tiny-GGUF:bf16')).toEqual(['Tiny-BF16.gguf']);
    // A `.` delimits the tag as `-` does (TheBloke's `model.Q8_0.gguf`).
    expect(await names('tiny/Split-GGUF:Q8_0')).toEqual(['Tiny.Q8_0.gguf']);
  });

  it('names a quant the repo lacks, listing the ones it has', async () => {
    expect(await message('tiny/Tiny-GGUF:Q5_K_M')).toBe(
      'tiny/Tiny-GGUF: has no .gguf model of quant Q5_K_M (it has Q8_0, Q4_K_M, BF16, f16)',
    );
    // Part of a tag is not a tag.
    expect(await message('tiny/Tiny-GGUF:Q4_K')).toMatch(/has no \.gguf model of quant Q4_K \(/);
  });

  it('refuses a split model, naming the quants kept whole', async () => {
    expect(await message('tiny/Split-GGUF')).toBe(
      'tiny/Split-GGUF: keeps Tiny-Q4_K_M in 2 parts (Tiny-Q4_K_M-00001-of-00002.gguf…), and the studio loads one file: merge the parts (llama-gguf-split --merge) and drop the merged file on the Model panel, or name a quant the repo keeps whole (Q8_0)',
    );
  });

  it('says when a repo has neither config.json nor a .gguf model, or no file list', async () => {
    expect(await message('tiny/docs-only')).toBe(
      'tiny/docs-only: has neither config.json nor a .gguf model on the Hub (its files: README.md)',
    );
    expect(await message('tiny/docs-only:Q4_K_M')).toBe(
      'tiny/docs-only: has no .gguf model to take Q4_K_M from on the Hub (its files: README.md)',
    );
    expect(await message('nobody/nothing:Q4_K_M')).toBe(
      'nobody/nothing: has no file list on the Hub (HTTP 404 for the file list)',
    );
    expect(await message('tiny/Tiny-GGUF:Q4 K')).toMatch(/is not a Hub repo id/);
  });
});

describe('every family from the Hub', () => {
  it.each(ARCH_DIRS)('%s: fetches the files its family needs and loads', async (dir) => {
    const files = await hubModelFiles(`arch/${dir}`, { baseUrl: hub.baseUrl });
    const modelType = (
      JSON.parse(readFileSync(`${ARCH}${dir}/config.json`, 'utf8')) as { model_type: string }
    ).model_type;
    expect(files.map((f) => f.name)).toEqual([
      'config.json',
      'model.safetensors',
      'tokenizer.json',
      ...(dir === 'gpt2' ? [] : ['tokenizer_config.json']),
    ]);
    const loaded = await loadModelFiles(files, dir);
    expect(loaded.config.arch.family).toBe(familyOfType(modelType).name);
    expect(loaded.tokenizer.encode('hello').length).toBeGreaterThan(0);
  });
});

describe('repos the Hub refuses without a login', () => {
  // What huggingface.co answers to a request without credentials: 401 with X-Error-Code
  // GatedRepo for a gated repo, RepoNotFound for a private or missing one; a mirror may send a
  // bare 401/403.
  const refusals: Record<string, [number, string | null]> = {
    'google/gemma-3-270m-it': [401, 'GatedRepo'],
    'meta-llama/Llama-3.2-1B-Instruct': [403, null],
    'someone/private': [401, 'RepoNotFound'],
    'google/gemma-3-1b-it-qat-q4_0-gguf': [401, 'GatedRepo'],
  };
  // The file list of a gated repo is public; its files are not.
  const gatedGguf = [{ type: 'file', path: 'gemma-3-1b-it-q4_0.gguf', size: 1_000_000_000 }];
  const server = createServer((req, res) => {
    if (req.url === '/api/models/google/gemma-3-1b-it-qat-q4_0-gguf/tree/main') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(gatedGguf));
      return;
    }
    const repo = /^\/([^/]+\/[^/]+)\/resolve\//.exec(req.url ?? '')?.[1] ?? '';
    const [status, code] = refusals[repo] ?? [404, null];
    res.writeHead(status, code ? { 'X-Error-Code': code } : {}).end('Access restricted');
  });
  let baseUrl = '';
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.close();
    server.closeAllConnections();
  });
  const refusal = (repo: string) =>
    hubModelFiles(repo, { baseUrl }).then(
      () => '',
      (e: unknown) => (e as Error).message,
    );

  it('says in one line that a gated repo needs its licence accepted, which the studio cannot do', async () => {
    const message = await refusal('google/gemma-3-270m-it');
    expect(message).toMatch(
      /^google\/gemma-3-270m-it: is gated \(HTTP 401 for config\.json\): .*accepted its licence.*without logging in: accept the licence at https:\/\/huggingface\.co\/google\/gemma-3-270m-it, download the files there and drop them on the Model panel$/,
    );
    expect(message).not.toContain('\n');
  });

  it('says so for a gated GGUF repo too, where only the download is refused', async () => {
    const repo = 'google/gemma-3-1b-it-qat-q4_0-gguf';
    expect(await refusal(repo)).toMatch(
      /^google\/gemma-3-1b-it-qat-q4_0-gguf: is gated \(HTTP 401 for config\.json\)/,
    );
    const [file] = await hubModelFiles(`${repo}:Q4_0`, { baseUrl });
    await expect(file.bytes()).rejects.toThrow(
      /^google\/gemma-3-1b-it-qat-q4_0-gguf: is gated \(HTTP 401 for gemma-3-1b-it-q4_0\.gguf\): .*accept the licence at https:\/\/huggingface\.co\/google\/gemma-3-1b-it-qat-q4_0-gguf/,
    );
  });

  it('names the possibilities when the server gives no reason', async () => {
    expect(await refusal('meta-llama/Llama-3.2-1B-Instruct')).toMatch(
      /^meta-llama\/Llama-3\.2-1B-Instruct: was refused by the Hub \(HTTP 403 for config\.json\): it is gated or private, or does not exist\. If it is gated, .*huggingface\.co\/meta-llama\/Llama-3\.2-1B-Instruct/,
    );
    expect(await refusal('someone/private')).toBe(
      'someone/private: is not on the Hub, or is private (HTTP 401 for config.json)',
    );
  });
});
