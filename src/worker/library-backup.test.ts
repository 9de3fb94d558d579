// The whole library as one zip and back, through the Studio API: every adapter returns with its
// files byte for byte, its name, origin, time and Hub ref; a zip that is no
// library export, or whose manifest or files are broken, is refused in one line and adds nothing.
import { strToU8, unzipSync, zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { LIBRARY_MANIFEST } from '../adapters/library-zip.ts';
import { readLlama2c } from '../model/llama2c.ts';
import { builtIn } from '../testing/fixtures.ts';
import { randomAdapterFiles } from '../testing/random-adapter.ts';
import { nodeStudio } from '../testing/studio.ts';

const storiesAdapter = (seed: number) =>
  randomAdapterFiles(readLlama2c(builtIn('stories260K.bin'), 'stories260K.bin').config, {
    seed,
    rank: 2,
    alpha: 4,
    range: 0.3,
    baseModel: 'stories260K (built-in)',
    modules: ['q_proj', 'v_proj'],
  });

/** A studio with its GPU (imports restore compressed adapters on it). */
async function connected() {
  const studio = nodeStudio();
  await studio.connect(() => undefined);
  return studio;
}
const asFiles = (files: Map<string, Uint8Array>) =>
  [...files].map(([name, bytes]) => ({ name, bytes }));

describe('the library as one zip', () => {
  it('restores every adapter as it was, in another browser, beside what is there', async () => {
    const home = await connected();
    const { item: zimmy } = await home.importAdapter(asFiles(storiesAdapter(1)), { name: 'zimmy' });
    const ref = { repo: 'erin/zimmy', revision: 'a'.repeat(40) };
    await home.setAdapterHub(zimmy.id, ref);
    // Two adapters of one name get two folders.
    await home.importAdapter(asFiles(storiesAdapter(2)), { name: 'snorp / v2' });
    await home.importAdapter(asFiles(storiesAdapter(3)), { name: 'snorp / v2' });
    const zip = await home.libraryZip();
    expect(zip.name).toBe('lora-studio-library.zip');
    expect(Object.keys(unzipSync(zip.bytes)).sort()).toEqual([
      'library.json',
      'snorp-v2-2/adapter_config.json',
      'snorp-v2-2/adapter_model.safetensors',
      'snorp-v2/adapter_config.json',
      'snorp-v2/adapter_model.safetensors',
      'zimmy/adapter_config.json',
      'zimmy/adapter_model.safetensors',
    ]);

    const away = await connected();
    await away.importAdapter(asFiles(storiesAdapter(4)), { name: 'already here' });
    const { names } = await away.restoreLibrary(zip.bytes, zip.name);
    expect(names.sort()).toEqual(['snorp / v2', 'snorp / v2', 'zimmy']);
    const before = await home.listAdapters();
    const after = await away.listAdapters();
    expect(after.map((i) => i.name).sort()).toEqual([
      'already here',
      'snorp / v2',
      'snorp / v2',
      'zimmy',
    ]);
    for (const original of before) {
      const restored = after.filter(
        (i) => i.name === original.name && i.createdAt === original.createdAt,
      );
      expect(restored, original.name).toHaveLength(1);
      const [copy] = restored;
      expect([copy.origin, copy.baseModel, copy.hub]).toEqual([
        original.origin,
        original.baseModel,
        original.hub,
      ]);
      expect(await away.adapterFiles(copy.id)).toEqual(await home.adapterFiles(original.id));
    }
    expect(after.find((i) => i.name === 'zimmy')?.hub).toEqual(ref);
  });

  it('refuses in one line a zip that is no library export or is broken, adding nothing', async () => {
    const studio = await connected();
    const home = await connected();
    await home.importAdapter(asFiles(storiesAdapter(1)), { name: 'zimmy' });
    const good = unzipSync((await home.libraryZip()).bytes);
    const manifest = JSON.parse(new TextDecoder().decode(good[LIBRARY_MANIFEST])) as {
      adapters: Record<string, unknown>[];
    };
    const withManifest = (change: (m: typeof manifest) => unknown, files = good) =>
      zipSync({
        ...files,
        [LIBRARY_MANIFEST]: strToU8(JSON.stringify(change(structuredClone(manifest)))),
      });
    const cases: [Uint8Array, RegExp][] = [
      [
        zipSync({ 'zimmy/adapter_config.json': good['zimmy/adapter_config.json'] }),
        /is no library export: it has no library\.json/,
      ],
      [
        zipSync({ ...good, [LIBRARY_MANIFEST]: strToU8('{not json') }),
        /library\.json that is not JSON/,
      ],
      [
        withManifest((m) => ({ ...m, lora_studio_library: 9 })),
        /this version of the studio does not read/,
      ],
      [
        withManifest((m) => {
          m.adapters[0].folder = '../etc';
          return m;
        }),
        /adapter 1 names no folder of its own/,
      ],
      [
        withManifest((m) => {
          m.adapters.push(m.adapters[0]);
          return m;
        }),
        /adapter 2 names no folder of its own/,
      ],
      [
        withManifest((m) => {
          m.adapters[0].hub = { repo: 'no' };
          return m;
        }),
        /Hub ref that is no repo id/,
      ],
      [
        withManifest((m) => {
          m.adapters[0].created_at = 'yesterday';
          return m;
        }),
        /has no creation time/,
      ],
      [
        withManifest((m) => m, {
          ...good,
          'zimmy/adapter_model.safetensors': strToU8('truncated'),
        }),
        /^backup\.zip: zimmy\/: adapter_model\.safetensors: /,
      ],
      [strToU8('not a zip at all'), /./],
    ];
    for (const [bytes, expected] of cases) {
      const message = await studio.restoreLibrary(bytes, 'backup.zip').then(
        () => 'restored',
        (e: unknown) => (e as Error).message,
      );
      expect(message).toMatch(expected);
      expect(message.startsWith('backup.zip')).toBe(true);
      expect(await studio.listAdapters()).toEqual([]);
    }
  });
});
