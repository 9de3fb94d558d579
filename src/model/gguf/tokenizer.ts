// A GGUF model's tokenizer (the `tokenizer.ggml.*` metadata, gguf-py's constants.py
// Keys.Tokenizer) as the tokenizer.json Hugging Face would hold for it, run by the `tokenizers`
// library through hfTokenizer: we build the description, never an encoder of our own.
//   - `gpt2`: byte-level BPE from tokens and merges; `tokenizer.ggml.pre` names the pre-tokenizer
//     (llama.cpp's llama-vocab.cpp maps each name to its regexes); unknown names are refused
//     rather than guessed, since a wrong split changes every id.
//   - `llama`: SentencePiece BPE from tokens and scores, with byte fallback (<0xXX> tokens). Its
//     merges are every pair of pieces whose concatenation is a piece, ranked by that piece's score
//     (llama.cpp's llm_tokenizer_spm merges the best-scoring bigram first; transformers'
//     SentencePieceExtractor builds the same list).
import { FormatError } from '../errors.ts';
import { hfTokenizer, type TextTokenizer } from '../tokenizer.ts';
import type { GgufValue } from './read.ts';

/** llama.cpp's llama_token_type (gguf-py's TokenType). */
const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 };

const byteLevel = (useRegex: boolean) => ({
  type: 'ByteLevel',
  add_prefix_space: false,
  trim_offsets: true,
  use_regex: useRegex,
});
const splitThenBytes = (regex: string) => ({
  type: 'Sequence',
  pretokenizers: [
    { type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false },
    byteLevel(false),
  ],
});

/** Llama 3's split (digits in runs of up to 3), as its tokenizer.json writes it. */
const LLAMA3_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/** Qwen2's: Llama 3's with single digits. */
const QWEN2_REGEX = LLAMA3_REGEX.replace('\\p{N}{1,3}', '\\p{N}');

interface PreTokenizer {
  json: unknown;
  /** llama.cpp's ignore_merges: a word that is a token is taken whole. */
  ignoreMerges?: boolean;
  /** llama.cpp's add_bos default for the name (tokenizer.ggml.add_bos_token overrides it). */
  addBos?: boolean;
}

const LLAMA3: PreTokenizer = {
  json: splitThenBytes(LLAMA3_REGEX),
  ignoreMerges: true,
  addBos: true,
};
const QWEN2: PreTokenizer = { json: splitThenBytes(QWEN2_REGEX) };

/** `tokenizer.ggml.pre` names, as llama-vocab.cpp groups them. */
const PRE_TOKENIZERS: Readonly<Partial<Record<string, PreTokenizer>>> = {
  'llama-bpe': LLAMA3,
  llama3: LLAMA3,
  'llama-v3': LLAMA3,
  qwen2: QWEN2,
  'deepseek-r1-qwen': QWEN2,
  'gpt-2': { json: byteLevel(true) },
  // Every digit alone, then GPT-2's split (SmolLM/SmolLM2).
  smollm: {
    json: {
      type: 'Sequence',
      pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevel(true)],
    },
  },
};

