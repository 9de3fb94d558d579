// The train command's AdamW settings: the flags reach the run, its checkpoint keeps them, and
// --resume continues with the saved ones (and refuses others).
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { Checkpoint } from '../train/trainer.ts';
import { styleCorpus } from '../studies/style-corpus.ts';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('./bin.js', import.meta.url));
const STORIES = fileURLToPath(new URL('../../public/models/stories260K.bin', import.meta.url));

describe('lora-studio train --adam-beta1 / --adam-beta2 / --adam-epsilon', () => {
  let dir = '';
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it(
    'trains with them, saves them in the checkpoint and resumes with them',
    { timeout: 300_000 },
    async () => {
      dir = await mkdtemp(join(tmpdir(), 'lora-studio-adam-'));
      const data = join(dir, 'style.txt');
      await writeFile(data, styleCorpus(12, 5));
      const out = join(dir, 'out');
      const common = ['train', '--model', STORIES, '--data', data, '--out', out];
      const small = ['--rank', '2', '--batch', '2', '--seq-len', '32', '--warmup', '0'];
      const adam = ['--adam-beta1', '0.8', '--adam-beta2', '0.99', '--adam-epsilon', '1e-6'];
      await run('node', [BIN, ...common, ...small, ...adam, '--steps', '1']);
      const saved = async () =>
        (
          JSON.parse(
            await readFile(join(out, 'checkpoint', 'checkpoint.json'), 'utf8'),
          ) as Checkpoint
        ).config.train;
      const expected = { adamBeta1: 0.8, adamBeta2: 0.99, adamEpsilon: 1e-6 };
      expect(await saved()).toMatchObject(expected);

      // A resumed run keeps its own settings: another AdamW flag contradicts it and is refused.
      const other = ['--adam-beta1', '0.5'];
      const contradiction = await run('node', [BIN, ...common, '--resume', ...other]).catch(
        (e: unknown) => e as { code: number; stderr: string },
      );
      expect(contradiction).toMatchObject({ code: 2 });
      expect((contradiction as { stderr: string }).stderr).toMatch(
        /--adam-beta1 0.5 \(the run has 0.8\)/,
      );
      const resumed = await run('node', [BIN, ...common, '--resume', '--steps', '2']);
      expect(JSON.parse(resumed.stdout)).toMatchObject({ status: 'done', steps: 2 });
      expect(await saved()).toMatchObject({ ...expected, steps: 2 });

      const refused = await run('node', [BIN, ...common, ...small, '--adam-beta2', '1']).catch(
        (e: unknown) => e as { stderr: string },
      );
      expect(refused.stderr).toMatch(/adam_beta2 must be in \[0, 1\)/);
    },
  );
});
