import { describe, expect, it } from 'vitest';
import { builtIn, fixtureJson, FIXTURES } from '../testing/fixtures.ts';
import { hfFolderFiles } from './hf-export.ts';
import { readLlama2c } from './llama2c.ts';
import { ReferenceModel } from './cpu/reference.ts';
import { folderFiles } from './files-node.ts';
import { parseHfConfig } from './hf-config.ts';
import { loadHfFolder, openHfFolder, type ModelFile } from './hf-folder.ts';
import { writeSafetensors } from './safetensors.ts';

const SHARDED = `${FIXTURES}models/hf/quatricmorph_tiny-llama-2shard`;

const jsonFile = (name: string, value: unknown): ModelFile => ({
  name,
  bytes: () => Promise.resolve(new TextEncoder().encode(JSON.stringify(value))),
});

describe('Hugging Face model folders', () => {
  it('reads a folder on disk a tensor at a time: headers first, each weight when asked', async () => {
    const read: number[] = [];
    const files = (await folderFiles(SHARDED)).map((f) => ({
      ...f,
      bytes: () =>
        f.name.endsWith('.safetensors') ? Promise.reject(new Error('whole file')) : f.bytes(),
      range: (start: number, end: number) => {
        read.push(end - start);
        return f.range!(start, end);
      },
    }));
    const folder = await openHfFolder(files);
    const headers = read.reduce((n, b) => n + b, 0);
    expect(headers).toBeLessThan(64 * 1024);
    const whole = await loadHfFolder(await folderFiles(SHARDED));
    expect(folder.names.sort()).toEqual([...whole.weights.keys()].sort());
    const name = 'model.layers.0.mlp.gate_proj.weight';
    expect(await folder.read(name)).toEqual(whole.weights.get(name));
    expect(read.reduce((n, b) => n + b, 0) - headers).toBe(
      2 * whole.weights.get(name)!.data.length,
    );
  });

  it('loads the sharded fixture (explicit head_dim, GQA, a BF16 tensor per shard) and runs it', async () => {
    const { config, weights } = await loadHfFolder(await folderFiles(SHARDED));
    expect(config).toMatchObject({
      hiddenSize: 48,
      headDim: 16,
      numHeads: 8,
      numKvHeads: 2,
      numLayers: 12,
    });
    expect(weights.size).toBe(111);
    expect(weights.get('model.layers.0.self_attn.q_proj.weight')?.shape).toEqual([128, 48]);
    // Which weights the file held in half precision (the GPU may keep them so).
    const halves = [...weights].filter(([, t]) => t.half).map(([name, t]) => [name, t.half]);
    expect(halves).toEqual([
      ['model.layers.0.mlp.gate_proj.weight', 'bf16'],
      ['model.layers.11.mlp.up_proj.weight', 'bf16'],
    ]);
    const logits = new ReferenceModel(config, weights).step(1, 0);
    expect(logits.length).toBe(64);
    expect(logits.every(Number.isFinite)).toBe(true);
  });

  it('lists missing shards, weights and wrong shapes precisely', async () => {
    const files = (await folderFiles(SHARDED)).filter(
      (f) => !f.name.endsWith('00002-of-00002.safetensors'),
    );
    await expect(loadHfFolder(files)).rejects.toThrow(
      /model-00002-of-00002.safetensors: is missing from the model folder/,
    );

    const config = fixtureJson('models/hf/quatricmorph_tiny-llama-2shard/config.json') as object;
    const tiny = { ...config, num_hidden_layers: 1 };
    const wrong = writeSafetensors([
      { name: 'model.embed_tokens.weight', shape: [64, 47], data: new Float32Array(64 * 47) },
    ]);
    const folder = [
      jsonFile('config.json', tiny),
      { name: 'model.safetensors', bytes: () => Promise.resolve(wrong) },
    ];
    const error = (await loadHfFolder(folder).catch((e: unknown) => e)) as Error;
    expect(error.message).toMatch(
      /model\.embed_tokens\.weight: shape \[64, 47\] in model\.safetensors, config\.json implies \[64, 48\]/,
    );
    expect(error.message).toMatch(
      /missing weights: model\.embed_tokens\.weight, model\.layers\.0\.input_layernorm\.weight, .*, and \d+ more/,
    );

    // An absurd layer count is refused at once and in little memory: by the config itself, or
    // from the tensor count.
    const start = performance.now();
    const layers = (n: number) => [
      jsonFile('config.json', { ...config, num_hidden_layers: n }),
      folder[1],
    ];
    await expect(loadHfFolder(layers(10_000_000))).rejects.toThrow(
      /num_hidden_layers 10000000 is beyond any model this engine runs \(at most 1024\)/,
    );
    await expect(loadHfFolder(layers(1000))).rejects.toThrow(
      /num_hidden_layers 1000 needs at least one tensor per layer, but the weights hold 1 in all/,
    );
    expect(performance.now() - start).toBeLessThan(1000);
  });
});

