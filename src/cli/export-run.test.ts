// `lora-studio export-run` end to end: a run folder as `train --out` leaves it (checkpoint/ and
// adapter_config.json, written here with the same code), exported to each target; bad input is
// one line on stderr and exit code 2.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runCheckpoint } from '../handoff/test-runs.ts';
import { BUILT_IN } from '../testing/fixtures.ts';
import { checkpointFiles } from '../train/checkpoint-files.ts';
import { writeFiles } from './files.ts';

const execFileAsync = promisify(execFile);
const BIN = new URL('./bin.js', import.meta.url).pathname;

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync('node', [BIN, 'export-run', ...args]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    const { code, stdout, stderr } = e as { code: number; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
}

const DATA = [
  { prompt: 'Q: What colour is the sky?\nA:', completion: ' Blue.' },
  { prompt: 'Q: What do cats say?\nA:', completion: ' Meow.' },
  { prompt: 'Q: How many legs has a dog?\nA:', completion: ' Four.' },
  { prompt: 'Q: Is the sun hot?\nA:', completion: ' Yes.' },
]
  .map((r) => JSON.stringify(r))
  .join('\n');

describe('lora-studio export-run', () => {
  let dir = '';
  let run = '';
  let data = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lora-studio-export-run-'));
    run = join(dir, 'run');
    data = join(dir, 'qa.jsonl');
    await writeFile(data, DATA);
    const checkpoint = runCheckpoint({
      lora: {
        rank: 4,
        alpha: 8,
        rslora: false,
        targets: ['attention'],
        dropout: 0,
        init: 'pissa_niter_4',
        variant: 'dora',
      },
      train: { steps: 30, lr: 5e-4, schedule: 'wsd', warmupSteps: 2, seed: 11 },
      baseModel: 'SmolLM2-135M',
      data: { fileName: 'qa.jsonl', content: DATA },
      seqLen: 32,
      validationFraction: 0.25,
    });
    await writeFiles(join(run, 'checkpoint'), checkpointFiles(checkpoint));
    const adapterConfig = { base_model_name_or_path: 'HuggingFaceTB/SmolLM2-135M', r: 8 };
    await writeFile(join(run, 'adapter_config.json'), JSON.stringify(adapterConfig));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('writes the TRL/PEFT folder and a JSON summary', { timeout: 60_000 }, async () => {
    const out = join(dir, 'trl');
    const { code, stdout, stderr } = await cli(run, '--to', 'trl', '--data', data, '--out', out);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const summary = JSON.parse(stdout) as Record<string, unknown>;
    expect(summary).toMatchObject({
      target: 'trl',
      out,
      model: 'HuggingFaceTB/SmolLM2-135M',
      steps: 30,
      examples: { train: 3, validation: 1 },
    });
    const files = summary.files as string[];
    for (const name of [
      'train.py',
      'run_config.json',
      'README.md',
      'data/train.jsonl',
      'data/validation.jsonl',
      'accelerate/deepspeed_zero2.yaml',
      'accelerate/deepspeed_zero3.yaml',
      'accelerate/fsdp.yaml',
    ]) {
      expect(files).toContain(name);
      await readFile(join(out, name));
    }
    // Only the Train panel's cap on validation sequences has no TRL spelling.
    expect((summary.not_expressed as { setting: string }[]).map((n) => n.setting)).toEqual([
      'Validation sequences per evaluation',
    ]);
    const config = JSON.parse(await readFile(join(out, 'run_config.json'), 'utf8')) as {
      model: string;
      lora: Record<string, unknown>;
      training: Record<string, unknown>;
      init: Record<string, unknown>;
    };
    expect(config.model).toBe('HuggingFaceTB/SmolLM2-135M');
    expect(config.lora).toMatchObject({ r: 4, init_lora_weights: 'pissa_niter_4', use_dora: true });
    expect(config.training).toMatchObject({
      lr_scheduler_type: 'warmup_stable_decay',
      lr_scheduler_kwargs: { num_decay_steps: 6, decay_type: 'linear', min_lr_ratio: 0 },
      seed: 11,
    });
    expect(config.init).toEqual({ data_batches: 0, convert_to_lora: true });
    const accelerate = async (name: string) =>
      parse(await readFile(join(out, 'accelerate', name), 'utf8')) as Record<string, unknown>;
    expect(await accelerate('fsdp.yaml')).toMatchObject({
      distributed_type: 'FSDP',
      fsdp_config: { fsdp_version: 2 },
    });
    expect(await accelerate('deepspeed_zero2.yaml')).toMatchObject({
      distributed_type: 'DEEPSPEED',
      deepspeed_config: { zero_stage: 2 },
    });
    expect(await accelerate('deepspeed_zero3.yaml')).toMatchObject({
      distributed_type: 'DEEPSPEED',
      deepspeed_config: { zero_stage: 3, zero3_init_flag: false },
    });
  });

  it('writes the Axolotl and LLaMA-Factory configs; --model overrides the base', async () => {
    const axolotl = join(dir, 'axolotl');
    const a = await cli(run, '--to', 'axolotl', '--data', data, '--out', axolotl, '--model', '/m');
    expect(a.code).toBe(0);
    const yaml = parse(await readFile(join(axolotl, 'axolotl.yaml'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(yaml).toMatchObject({ base_model: '/m', peft_init_lora_weights: 'pissa_niter_4' });
    // Axolotl keeps the PiSSA adapter as trained: said, not dropped.
    const lost = (JSON.parse(a.stdout) as { not_expressed: { setting: string; why: string }[] })
      .not_expressed;
    expect(lost.map((n) => n.setting)).toContain('Adapter for the original base');
    const readme = await readFile(join(axolotl, 'README.md'), 'utf8');
    for (const { setting, why } of lost) expect(readme).toContain(`- ${setting}: ${why}.`);

    const llamafactory = join(dir, 'llamafactory');
    const l = await cli(run, '--to', 'llamafactory', '--data', data, '--out', llamafactory);
    expect(l.code).toBe(0);
    const config = parse(await readFile(join(llamafactory, 'llamafactory.yaml'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(config).toMatchObject({ pissa_init: true, pissa_iter: 4, pissa_convert: true });
    const info = JSON.parse(
      await readFile(join(llamafactory, 'data/dataset_info.json'), 'utf8'),
    ) as unknown;
    expect(info).toMatchObject({ studio_train: { file_name: 'train.jsonl' } });
  });

  // The folder a real `train` leaves, 2 steps on the built-in model (seconds, on SwiftShader too).
  it('exports the run `lora-studio train --out` just wrote', { timeout: 180_000 }, async () => {
    const trained = join(dir, 'trained');
    await execFileAsync('node', [
      BIN,
      'train',
      ...['--model', `${BUILT_IN}stories260K.bin`, '--data', data, '--out', trained],
      ...['--steps', '2', '--seq-len', '16', '--batch', '2', '--rank', '2', '--alpha', '3'],
      ...['--init', 'olora', '--targets', 'q_proj,v_proj', '--layers', '0,1', '--seed', '4'],
    ]);
    const out = join(dir, 'trained-trl');
    const { code, stdout } = await cli(trained, '--to', 'trl', '--data', data, '--out', out);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ model: null, steps: 2 });
    const config = JSON.parse(await readFile(join(out, 'run_config.json'), 'utf8')) as {
      lora: Record<string, unknown>;
      sft: Record<string, unknown>;
      training: Record<string, unknown>;
    };
    expect(config.lora).toMatchObject({
      r: 2,
      lora_alpha: 3,
      init_lora_weights: 'olora',
      target_modules: ['self_attn.q_proj', 'self_attn.v_proj'],
      layers_to_transform: [0, 1],
    });
    expect(config.sft).toMatchObject({ max_length: 16, completion_only_loss: true });
    expect(config.training).toMatchObject({
      max_steps: 2,
      seed: 4,
      per_device_train_batch_size: 2,
    });
  });

  it('refuses bad input in one line with exit code 2', { timeout: 60_000 }, async () => {
    const empty = join(dir, 'empty');
    await mkdir(empty, { recursive: true });
    const corrupt = join(dir, 'corrupt');
    await mkdir(join(corrupt, 'checkpoint'), { recursive: true });
    await writeFile(join(corrupt, 'checkpoint', 'checkpoint.safetensors'), 'not a checkpoint');
    const other = join(dir, 'other.jsonl');
    await writeFile(other, DATA + '\n{"prompt": "Q?", "completion": " A."}');
    const out = join(dir, 'refused');
    const cases: [string[], RegExp][] = [
      [[join(dir, 'missing'), '--to', 'trl', '--data', data, '--out', out], /does not exist/],
      [[empty, '--to', 'trl', '--data', data, '--out', out], /holds no checkpoint/],
      [
        [run, '--to', 'unsloth', '--data', data, '--out', out],
        /--to must be one of trl, axolotl, llamafactory/,
      ],
      [[corrupt, '--to', 'trl', '--data', data, '--out', out], /checkpoint\.safetensors/],
      [
        [run, '--to', 'trl', '--data', other, '--out', out],
        /not the data the run was trained on \(qa\.jsonl/,
      ],
      [[run, '--to', 'trl', '--out', out], /--data FILE is required.*qa\.jsonl/],
      [[run, '--data', data, '--out', out], /--to and --out are required/],
    ];
    for (const [args, message] of cases) {
      const { code, stdout, stderr } = await cli(...args);
      expect(code, args.join(' ')).toBe(2);
      expect(stdout).toBe('');
      expect(stderr.trimEnd().split('\n'), args.join(' ')).toHaveLength(1);
      expect(stderr).toMatch(/^lora-studio export-run: /);
      expect(stderr).toMatch(message);
    }
    await expect(readFile(join(out, 'README.md'))).rejects.toThrow();
  });
});