/** A tokenizer.json and tokenizer_config.json equivalent to the file's tokenizer. */
export function ggufTokenizerJson(
  metadata: ReadonlyMap<string, GgufValue>,
  file: string,
): { tokenizer: Record<string, unknown>; config: Record<string, unknown> } {
  const m: MetadataReader = new MetadataReader(metadata, file);
  const model = m.string('tokenizer.ggml.model');
  const tokens = m.strings('tokenizer.ggml.tokens');
  if (tokens.length === 0) m.fail('tokenizer.ggml.tokens is empty');
  const types = m.ints('tokenizer.ggml.token_type', tokens.length);
  const id = (key: string) => {
    const v = m.optionalInt(key);
    if (v !== undefined && v >= tokens.length)
      m.fail(`${key} ${v} is not one of the ${tokens.length} tokens`);
    return v;
  };
  const bos = id('tokenizer.ggml.bos_token_id');
  const eos = id('tokenizer.ggml.eos_token_id');
  const unk = id('tokenizer.ggml.unknown_token_id');

  // Token strings are unique in llama.cpp's vocabulary (token_to_id); a repeat keeps its first id.
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => {
    if (!Object.hasOwn(vocab, t)) vocab[t] = i;
  });
  // Control and user-defined tokens are matched in text as wholes, as added tokens.
  const added = tokens.flatMap((content, i) =>
    types?.[i] === TOKEN_TYPE.control || types?.[i] === TOKEN_TYPE.userDefined
      ? [
          {
            id: i,
            content,
            single_word: false,
            lstrip: false,
            rstrip: false,
            normalized: false,
            special: types[i] === TOKEN_TYPE.control,
          },
        ]
      : [],
  );

  let body: Record<string, unknown>;
  let addBos: boolean;
  if (model === 'gpt2') {
    const pre = m.string('tokenizer.ggml.pre');
    const known = PRE_TOKENIZERS[pre];
    if (!known)
      m.fail(
        `tokenizer.ggml.pre ${JSON.stringify(pre)} is not supported (supported: ${Object.keys(PRE_TOKENIZERS).join(', ')})`,
      );
    addBos = known.addBos ?? false;
    body = {
      normalizer: null,
      pre_tokenizer: known.json,
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: '',
        end_of_word_suffix: '',
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: known.ignoreMerges ?? false,
        vocab,
        merges: m.strings('tokenizer.ggml.merges').map((merge, i) => {
          const space = merge.indexOf(' ');
          if (space <= 0)
            m.fail(`tokenizer.ggml.merges[${i}] ${JSON.stringify(merge)} is not "a b"`);
          return [merge.slice(0, space), merge.slice(space + 1)];
        }),
      },
    };
  } else if (model === 'llama') {
    const scores = m.floats('tokenizer.ggml.scores', tokens.length);
    // llama.cpp prepends a space to the text unless add_space_prefix is false (Gemma).
    const prefix = m.optionalBool('tokenizer.ggml.add_space_prefix') ?? true;
    addBos = true;
    body = {
      normalizer: {
        type: 'Sequence',
        normalizers: [
          ...(prefix ? [{ type: 'Prepend', prepend: '▁' }] : []),
          { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
        ],
      },
      pre_tokenizer: null,
      decoder: {
        type: 'Sequence',
        decoders: [
          { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
          { type: 'ByteFallback' },
          { type: 'Fuse' },
          ...(prefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
        ],
      },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: unk === undefined ? null : tokens[unk],
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: true,
        byte_fallback: true,
        ignore_merges: false,
        vocab,
        merges: sentencePieceMerges(tokens, scores, vocab),
      },
    };
  } else {
    m.fail(
      `tokenizer.ggml.model ${JSON.stringify(model)} is not supported (supported: gpt2, llama)`,
    );
  }
  addBos = m.optionalBool('tokenizer.ggml.add_bos_token') ?? addBos;
  const addEos = m.optionalBool('tokenizer.ggml.add_eos_token') ?? false;
  const bosToken = bos === undefined ? undefined : tokens[bos];
  const eosToken = eos === undefined ? undefined : tokens[eos];
  if (addBos && bosToken === undefined) m.fail('add_bos_token is set but there is no bos_token_id');
  if (addEos && eosToken === undefined) m.fail('add_eos_token is set but there is no eos_token_id');
  const template = m.optionalString('tokenizer.chat_template');
  return {
    tokenizer: {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: added,
      post_processor: specialTokens(addBos ? bosToken : undefined, addEos ? eosToken : undefined),
      ...body,
    },
    config: {
      ...(bosToken !== undefined && { bos_token: bosToken }),
      ...(eosToken !== undefined && { eos_token: eosToken }),
      ...(template !== undefined && { chat_template: template }),
    },
  };
}

/** The file's tokenizer, run by the `tokenizers` library. */
export function ggufTokenizer(
  metadata: ReadonlyMap<string, GgufValue>,
  file: string,
): TextTokenizer {
  const { tokenizer, config } = ggufTokenizerJson(metadata, file);
  return hfTokenizer(tokenizer, config, file);
}

/** BOS before and EOS after the text where the file says so (TemplateProcessing), else none. */
function specialTokens(bos: string | undefined, eos: string | undefined) {
  if (bos === undefined && eos === undefined) return null;
  const around = (seq: 'A' | 'B') => [
    ...(bos === undefined ? [] : [{ SpecialToken: { id: bos, type_id: 0 } }]),
    { Sequence: { id: seq, type_id: 0 } },
    ...(eos === undefined ? [] : [{ SpecialToken: { id: eos, type_id: 0 } }]),
  ];
  return {
    type: 'TemplateProcessing',
    single: around('A'),
    pair: [...around('A'), ...around('B')],
  };
}

/**
 * Every (left, right) whose concatenation is a piece, best-scoring piece first (then the lower
 * id, then the shorter left part, as SentencePieceExtractor orders them).
 */
function sentencePieceMerges(
  tokens: readonly string[],
  scores: ArrayLike<number>,
  vocab: Readonly<Record<string, number>>,
): [string, string][] {
  const merges: { pair: [string, string]; id: number }[] = [];
  tokens.forEach((piece, id) => {
    if (vocab[piece] !== id) return;
    const chars = Array.from(piece);
    for (let k = 1; k < chars.length; k++) {
      const left = chars.slice(0, k).join('');
      const right = chars.slice(k).join('');
      if (Object.hasOwn(vocab, left) && Object.hasOwn(vocab, right))
        merges.push({ pair: [left, right], id });
    }
  });
  merges.sort(
    (x, y) => scores[y.id] - scores[x.id] || x.id - y.id || x.pair[0].length - y.pair[0].length,
  );
  return merges.map((m) => m.pair);
}

/** Typed access to tokenizer metadata, refusing a wrong type by key name. */
class MetadataReader {
  constructor(
    private readonly metadata: ReadonlyMap<string, GgufValue>,
    private readonly file: string,
  ) {}

  fail(problem: string): never {
    throw new FormatError(this.file, problem);
  }

  private get(key: string, required: boolean): GgufValue | undefined {
    const v = this.metadata.get(key);
    if (v === undefined && required) this.fail(`metadata "${key}" is missing`);
    return v;
  }

  private wrong(key: string, want: string, v: GgufValue): never {
    const got = v.type === 'array' ? `an array of ${v.itemType}` : v.type;
    return this.fail(`metadata "${key}" must be ${want}, not ${got}`);
  }

  string(key: string): string {
    return this.optionalString(key, true)!;
  }

  optionalString(key: string, required = false): string | undefined {
    const v = this.get(key, required);
    if (v === undefined) return undefined;
    return v.type === 'string' ? v.value : this.wrong(key, 'a string', v);
  }

  optionalBool(key: string): boolean | undefined {
    const v = this.get(key, false);
    if (v === undefined) return undefined;
    return v.type === 'bool' ? v.value : this.wrong(key, 'a bool', v);
  }

  optionalInt(key: string): number | undefined {
    const v = this.get(key, false);
    if (v === undefined) return undefined;
    const n = v.type === 'u64' || v.type === 'i64' ? Number(v.value) : v.value;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
      return this.wrong(key, 'a token id', v);
    return n;
  }

  strings(key: string): string[] {
    const v = this.get(key, true)!;
    return v.type === 'array' && v.itemType === 'string'
      ? v.value
      : this.wrong(key, 'an array of strings', v);
  }

  /** An array of integers with one item per token, or undefined when absent. */
  ints(key: string, length: number): ArrayLike<number> | undefined {
    const v = this.get(key, false);
    if (v === undefined) return undefined;
    if (v.type !== 'array' || !['i32', 'u32', 'i16', 'u16', 'i8', 'u8'].includes(v.itemType))
      return this.wrong(key, 'an array of integers', v);
    return this.sized(key, v.value as ArrayLike<number>, length);
  }

  floats(key: string, length: number): ArrayLike<number> {
    const v = this.get(key, true)!;
    if (v.type !== 'array' || (v.itemType !== 'f32' && v.itemType !== 'f64'))
      return this.wrong(key, 'an array of floats', v);
    return this.sized(key, v.value, length);
  }

  private sized<T extends ArrayLike<unknown>>(key: string, value: T, length: number): T {
    if (value.length !== length)
      this.fail(`metadata "${key}" has ${value.length} items for ${length} tokens`);
    return value;
  }
}
