// One tokenizer interface for the rest of the studio, over two implementations: Hugging Face
// tokenizer.json files through @huggingface/tokenizers (we never hand-write a BPE for them), with
// chat templates rendered by @huggingface/jinja; and the llama2.c format (llama2c-tokenizer.ts).
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { errorMessage } from '../errors.ts';
import { FormatError } from './errors.ts';
import { regexRisk, tokenizerRegexes } from './regex-safety.ts';
import { BOS, EOS, type Llama2cTokenizer } from './llama2c-tokenizer.ts';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface TextTokenizer {
  /** Ids the tokenizer can produce (the model's vocabulary may be larger, never smaller). */
  vocabSize: number;
  bosId: number | null;
  eosIds: number[];
  /** Token ids; `specialTokens` adds what the tokenizer adds by convention (BOS for Llama). */
  encode(text: string, options?: { specialTokens?: boolean }): number[];
  decode(ids: readonly number[], options?: { skipSpecialTokens?: boolean }): string;
  /** The chat template's text for `messages`, or null when the tokenizer has none. */
  chat(
    messages: readonly ChatMessage[],
    options?: { addGenerationPrompt?: boolean },
  ): string | null;
}

/** A tokenizer.json with its tokenizer_config.json (which carries the chat template). */
export function hfTokenizer(
  tokenizerJson: unknown,
  tokenizerConfig: unknown = {},
  file = 'tokenizer.json',
): TextTokenizer {
  const json = tokenizerJson as { model?: { type?: unknown; vocab?: unknown } } | null;
  if (typeof json !== 'object' || json === null || typeof json.model !== 'object') {
    throw new FormatError(file, 'is not a tokenizer.json (no "model" section)');
  }
  for (const pattern of tokenizerRegexes(json)) {
    const { reason } = regexRisk(pattern);
    if (reason)
      throw new FormatError(
        file,
        `has a regex that could run for hours on one sentence (${reason}): ${JSON.stringify(pattern.slice(0, 80))}`,
      );
  }
  const config = (tokenizerConfig ?? {}) as Record<string, unknown>;
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(json, config);
  } catch (e) {
    throw new FormatError(file, `could not be loaded: ${errorMessage(e)}`);
  }
  const special = (key: string): number | null => {
    const value = config[key];
    const text =
      typeof value === 'string' ? value : (value as { content?: unknown } | undefined)?.content;
    return typeof text === 'string' ? (tokenizer.token_to_id(text) ?? null) : null;
  };
  const eos = special('eos_token');
  const template =
    typeof config.chat_template === 'string' ? new Template(config.chat_template) : null;
  let vocabSize = 0;
  for (const id of tokenizer.get_vocab(true).values()) vocabSize = Math.max(vocabSize, id + 1);
  return {
    vocabSize,
    bosId: special('bos_token'),
    eosIds: eos === null ? [] : [eos],
    encode: (text, { specialTokens = true } = {}) =>
      tokenizer.encode(text, { add_special_tokens: specialTokens }).ids,
    decode: (ids, { skipSpecialTokens = false } = {}) =>
      ids.length === 0
        ? ''
        : tokenizer.decode([...ids], { skip_special_tokens: skipSpecialTokens }),
    chat(messages, { addGenerationPrompt = false } = {}) {
      if (!template) return null;
      return template.render({
        messages,
        add_generation_prompt: addGenerationPrompt,
        bos_token: typeof config.bos_token === 'string' ? config.bos_token : '',
        eos_token: typeof config.eos_token === 'string' ? config.eos_token : '',
      });
    },
  };
}

/** The llama2.c tokenizer behind the same interface (no chat template: base story models). */
export function fromLlama2c(t: Llama2cTokenizer): TextTokenizer {
  return {
    vocabSize: t.vocab.length,
    bosId: BOS,
    // llama2.c's models were pretrained on stories delimited by BOS alone (its run.c stops at
    // BOS): EOS never occurs in their data, so its logit is ~16 nats below BOS's at a story's
    // end, and an adapter trained to emit EOS there does not learn it in any useful number of
    // steps. BOS is the end of a text these models know; generation stops at either.
    eosIds: [BOS, EOS],
    encode: (text, { specialTokens = true } = {}) => t.encode(text, { bos: specialTokens }),
    // encode() prepends a space (llama2.c's dummy prefix) that decode drops after BOS: decode
    // as if BOS preceded, so that decode(encode(text)) is text either way.
    decode: (ids) => t.decode(ids[0] === BOS ? ids : [BOS, ...ids]),
    chat: () => null,
  };
}
