// Adapters from the Hub through the Studio API (a fake Hub on 127.0.0.1): a repo at main or at a
// commit lands in the library knowing where it came from, a commit already there is not
// downloaded again, a pushed adapter records its repo and commit, and a repo without an adapter,
// with only a pickle, or with an adapter for another model is refused in one line.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushToHub } from '../hub/push.ts';
import { readLlama2c } from '../model/llama2c.ts';
import { memoryFileCache, startFakeHub, type FakeHub } from '../testing/fake-hub.ts';
import { builtIn } from '../testing/fixtures.ts';
import { hubTestAdapter } from '../testing/hub-adapter.ts';
import { randomAdapterFiles } from '../testing/random-adapter.ts';
import { nodeStudio } from '../testing/studio.ts';
import type { StudioApi } from './api.ts';

const BUILT_IN = 'stories260K (built-in)';
const TOKEN = 'hf_worker_test_write_token';

describe('adapters from the Hub', () => {
  let hub: FakeHub;
  let studio: StudioApi;
  const storiesAdapter = (seed: number) =>
    randomAdapterFiles(readLlama2c(builtIn('stories260K.bin'), 'stories260K.bin').config, {
      seed,
      rank: 2,
      alpha: 4,
      range: 0.3,
      baseModel: BUILT_IN,
      modules: ['q_proj', 'v_proj'],
    });
  const zimmy = storiesAdapter(1);
  const card = new TextEncoder().encode('---\nbase_model: stories260K\n---\n\n# Zimmy\n');

  beforeAll(async () => {
    hub = await startFakeHub(
      {
        'erin/zimmy': new Map([...zimmy, ['README.md', card]]),
        'erin/pickled': new Map([
          ['adapter_config.json', zimmy.get('adapter_config.json')!],
          ['adapter_model.bin', new Uint8Array([0x80, 0x02, 0x7d])],
        ]),
        'erin/llama-adapter': hubTestAdapter().files,
      },
      { tokens: { [TOKEN]: 'write' } },
    );
    studio = nodeStudio({ fileCache: memoryFileCache() });
    await studio.connect(() => undefined);
    await studio.loadBuiltinModel();
  });
  afterAll(async () => {
    await hub.close();
  });

  const options = () => ({ baseUrl: hub.baseUrl });

  it('imports a repo at main: its PEFT files and card as the Hub keeps them, named and marked by the repo', async () => {
    const { item, warnings, reused } = await studio.importAdapterFromHub(
      { repo: 'erin/zimmy' },
      options(),
    );
    expect([item.name, item.origin, item.hub, reused, warnings]).toEqual([
      'zimmy',
      'from the Hub: erin/zimmy',
      { repo: 'erin/zimmy' },
      false,
      [],
    ]);
    expect(item.fits).toBeUndefined();
    // The model card travels with the two PEFT files.
    const files = await studio.adapterFiles(item.id);
    expect(new Map(files.map((f) => [f.name, f.bytes]))).toEqual(
      new Map([...zimmy, ['README.md', card]]),
    );
    expect((await studio.listAdapters()).find((i) => i.id === item.id)?.fits).toBe(true);
  });

  it('finds an adapter pushed at a commit in the library instead of downloading it again', async () => {
    const snorp = storiesAdapter(2);
    const pushed = await pushToHub(
      [...snorp].map(([path, bytes]) => ({ path, bytes })),
      { repo: 'erin/snorp', token: TOKEN, endpoint: hub.baseUrl },
    );
    const ref = { repo: 'erin/snorp', revision: pushed.commit.oid };
    const first = await studio.importAdapterFromHub(ref, options());
    expect([first.reused, first.item.hub, first.item.origin]).toEqual([
      false,
      ref,
      `from the Hub: erin/snorp@${pushed.commit.oid.slice(0, 7)}`,
    ]);
    const requests = hub.requests.length;
    const again = await studio.importAdapterFromHub(ref, options());
    expect([again.reused, again.item.id]).toEqual([true, first.item.id]);
    expect(hub.requests.length).toBe(requests);
    // A branch may have moved: main is downloaded (through the cache) into a new entry.
    const main = await studio.importAdapterFromHub({ repo: 'erin/snorp' }, options());
    expect([main.reused, main.item.id === first.item.id]).toEqual([false, false]);
  });

  it('records where a library adapter was pushed', async () => {
    const { item } = await studio.importAdapter(
      [...storiesAdapter(3)].map(([name, bytes]) => ({ name, bytes })),
      { name: 'local' },
    );
    expect(item.hub).toBeUndefined();
    const ref = { repo: 'erin/local', revision: 'f'.repeat(40) };
    expect((await studio.setAdapterHub(item.id, ref)).hub).toEqual(ref);
    expect((await studio.listAdapters()).find((i) => i.id === item.id)?.hub).toEqual(ref);
  });

  it('refuses in one line what is no adapter for this model, keeping a misfit when asked', async () => {
    const count = (await studio.listAdapters()).length;
    const refusal = (ref: { repo: string; revision?: string }) =>
      studio.importAdapterFromHub(ref, options()).then(
        () => 'accepted',
        (e: unknown) => (e as Error).message,
      );
    expect(await refusal({ repo: 'erin/nothing-here' })).toMatch(
      /^erin\/nothing-here: has no PEFT adapter on the Hub \(adapter_config\.json: HTTP 404\)$/,
    );
    expect(await refusal({ repo: 'erin/zimmy', revision: 'no-such-branch' })).toMatch(
      /^erin\/zimmy@no-such-branch: has no PEFT adapter on the Hub/,
    );
    expect(await refusal({ repo: 'erin/pickled' })).toMatch(
      /^erin\/pickled: has no adapter_model\.safetensors on the Hub \(HTTP 404\); the studio never loads the pickled adapter_model\.bin$/,
    );
    expect(await refusal({ repo: 'erin/llama-adapter' })).toMatch(
      /^llama-adapter: an adapter for unsloth\/Llama-3\.2-1B-Instruct; the loaded model is stories260K \(built-in\)\. It does not fit this model:\n {2}model\.layers\.0\.self_attn\.q_proj: adapter expects in=256, model has 64/,
    );
    expect((await studio.listAdapters()).length).toBe(count);
    const forced = await studio.importAdapterFromHub(
      { repo: 'erin/llama-adapter' },
      { ...options(), force: true },
    );
    expect(forced.warnings.join('\n')).toMatch(/does not fit stories260K \(built-in\)/);
    expect(forced.warnings.join('\n')).toMatch(/trained on unsloth\/Llama-3\.2-1B-Instruct/);
  });
});
