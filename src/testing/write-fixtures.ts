// `npm run fixtures`: writes the fixtures the project generates (generated-fixtures.ts) into
// fixtures/. Run it after changing the generator, then update fixtures/MANIFEST.md.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { BUILT_IN, FIXTURES } from './fixtures.ts';
import { generatedFixtures } from './generated-fixtures.ts';

for (const [folder, files] of generatedFixtures(readFileSync(`${BUILT_IN}tok512.bin`))) {
  mkdirSync(FIXTURES + folder, { recursive: true });
  for (const [name, bytes] of files) writeFileSync(`${FIXTURES}${folder}/${name}`, bytes);
  console.log(`${folder}: ${[...files.keys()].join(', ')}`);
}
