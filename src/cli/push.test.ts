// `lora-studio push`: a real adapter folder (PEFT files, model card, merge recipe) and its GGUF
// LoRA pushed to the fake Hub with HF_TOKEN, the JSON summary checked against the commit the Hub
// recorded and every file downloaded back through the studio's Hub loader; each refusal (token,
// repo id, folder, card, the Hub's 401/403, the network) exits 2 with one line on stderr.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hubRepoFile } from '../model/hub.ts';
import { startFakeHub, type FakeHub } from '../testing/fake-hub.ts';
import { hubTestAdapter } from '../testing/hub-adapter.ts';
import { writeFiles } from './files.ts';

const BIN = fileURLToPath(new URL('./bin.js', import.meta.url));
const WRITE = 'hf_cli_write_token_0123456789';
const READ = 'hf_cli_read_token_0123456789';

function push(args: string[], env: Record<string, string | undefined>) {
  return promisify(execFile)(process.execPath, [BIN, 'push', ...args], {
    env: { ...process.env, HF_TOKEN: undefined, HF_ENDPOINT: undefined, ...env },
  }).then(
    (r) => ({ code: 0, ...r }),
    (e: unknown) => e as { code: number; stdout: string; stderr: string },
  );
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('lora-studio push', () => {
  let hub: FakeHub;
  let tmp = '';
  let dir = '';
  let gguf = '';
  beforeAll(async () => {
    hub = await startFakeHub({}, { tokens: { [WRITE]: 'write', [READ]: 'read' } });
    tmp = await mkdtemp(join(tmpdir(), 'lora-studio-push-'));
    dir = join(tmp, 'my-adapter');
    const adapter = hubTestAdapter();
    await writeFiles(dir, adapter.files);
    // Files a push leaves behind: not the adapter's.
    await writeFile(join(dir, 'extraction.json'), '{}');
    gguf = join(tmp, 'my-adapter.gguf');
    await writeFile(gguf, adapter.gguf);
  });
  afterAll(async () => {
    await hub.close();
    await rm(tmp, { recursive: true, force: true });
  });

  it('pushes the folder and the GGUF in one commit; the files come back byte for byte', async () => {
    const { code, stdout, stderr } = await push(
      [
        '--repo',
        'alice/my-adapter',
        dir,
        '--gguf',
        gguf,
        '--endpoint',
        hub.baseUrl,
        '--message',
        'v1',
      ],
      { HF_TOKEN: WRITE },
    );
    expect(stderr).not.toContain(WRITE);
    expect(code, stderr).toBe(0);
    const summary = JSON.parse(stdout) as {
      repo: string;
      url: string;
      created: boolean;
      commit: string;
      commit_url: string;
      base_model: string[];
      card: string;
      files: { path: string; bytes: number; upload: string; sha256?: string }[];
    };
    const commit = hub.commits.at(-1)!;
    expect(summary).toMatchObject({
      repo: 'alice/my-adapter',
      url: `${hub.baseUrl}/alice/my-adapter`,
      created: true,
      commit: commit.oid,
      commit_url: `${hub.baseUrl}/alice/my-adapter/commit/${commit.oid}`,
      base_model: ['unsloth/Llama-3.2-1B-Instruct'],
      card: 'kept',
    });
    expect(commit.summary).toBe('v1');
    expect(summary.files.map((f) => [f.path, f.upload])).toEqual([
      ['adapter_config.json', 'inline'],
      ['adapter_model.safetensors', 'lfs'],
      ['README.md', 'inline'],
      ['merge_recipe.json', 'inline'],
      ['my-adapter.gguf', 'lfs'],
    ]);
    expect(summary.files[1].sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(stderr).toMatch(
      /^push: uploading the large files: 0 of \d+ bytes\n[\s\S]*push: committing\n$/,
    );
    for (const { path } of summary.files) {
      const local = new Uint8Array(await readFile(path.endsWith('.gguf') ? gguf : join(dir, path)));
      const back = await hubRepoFile('alice/my-adapter', path, { baseUrl: hub.baseUrl });
      expect(back, path).toEqual(local);
    }
  });

  it('takes the endpoint from HF_ENDPOINT and makes a private repo with --private', async () => {
    const { code, stdout, stderr } = await push([dir, '--repo', 'alice/private-one', '--private'], {
      HF_TOKEN: WRITE,
      HF_ENDPOINT: hub.baseUrl,
    });
    expect(code, stderr).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ repo: 'alice/private-one', private: true });
    expect(hub.isPrivate('alice/private-one')).toBe(true);
  });

  it('refuses, with exit code 2 and one line each: token, repo id, folder, card, Hub, network', async () => {
    const notPeft = join(tmp, 'not-peft');
    await mkdir(notPeft, { recursive: true });
    await writeFile(join(notPeft, 'adapter_config.json'), '{"r": 8}');
    await writeFile(join(notPeft, 'adapter_model.safetensors'), 'nothing');
    const local = join(tmp, 'local-base');
    await writeFiles(local, hubTestAdapter('stories260K').files);
    const port = await closedPort();
    const endpoint = ['--endpoint', hub.baseUrl];
    const cases: [string[], Record<string, string>, RegExp][] = [
      [
        [dir, '--repo', 'alice/x', ...endpoint],
        {},
        /no token: set HF_TOKEN to a Hub User Access Token with write access/,
      ],
      [
        [dir, '--repo', 'x', ...endpoint],
        { HF_TOKEN: WRITE },
        /"x" is not a Hub repo id: give USER\/NAME/,
      ],
      [[dir, ...endpoint], { HF_TOKEN: WRITE }, /--repo USER\/NAME is required/],
      [
        [join(tmp, 'missing'), '--repo', 'alice/x', ...endpoint],
        { HF_TOKEN: WRITE },
        /missing: does not exist/,
      ],
      [
        [notPeft, '--repo', 'alice/x', ...endpoint],
        { HF_TOKEN: WRITE },
        /adapter_config\.json: has no peft_type/,
      ],
      [
        [local, '--repo', 'alice/x', ...endpoint],
        { HF_TOKEN: WRITE },
        /the base model "stories260K" is not a Hub model id \(owner\/name\)/,
      ],
      [
        [dir, '--repo', 'alice/x', '--gguf', join(dir, 'adapter_model.safetensors'), ...endpoint],
        { HF_TOKEN: WRITE },
        /adapter_model\.safetensors: /,
      ],
      [
        [dir, '--repo', 'alice/x', ...endpoint],
        { HF_TOKEN: READ },
        /the Hub refused the token \(HTTP 403.*lacks write access to alice\/x/,
      ],
      [
        [dir, '--repo', 'alice/x', ...endpoint],
        { HF_TOKEN: 'hf_not_a_known_token_000' },
        /the Hub refused the token \(HTTP 401/,
      ],
      [
        [dir, '--repo', 'alice/x', '--endpoint', `http://127.0.0.1:${port}`],
        { HF_TOKEN: WRITE },
        /could not reach 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/,
      ],
    ];
    const results = await Promise.all(cases.map(([args, env]) => push(args, env)));
    for (const [i, { code, stdout, stderr }] of results.entries()) {
      const [args, , message] = cases[i];
      expect(code, `${args.join(' ')}: ${stderr}`).toBe(2);
      expect(stdout).toBe('');
      expect(stderr).toMatch(/^lora-studio push: [^\n]+\n$/);
      expect(stderr).toMatch(message);
      expect(stderr).not.toContain(WRITE);
      expect(stderr).not.toContain(READ);
    }
    expect(hub.repoFiles('alice/x')).toBeUndefined();
  });
});
