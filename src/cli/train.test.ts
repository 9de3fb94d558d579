// The train command end to end: PEFT files, a checkpoint folder, a JSON summary, and --resume
// continuing the same curve.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { BUILT_IN } from '../testing/fixtures.ts';
import { styleCorpus } from '../studies/style-corpus.ts';

const run = promisify(execFile);
const BIN = new URL('./bin.js', import.meta.url).pathname;

// Each test runs several training processes: minutes on a busy 2-core machine without a GPU.
describe('lora-studio train', () => {
  let dir = '';
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  // With DoRA and LoRA-Pro on: the magnitudes go through the checkpoint folder and the export.
  it(
    'writes a PEFT adapter and a checkpoint, and --resume extends the run',
    { timeout: 300_000 },
    async () => {
      dir = await mkdtemp(join(tmpdir(), 'lora-studio-train-'));
      const data = join(dir, 'style.txt');
      await writeFile(data, styleCorpus(30, 3));
      const out = join(dir, 'out');
      const common = [
        'train',
        '--model',
        `${BUILT_IN}stories260K.bin`,
        '--data',
        data,
        '--out',
        out,
      ];
      const first = await run('node', [
        BIN,
        ...common,
        ...[
          '--init',
          'pissa_niter_2',
          '--rank',
          '4',
          '--steps',
          '3',
          '--warmup',
          '1',
          '--batch',
          '2',
          '--dora',
          '--lora-pro',
        ],
        ...['--seq-len', '32', '--eval-every', '3', '--checkpoint-every', '3', '--lr', '5e-3'],
      ]);
      const summary = JSON.parse(first.stdout) as Record<string, unknown>;
      expect(summary).toMatchObject({ status: 'done', steps: 3, out });
      for (const key of [
        'train_loss_first',
        'train_loss_last',
        'val_loss_first',
        'val_loss_last',
        'tokens_per_second',
      ])
        expect(typeof summary[key], key).toBe('number');
      expect(first.stderr).toMatch(/step 3\/3 {2}loss/);
      const config = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8')) as Record<
        string,
        unknown
      >;
      // PiSSA is exported as a plain LoRA of twice the rank for the unmodified base.
      expect(config).toMatchObject({
        peft_type: 'LORA',
        r: 8,
        lora_alpha: 16,
        task_type: 'CAUSAL_LM',
        use_dora: true,
      });
      expect((await readFile(join(out, 'adapter_model.safetensors'))).length).toBeGreaterThan(1000);

      const resumed = await run('node', [BIN, ...common, '--resume', '--steps', '5']);
      expect(resumed.stderr).toMatch(/resuming at step 3 of 5/);
      expect(JSON.parse(resumed.stdout)).toMatchObject({ status: 'done', steps: 5 });
      const log = JSON.parse(await readFile(join(out, 'training_log.json'), 'utf8')) as {
        step: number;
      }[];
      expect(log.map((p) => p.step)).toEqual([0, 1, 2, 3, 4, 5]);

      // The adapter applies at run time in the other commands: weight 0 is the base model.
      const model = ['--model', `${BUILT_IN}stories260K.bin`];
      const story = ['generate', ...model, '--max-new-tokens', '30'];
      const base = await run('node', [BIN, ...story]);
      const zero = await run('node', [BIN, ...story, '--adapter', `${out}:0`]);
      expect(zero.stdout).toBe(base.stdout);
      const loss = async (...extra: string[]) =>
        (
          JSON.parse(
            (await run('node', [BIN, 'perplexity', ...model, '--data', data, ...extra])).stdout,
          ) as { loss: number }
        ).loss;
      expect(await loss('--adapter', out)).toBeLessThan(await loss());
    },
  );

  it(
    'exports PiSSA recompressed to rank r, or as trained beside its residual base',
    { timeout: 300_000 },
    async () => {
      const data = join(dir, 'style.txt');
      const base = ['--model', `${BUILT_IN}stories260K.bin`];
      const options = [
        ...base,
        '--data',
        data,
        '--init',
        'pissa_niter_2',
        '--rank',
        '4',
        '--steps',
        '2',
      ];
      const quick = [
        '--warmup',
        '0',
        '--batch',
        '2',
        '--seq-len',
        '32',
        '--eval-every',
        '0',
        '--checkpoint-every',
        '0',
      ];
      const recompressed = join(dir, 'recompressed');
      const summary = JSON.parse(
        (
          await run('node', [
            BIN,
            'train',
            ...options,
            ...quick,
            '--out',
            recompressed,
            '--export',
            'recompress',
          ])
        ).stdout,
      ) as { recompress_lost_energy: number };
      expect(summary.recompress_lost_energy).toBeGreaterThan(0);
      expect(summary.recompress_lost_energy).toBeLessThan(0.5);
      const config = JSON.parse(
        await readFile(join(recompressed, 'adapter_config.json'), 'utf8'),
      ) as object;
      expect(config).toMatchObject({ r: 4, lora_alpha: 4, use_rslora: false });

      const residual = join(dir, 'residual');
      await run('node', [
        BIN,
        'train',
        ...options,
        ...quick,
        '--out',
        residual,
        '--export',
        'residual',
      ]);
      expect(
        JSON.parse(await readFile(join(residual, 'adapter_config.json'), 'utf8')),
      ).toMatchObject({ r: 4 });
      // The residual base with its adapter is the trained model; without it, something else.
      const tokenizer = ['--tokenizer', `${BUILT_IN}tok512.bin`];
      const loss = async (...args: string[]) =>
        (
          JSON.parse((await run('node', [BIN, 'perplexity', ...args, '--data', data])).stdout) as {
            loss: number;
          }
        ).loss;
      const residualModel = ['--model', join(residual, 'base-residual'), ...tokenizer];
      expect(await loss(...residualModel, '--adapter', residual)).toBeLessThan(
        await loss(...residualModel),
      );
    },
  );

  // A kill can land between the checkpoint's two writes: checkpoint.json of step N beside the
  // tensors of step N − 1. The tensors carry their own settings, so the resume is exact.
  it(
    'resumes the same run: its own settings, its tensors file alone, the same data',
    { timeout: 300_000 },
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'lora-studio-resume-'));
      const data = join(dir, 'resume.txt');
      await writeFile(data, styleCorpus(24, 5));
      const folder = (name: string) => join(dir, name);
      const flags = [
        ...['--model', `${BUILT_IN}stories260K.bin`, '--data', data, '--rank', '2', '--batch', '2'],
        ...['--seq-len', '24', '--eval-every', '0', '--checkpoint-every', '1', '--warmup', '0'],
      ];
      const train = (out: string, ...extra: string[]) =>
        run('node', [BIN, 'train', ...flags, '--out', folder(out), ...extra]);
      const resume = (out: string, ...extra: string[]) =>
        run('node', [
          BIN,
          'train',
          '--model',
          `${BUILT_IN}stories260K.bin`,
          '--out',
          folder(out),
          '--resume',
          ...extra,
        ]);
      const adapter = (out: string) => readFile(join(folder(out), 'adapter_model.safetensors'));
      const checkpoint = (out: string, file: string) => join(folder(out), 'checkpoint', file);

      await train('whole', '--steps', '3');
      await train('killed', '--steps', '2');
      await train('one-step', '--steps', '1');
      // The kill: step 2's checkpoint.json stays, step 1's tensors are what reached the disk.
      await writeFile(
        checkpoint('killed', 'checkpoint.safetensors'),
        await readFile(checkpoint('one-step', 'checkpoint.safetensors')),
      );
      // No --seq-len, --batch or --rank: they come from the checkpoint, not from the defaults.
      const resumed = await resume('killed', '--data', data, '--steps', '3');
      expect(resumed.stderr).toMatch(/resuming at step 1 of 3/);
      expect(Buffer.compare(await adapter('killed'), await adapter('whole'))).toBe(0);

      const refused = (args: string[]) =>
        resume('whole', ...args).then(
          () => ({ code: 0, stderr: '' }),
          (e: unknown) => e as { code: number; stderr: string },
        );
      const contradiction = await refused(['--data', data, '--seq-len', '64', '--lr', '0.5']);
      expect(contradiction.code).toBe(2);
      expect(contradiction.stderr).toMatch(
        /these contradict it: --seq-len 64 \(the run has 24\), --lr 0.5 \(the run has [\d.e-]+\)/,
      );
      const other = join(dir, 'other.txt');
      await writeFile(other, styleCorpus(24, 6));
      const otherData = await refused(['--data', other]);
      expect(otherData.code).toBe(2);
      expect(otherData.stderr).toMatch(
        /other.txt is not the data the run was trained on \(resume.txt/,
      );
      const forced = await resume('whole', '--data', other, '--force-data', '--steps', '4');
      expect(forced.stderr).toMatch(
        /resuming on other data \(other.txt\): recorded in the checkpoint/,
      );
      const saved = JSON.parse(await readFile(checkpoint('whole', 'checkpoint.json'), 'utf8')) as {
        data: { file: string; replaced: { step: number }[] };
      };
      expect(saved).toMatchObject({
        step: 4,
        data: { file: 'other.txt', replaced: [{ step: 3 }] },
      });
      await rm(dir, { recursive: true, force: true });
    },
  );

  it('refuses a missing checkpoint and bad options with a clear message', async () => {
    const failure = (args: string[]) =>
      run('node', [BIN, 'train', ...args]).then(
        () => ({ code: 0, stderr: '' }),
        (e: unknown) => e as { code: number; stderr: string },
      );
    const missing = await failure([
      '--model',
      'x',
      '--data',
      'y',
      '--out',
      join(dir, 'none'),
      '--resume',
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no checkpoint in/);
    const init = await failure(['--model', 'x', '--data', 'y', '--out', 'z', '--init', 'svd']);
    expect(init.stderr).toMatch(/unknown init "svd"/);
    const basis = await failure(['--model', 'x', '--data', 'y', '--out', 'z', '--basis-seed', '3']);
    expect(basis.code).toBe(2);
    expect(basis.stderr).toMatch(/--basis-seed belongs to --init orthogonal/);
    const slice = ['--init', 'orthogonal', '--basis-slice', '-1'];
    const negative = await failure(['--model', 'x', '--data', 'y', '--out', 'z', ...slice]);
    expect(negative.stderr).toMatch(/--basis-slice must be a whole number ≥ 0/);
    const gamma = await failure([
      '--model',
      'x',
      '--data',
      'y',
      '--out',
      'z',
      '--sorsa-gamma',
      '1',
    ]);
    expect(gamma.code).toBe(2);
    expect(gamma.stderr).toMatch(/--sorsa-gamma belongs to --init sorsa/);
    const sorsa = ['--init', 'sorsa', '--sorsa-gamma', '-1'];
    const below = await failure(['--model', 'x', '--data', 'y', '--out', 'z', ...sorsa]);
    expect(below.stderr).toMatch(/--sorsa-gamma must be a number ≥ 0/);
    const args = ['--model', 'x', '--data', 'y', '--out', 'z'];
    const spiel = await failure([...args, '--sparse', 'spiel']);
    expect(spiel.code).toBe(2);
    expect(spiel.stderr).toMatch(/--sparse spiel: SpIEL .* is not in this version/);
    const both = await failure([...args, '--sparse', 's2ft', '--init', 'pissa']);
    expect(both.stderr).toMatch(/--sparse s2ft is its own init; drop --init pissa/);
    const density = await failure([...args, '--density', '0.2']);
    expect(density.stderr).toMatch(/--density belongs to --sparse s2ft/);
    const dense = await failure([...args, '--sparse', 's2ft', '--density', '1.5']);
    expect(dense.stderr).toMatch(/--density must be in \(0, 1\]/);
  });
});
