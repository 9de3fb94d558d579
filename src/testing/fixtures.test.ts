// The repository stands on its own: fixtures/MANIFEST.md lists exactly the files in fixtures/
// with their hashes, the generated ones are what the generator makes, and nothing in the tree
// reads from outside the repository.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { builtIn, fixture, FIXTURES } from './fixtures.ts';
import { generatedFixtures } from './generated-fixtures.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)));
}

describe('fixtures/', () => {
  it('MANIFEST.md lists every file with its size and sha256', () => {
    const manifest = readFileSync(`${FIXTURES}MANIFEST.md`, 'utf8');
    const rows = manifest
      .split('\n')
      .map((line) => /^\| `([^`]+)` \|.*\| (\d+) \| `([0-9a-f]{64})` \|/.exec(line))
      .filter((m) => m !== null);
    const listed = rows.map((m) => m[1]).sort();
    const present = filesUnder(FIXTURES)
      .filter((f) => f !== 'MANIFEST.md' && !f.startsWith('LICENSES/'))
      .sort();
    expect(listed).toEqual(present);
    for (const [, path, bytes, sha256] of rows) {
      const data = fixture(path);
      expect(data.byteLength, path).toBe(Number(bytes));
      expect(createHash('sha256').update(data).digest('hex'), path).toBe(sha256);
    }
  });

  it('holds exactly what the generator makes, byte for byte', () => {
    for (const [folder, files] of generatedFixtures(builtIn('tok512.bin')))
      for (const [name, bytes] of files)
        expect(Buffer.compare(fixture(`${folder}/${name}`), bytes), `${folder}/${name}`).toBe(0);
  });
});

it('no file in the repository points outside it (a clone has nothing beside it)', () => {
  const tracked = ['src', 'e2e', 'shaders', 'docs', '.ci']
    .flatMap((dir) => filesUnder(ROOT + dir).map((f) => `${dir}/${f}`))
    .concat(['README.md', 'package.json', 'vite.config.ts', 'public/models/README.md']);
  const outside = tracked.filter(
    (f) =>
      f !== 'src/testing/fixtures.test.ts' &&
      /\.\.\/shared\b|\/work\/shared|shared\/(fixtures|DESIGN|TOOLCHAIN|SWIFTSHADER)/.test(
        readFileSync(ROOT + f, 'utf8'),
      ),
  );
  expect(outside).toEqual([]);
});
