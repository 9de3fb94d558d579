// The llama2.c tokenizer (`tok512.bin`, `tokenizer.bin`; docs/design.md §2): int32
// max_token_length, then per token a float32 merge score, an int32 byte length and the bytes.
// Encoding is llama2.c's: a space is prepended to non-empty text, the text splits into UTF-8
// characters (unknown ones become byte tokens <0xXX> at id byte+3), then the adjacent pair whose
// concatenation is in the vocabulary with the highest score merges, until none does.
import { FormatError } from './errors.ts';

export const BOS = 1;
export const EOS = 2;
/** Byte tokens <0x00>…<0xFF> sit at ids 3…258. */
const BYTE_OFFSET = 3;

export interface Llama2cTokenizer {
  vocab: Uint8Array[];
  scores: Float32Array;
  encode(text: string, options?: { bos?: boolean; eos?: boolean }): number[];
  /** Text of a token sequence; a leading space after BOS is dropped, as llama2.c prints it. */
  decode(tokens: readonly number[]): string;
}

export function readLlama2cTokenizer(
  bytes: Uint8Array,
  vocabSize: number,
  file: string,
): Llama2cTokenizer {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 4) throw new FormatError(file, 'too short for a llama2.c tokenizer');
  const maxLength = view.getInt32(0, true);
  let offset = 4;
  const vocab: Uint8Array[] = [];
  const scores = new Float32Array(vocabSize);
  for (let id = 0; id < vocabSize; id++) {
    if (offset + 8 > bytes.byteLength) {
      throw new FormatError(
        file,
        `ends after ${id} tokens; the model's vocabulary has ${vocabSize} (wrong tokenizer for this model?)`,
      );
    }
    scores[id] = view.getFloat32(offset, true);
    const length = view.getInt32(offset + 4, true);
    offset += 8;
    if (length < 0 || length > maxLength || offset + length > bytes.byteLength) {
      throw new FormatError(file, `token ${id} has an impossible length ${length}`);
    }
    vocab.push(bytes.slice(offset, offset + length));
    offset += length;
  }
  if (offset !== bytes.byteLength) {
    throw new FormatError(
      file,
      `has bytes beyond ${vocabSize} tokens: its vocabulary is larger than the model's (wrong tokenizer?)`,
    );
  }
  return makeTokenizer(vocab, scores);
}

function makeTokenizer(vocab: Uint8Array[], scores: Float32Array): Llama2cTokenizer {
  const latin1 = (b: Uint8Array) => String.fromCharCode(...b);
  // Keys are the tokens' raw bytes as latin-1 strings, so any byte sequence is a valid key.
  const ids = new Map<string, number>();
  vocab.forEach((piece, id) => {
    if (!ids.has(latin1(piece))) ids.set(latin1(piece), id);
  });
  const utf8 = new TextEncoder();

  function encode(text: string, { bos = true, eos = false } = {}): number[] {
    const tokens: number[] = [];
    if (text.length > 0) {
      const space = ids.get(' ');
      if (space !== undefined) tokens.push(space);
    }
    for (const char of text) {
      const bytes = utf8.encode(char);
      const id = ids.get(latin1(bytes));
      if (id !== undefined) tokens.push(id);
      else for (const b of bytes) tokens.push(b + BYTE_OFFSET);
    }
    // Greedy merges by score, as llama2.c does (quadratic, fine for prompts and training text).
    for (;;) {
      let best = -Infinity;
      let at = -1;
      let merged = -1;
      for (let i = 0; i + 1 < tokens.length; i++) {
        const id = ids.get(latin1(vocab[tokens[i]]) + latin1(vocab[tokens[i + 1]]));
        if (id !== undefined && scores[id] > best) {
          best = scores[id];
          at = i;
          merged = id;
        }
      }
      if (at < 0) break;
      tokens.splice(at, 2, merged);
    }
    if (bos) tokens.unshift(BOS);
    if (eos) tokens.push(EOS);
    return tokens;
  }

  function decode(tokens: readonly number[]): string {
    const parts: number[] = [];
    tokens.forEach((token, i) => {
      if (token === BOS || token === EOS) return;
      if (!(token >= 0 && token < vocab.length)) {
        throw new RangeError(`token id ${token} is outside the vocabulary of ${vocab.length}`);
      }
      const piece = vocab[token];
      const text = latin1(piece);
      const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(text);
      if (byte) {
        parts.push(Number.parseInt(byte[1], 16));
        return;
      }
      const start = i > 0 && tokens[i - 1] === BOS && piece[0] === 0x20 ? 1 : 0;
      for (let k = start; k < piece.length; k++) parts.push(piece[k]);
    });
    return new TextDecoder().decode(Uint8Array.from(parts));
  }

  return { vocab, scores, encode, decode };
}
