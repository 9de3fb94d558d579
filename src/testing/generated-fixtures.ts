// Fixtures the project makes itself. Where a test needs the shape of a real file whose source
// states no licence (two GPT-2 PEFT adapters, a TinyLlama tokenizer, a pickled adapter), it uses
// one of these instead: the same layout and the same code paths, with seeded random values or
// values derived from a file we may ship. `npm run fixtures` writes them into fixtures/;
// fixtures.test.ts checks that the committed files are exactly what this module makes.
import { strToU8, zipSync } from 'fflate';
import { readLlama2cTokenizer } from '../model/llama2c-tokenizer.ts';
import { writeSafetensors, type TensorToWrite } from '../model/safetensors.ts';
import { randomArray, seededRandom } from './random.ts';

type Files = Map<string, Uint8Array>;

const json = (value: unknown) => strToU8(`${JSON.stringify(value, null, 2)}\n`);

/** PEFT 0.17's LoraConfig keys with their defaults; each adapter overrides what it sets. */
function peftConfig(fields: Record<string, unknown>): Record<string, unknown> {
  return {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: null,
    bias: 'none',
    corda_config: null,
    eva_config: null,
    exclude_modules: null,
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: 8,
    lora_bias: false,
    lora_dropout: 0,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    peft_type: 'LORA',
    r: 8,
    rank_pattern: {},
    revision: null,
    target_modules: [],
    target_parameters: null,
    task_type: 'CAUSAL_LM',
    trainable_token_indices: null,
    use_dora: false,
    use_rslora: false,
    ...fields,
  };
}

/** GPT-2 small's shapes: 12 blocks of width 768; c_attn is the fused q/k/v Conv1D (768 → 2304). */
const GPT2 = { layers: 12, width: 768, cAttn: 2304 };

/**
 * A PEFT LoRA on GPT-2 small's `c_attn` (Conv1D, so `fan_in_fan_out: true`), rank 8, trained
 * looking: A kaiming-scaled, B small but nonzero. `seqcls` adds a SEQ_CLS task's classifier
 * head, stored whole beside the factors as `score.weight` [labels, 768].
 */
function gpt2Adapter(seed: number, task: 'CAUSAL_LM' | 'SEQ_CLS'): Files {
  const random = seededRandom(seed);
  const rank = 8;
  const tensors: TensorToWrite[] = [];
  if (task === 'SEQ_CLS')
    tensors.push({
      name: 'base_model.model.score.weight',
      shape: [6, GPT2.width],
      data: randomArray(random, 6 * GPT2.width, -0.05, 0.05),
    });
  const bound = 1 / Math.sqrt(GPT2.width);
  for (let layer = 0; layer < GPT2.layers; layer++) {
    const key = `base_model.model.transformer.h.${layer}.attn.c_attn`;
    tensors.push(
      {
        name: `${key}.lora_A.weight`,
        shape: [rank, GPT2.width],
        data: randomArray(random, rank * GPT2.width, -bound, bound),
      },
      {
        name: `${key}.lora_B.weight`,
        shape: [GPT2.cAttn, rank],
        data: randomArray(random, GPT2.cAttn * rank, -0.02, 0.02),
      },
    );
  }
  const config = peftConfig({
    base_model_name_or_path: task === 'SEQ_CLS' ? 'gpt2' : 'openai-community/gpt2',
    fan_in_fan_out: true,
    lora_alpha: task === 'SEQ_CLS' ? 8 : 16,
    lora_dropout: 0.05,
    r: rank,
    target_modules: ['c_attn'],
    task_type: task,
  });
  return new Map([
    ['adapter_config.json', json(config)],
    ['adapter_model.safetensors', writeSafetensors(tensors, { format: 'pt' })],
  ]);
}

/**
 * An adapter saved the legacy way, `adapter_model.bin` as torch.save writes it: a zip holding
 * `archive/data.pkl`. The pickle only builds an empty dict, but no test may ever open it: the
 * point is that a pickle is refused by what it is, unread.
 */
