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
    if (!Number.isFinite(scores[id]))
      throw new FormatError(file, `token ${id} has a non-finite merge score (${scores[id]})`);
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

/**
 * llama2.c's merge rule — repeatedly merge the adjacent pair whose merged token scores highest,
 * the leftmost such pair on ties — in O(n log n): the symbols form a linked list (a merged pair
 * keeps the left one's slot), candidate pairs wait in a heap ordered by (score, slot), and a
 * candidate whose symbols changed since it was pushed is dropped when it comes up. Slots keep
 * their left-to-right order, so "smallest slot" is "leftmost" as in the quadratic scan.
 */
function mergeGreedily(
  tokens: readonly number[],
  scores: Float32Array,
  pairId: (left: number, right: number) => number | undefined,
): number[] {
  const n = tokens.length;
  const token = Int32Array.from(tokens);
  const next = Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
  const prev = Int32Array.from({ length: n }, (_, i) => i - 1);
  const version = new Int32Array(n);
  const heap = new CandidateHeap();
  const consider = (left: number) => {
    const right = left >= 0 ? next[left] : -1;
    if (right < 0) return;
    const id = pairId(token[left], token[right]);
    if (id !== undefined)
      heap.push({
        score: scores[id],
        left,
        right,
        id,
        leftVersion: version[left],
        rightVersion: version[right],
      });
  };
  for (let i = 0; i + 1 < n; i++) consider(i);
  for (let c = heap.pop(); c; c = heap.pop()) {
    const stale =
      next[c.left] !== c.right ||
      version[c.left] !== c.leftVersion ||
      version[c.right] !== c.rightVersion;
    if (stale) continue;
    token[c.left] = c.id;
    version[c.left]++;
    version[c.right] = -1; // gone: every candidate naming it is stale
    next[c.left] = next[c.right];
    if (next[c.right] >= 0) prev[next[c.right]] = c.left;
    consider(prev[c.left]);
    consider(c.left);
  }
  const out: number[] = [];
  for (let i = n > 0 ? 0 : -1; i >= 0; i = next[i]) out.push(token[i]);
  return out;
}

interface Candidate {
  score: number;
  left: number;
  right: number;
  id: number;
  leftVersion: number;
  rightVersion: number;
}

/** A binary heap of merge candidates: highest score first, then the leftmost slot. */
class CandidateHeap {
  private items: Candidate[] = [];

  private before(a: Candidate, b: Candidate): boolean {
    return a.score > b.score || (a.score === b.score && a.left < b.left);
  }

  push(c: Candidate): void {
    const items = this.items;
    items.push(c);
    for (let i = items.length - 1; i > 0;) {
      const parent = (i - 1) >> 1;
      if (!this.before(items[i], items[parent])) break;
      [items[i], items[parent]] = [items[parent], items[i]];
      i = parent;
    }
  }

  pop(): Candidate | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last) {
      items[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < items.length && this.before(items[l], items[best])) best = l;
        if (r < items.length && this.before(items[r], items[best])) best = r;
        if (best === i) break;
        [items[i], items[best]] = [items[best], items[i]];
        i = best;
      }
    }
    return top;
  }
}

function makeTokenizer(vocab: Uint8Array[], scores: Float32Array): Llama2cTokenizer {
  const latin1 = (b: Uint8Array) => String.fromCharCode(...b);
  // Keys are the tokens' raw bytes as latin-1 strings, so any byte sequence is a valid key.
  const ids = new Map<string, number>();
  vocab.forEach((piece, id) => {
    if (!ids.has(latin1(piece))) ids.set(latin1(piece), id);
  });
  const keys = vocab.map(latin1);
  const utf8 = new TextEncoder();

  function encode(text: string, { bos = true, eos = false } = {}): number[] {
    const tokens: number[] = [];
    if (text.length > 0) {
      const space = ids.get(' ');
      if (space !== undefined) tokens.push(space);
    }
    for (const char of text) {
      // ASCII, most of any text: the character is its own one-byte latin-1 key.
      if (char.charCodeAt(0) < 0x80) {
        tokens.push(ids.get(char) ?? char.charCodeAt(0) + BYTE_OFFSET);
        continue;
      }
      const bytes = utf8.encode(char);
      const id = ids.get(latin1(bytes));
      if (id !== undefined) tokens.push(id);
      else for (const b of bytes) tokens.push(b + BYTE_OFFSET);
    }
    const merged = mergeGreedily(tokens, scores, (l, r) => ids.get(keys[l] + keys[r]));
    return [...(bos ? [BOS] : []), ...merged, ...(eos ? [EOS] : [])];
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