describe('config.json', () => {
  const base = {
    model_type: 'llama',
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    vocab_size: 100,
  };

  it('fills HF defaults: KV heads = heads, head_dim = hidden / heads, untied', () => {
    const config = parseHfConfig(base);
    expect(config).toMatchObject({ numKvHeads: 4, headDim: 16, tieWordEmbeddings: false });
    expect(config.arch.modules.every((m) => !m.bias)).toBe(true);
    const qwen = parseHfConfig({ ...base, model_type: 'qwen2', eos_token_id: [5, 7] });
    expect(qwen.eosTokenIds).toEqual([5, 7]);
    expect(qwen.arch.modules.filter((m) => m.bias).map((m) => m.name)).toEqual([
      'q_proj',
      'k_proj',
      'v_proj',
    ]);
  });

  it('reads the configs of the small models people fine-tune (key sets of their releases)', () => {
    const llama32 = parseHfConfig({
      ...base,
      hidden_size: 2048,
      num_attention_heads: 32,
      num_key_value_heads: 8,
      head_dim: 64,
      max_position_embeddings: 131072,
      rope_theta: 500000,
      tie_word_embeddings: true,
      eos_token_id: [128001, 128008, 128009],
      rope_scaling: {
        factor: 32,
        high_freq_factor: 4,
        low_freq_factor: 1,
        original_max_position_embeddings: 8192,
        rope_type: 'llama3',
      },
    });
    expect(llama32.maxPositions).toBe(8192);
    expect(llama32.arch.head).toBe('model.embed_tokens');
    const gemma = parseHfConfig({
      ...base,
      model_type: 'gemma3_text',
      head_dim: 256,
      num_key_value_heads: 1,
      query_pre_attn_scalar: 256,
      sliding_window: 512,
      _sliding_window_pattern: 6,
      num_hidden_layers: 18,
      layer_types: undefined,
      torch_dtype: 'bfloat16',
      hidden_size: 640,
      hidden_activation: 'gelu_pytorch_tanh',
    });
    // 5 local layers of every 6, the embedding scale √640 rounded to bf16 as transformers does.
    expect(gemma.arch.layers.map((l) => (l.window === null ? 'G' : 'L')).join('')).toBe(
      'LLLLLGLLLLLGLLLLLG',
    );
    expect(gemma.arch.embedScale).toBe(25.25);
  });

  it.each([
    [
      { ...base, model_type: 'bert' },
      /model_type "bert" is not supported \(supported: llama, mistral, qwen2, qwen3, gemma3_text, smollm3, phi3, gpt2\)/,
    ],
    [
      { ...base, rope_scaling: { rope_type: 'yarn', factor: 4 } },
      /rope_scaling type "yarn" is not supported/,
    ],
    [{ ...base, hidden_act: 'gelu' }, /unsupported features: hidden_act "gelu" \(only "silu"\)/],
    [
      {
        ...base,
        model_type: 'gemma3_text',
        attn_logit_softcapping: 50,
        use_bidirectional_attention: true,
      },
      /unsupported features: attn_logit_softcapping, use_bidirectional_attention/,
    ],
    [{ ...base, head_dim: 7 }, /RoPE needs an even number of rotating dims per head, not 7/],
    [{ ...base, num_key_value_heads: 3 }, /not a multiple of num_key_value_heads 3/],
    [{ ...base, hidden_size: -1 }, /hidden_size must be a positive integer/],
  ])('refuses %j', (config, message) => {
    expect(() => parseHfConfig(config)).toThrow(message);
  });
});

describe('export to an HF folder', () => {
  it('writes llama2.c’s stories260K as config.json + safetensors that load back to the same model', async () => {
    const original = readLlama2c(builtIn('stories260K.bin'), 'stories260K.bin');
    const files = hfFolderFiles(original.config, original.weights);
    const folder = [...files].map(([name, bytes]) => ({
      name,
      bytes: () => Promise.resolve(bytes),
    }));
    const loaded = await loadHfFolder(folder);
    expect(loaded.config).toMatchObject({ ...original.config, modelType: 'llama' });
    const a = new ReferenceModel(original.config, original.weights);
    const b = new ReferenceModel(loaded.config, loaded.weights);
    for (const [pos, token] of [1, 50, 300, 7].entries())
      expect(b.step(token, pos)).toEqual(a.step(token, pos));
  });
});