function pickledAdapter(): Files {
  // Protocol 2: PROTO 2, EMPTY_DICT, BINPUT 0, STOP.
  const pickle = new Uint8Array([0x80, 0x02, 0x7d, 0x71, 0x00, 0x2e]);
  const zip = zipSync(
    { 'archive/data.pkl': pickle, 'archive/version': strToU8('3\n') },
    { mtime: new Date('2026-01-01T00:00:00Z') },
  );
  const config = peftConfig({
    base_model_name_or_path: 'TinyLlama/TinyLlama-1.1B-intermediate-step-480k-1T',
    lora_alpha: 32,
    lora_dropout: 0.05,
    r: 8,
    target_modules: ['q_proj', 'v_proj'],
  });
  return new Map([
    ['adapter_config.json', json(config)],
    ['adapter_model.bin', zip],
  ]);
}

/** SentencePiece writes a word-initial space as ▁ (U+2581). */
const SPACE = '\u2581';

/**
 * The llama2.c tokenizer tok512.bin (MIT, shipped in public/models) as a Hugging Face
 * tokenizer.json of the kind Llama 2 and TinyLlama publish: SentencePiece BPE with byte
 * fallback, ▁ for spaces, a ▁ prepended to the text, BOS added. The merges are derived the way
 * the usual SentencePiece → tokenizers conversion derives them: every split of a vocabulary
 * piece into two pieces is a merge, ranked by the merged piece's score. llama2.c's greedy
 * highest-score merging then gives the same ids (tested in src/model/tokenizer.test.ts).
 * tokenizer_config.json carries a Zephyr-style chat template, as TinyLlama-Chat's does.
 */
function sentencePieceTokenizer(tok512: Uint8Array): Files {
  const tokenizer = readLlama2cTokenizer(tok512, 512, 'tok512.bin');
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const pieces = tokenizer.vocab.map((bytes, id) => {
    if (id === 0) return '<unk>';
    if (id === 1) return '<s>';
    if (id === 2) return '</s>';
    if (id < 259) return `<0x${(id - 3).toString(16).toUpperCase().padStart(2, '0')}>`;
    return utf8.decode(bytes).replaceAll(' ', SPACE);
  });
  const vocab = Object.fromEntries(pieces.map((p, id) => [p, id]));
  const merges: { left: string; right: string; score: number; id: number }[] = [];
  for (let id = 259; id < pieces.length; id++) {
    const piece = Array.from(pieces[id]); // by code point, as SentencePiece splits
    for (let i = 1; i < piece.length; i++) {
      const left = piece.slice(0, i).join('');
      const right = piece.slice(i).join('');
      if (left in vocab && right in vocab)
        merges.push({ left, right, score: tokenizer.scores[id], id });
    }
  }
  merges.sort((a, b) => b.score - a.score || a.id - b.id || vocab[a.left] - vocab[b.left]);
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: SPACE },
        { type: 'Replace', pattern: { String: ' ' }, content: SPACE },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPACE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: merges.map((m) => [m.left, m.right]),
    },
  };
  const template =
    "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + '\\n' }}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";
  const tokenizerConfig = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    pad_token: '</s>',
    model_max_length: 512,
    tokenizer_class: 'LlamaTokenizer',
    chat_template: template,
  };
  return new Map([
    ['tokenizer.json', json(tokenizerJson)],
    ['tokenizer_config.json', json(tokenizerConfig)],
  ]);
}

/**
 * Every generated fixture folder (relative to fixtures/) with its files; `tok512` is the
 * shipped llama2.c tokenizer the SentencePiece one is converted from.
 */
export function generatedFixtures(tok512: Uint8Array): Map<string, Files> {
  return new Map([
    ['adapters/gpt2/generated-causal-c_attn', gpt2Adapter(2001, 'CAUSAL_LM')],
    ['adapters/gpt2/generated-seqcls-c_attn', gpt2Adapter(2002, 'SEQ_CLS')],
    ['adapters/tinyllama-1.1b/generated-pickle', pickledAdapter()],
    ['tokenizers/sentencepiece-tok512', sentencePieceTokenizer(tok512)],
  ]);
}
