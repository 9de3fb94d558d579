// Training data, in the order it flows: a dropped file → examples → token ids with a per-token
// "trained" mask → a train/validation split → fixed-length packed sequences → a seeded order that
// resumes exactly. Everything here is plain CPU work on plain arrays; the engine only sees
// `Sequence`s (input ids and next-token targets, -1 where the loss is masked).
import { errorMessage } from '../errors.ts';
import { FormatError } from '../model/errors.ts';
import type { ChatMessage, TextTokenizer } from '../model/tokenizer.ts';
import { seededRandom } from '../linalg/random.ts';

export type { ChatMessage };

export type Example =
  | { kind: 'text'; text: string }
  | { kind: 'completion'; prompt: string; completion: string }
  | { kind: 'chat'; messages: ChatMessage[] };

export type DatasetFormat = 'text' | 'jsonl-text' | 'jsonl-completion' | 'jsonl-chat';

// ─── Parsing ─────────────────────────────────────────────────────────────────────────────────

/** An example with where it came from, so later errors can name the line. */
interface SourcedExample {
  example: Example;
  /** "line 7" (JSONL), "item 3" (JSON array) or "document 2" (plain text). */
  where: string;
}

interface ParsedDataset {
  format: DatasetFormat;
  examples: SourcedExample[];
}

/**
 * Parses a dropped file: JSONL (.jsonl/.json, or content starting with '{') whose lines each
 * have `text`, or `prompt` + `completion`, or `messages` (role/content); a JSON array of such
 * records; otherwise plain text, one 'text' example per document (documents separated by blank
 * lines).
 */
export function parseDataset(content: string, fileName: string): Example[] {
  return parseSourced(content, fileName).examples.map((s) => s.example);
}

/** A file's bytes as UTF-8 text, or a FormatError: text in another encoding is not guessed at. */
export function decodeUtf8Text(bytes: Uint8Array, fileName: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new FormatError(
      fileName,
      'is not UTF-8 text: save it as UTF-8 (most editors offer it under "Save as") and try again',
    );
  }
}

/**
 * Refuses data that is not text: NUL bytes, or more than 1 % control characters besides tab,
 * line breaks and form feed (random or binary bytes that happen to decode). Training on them
 * would teach the model noise.
 */
function checkLooksLikeText(text: string, fileName: string): void {
  let nul = 0;
  let control = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0) nul++;
    else if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0c && c !== 0x0d) || c === 0x7f)
      control++;
  }
  if (nul > 0)
    throw new FormatError(fileName, `looks like binary data, not text (${nul} NUL bytes)`);
  if (control > 0.01 * text.length)
    throw new FormatError(
      fileName,
      `looks like binary data, not text (${((100 * control) / text.length).toFixed(1)} % control characters)`,
    );
}

function parseSourced(content: string, fileName: string): ParsedDataset {
  const text = content.replace(/\r\n?/g, '\n');
  const start = text.trimStart();
  if (start === '') throw new FormatError(fileName, 'is empty: there is nothing to train on');
  checkLooksLikeText(text, fileName);
  const examples =
    start.startsWith('[') && /\.jsonl?$/i.test(fileName)
      ? parseJsonArray(text, fileName)
      : /\.jsonl?$/i.test(fileName) || start.startsWith('{')
        ? parseJsonLines(text, fileName)
        : null;
  if (!examples) return { format: 'text', examples: parsePlainText(text) };
  return { format: `jsonl-${checkOneKind(examples, fileName)}`, examples };
}

/** Documents separated by one or more blank (or whitespace-only) lines. */
function parsePlainText(text: string): SourcedExample[] {
  return text
    .split(/\n[ \t]*\n/)
    .map((document) => document.trim())
    .filter((document) => document !== '')
    .map((document, i) => ({
      example: { kind: 'text', text: document },
      where: `document ${i + 1}`,
    }));
}

function parseJsonLines(text: string, fileName: string): SourcedExample[] {
  const examples: SourcedExample[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `line ${i + 1}`;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch (e) {
      throw new FormatError(
        fileName,
        `${where} is not valid JSON (${errorMessage(e)}); JSONL needs one complete JSON object per line`,
      );
    }
    examples.push({ example: recordToExample(record, fileName, where), where });
  });
  return examples;
}

/** A .json file holding one array of records instead of one record per line. */
function parseJsonArray(text: string, fileName: string): SourcedExample[] {
  let records: unknown;
  try {
    records = JSON.parse(text);
  } catch (e) {
    throw new FormatError(fileName, `is not valid JSON (${errorMessage(e)})`);
  }
  if (!Array.isArray(records) || records.length === 0) {
    throw new FormatError(fileName, 'holds no records: expected an array of JSON objects');
  }
  return records.map((record: unknown, i) => {
    const where = `item ${i + 1}`;
    return { example: recordToExample(record, fileName, where), where };
  });
}

const ROLES: readonly string[] = ['system', 'user', 'assistant'] satisfies ChatMessage['role'][];

function recordToExample(record: unknown, fileName: string, where: string): Example {
  const fail = (problem: string) => new FormatError(fileName, `${where}: ${problem}`);
  if (typeof record !== 'object' || record === null || Array.isArray(record)) {
    throw fail('expected a JSON object with "text", "prompt" and "completion", or "messages"');
  }
  const r = record as Record<string, unknown>;
  const stringField = (key: string, allowEmpty = false): string => {
    const value = r[key];
    if (typeof value !== 'string') throw fail(`"${key}" must be a string`);
    if (!allowEmpty && value.trim() === '') throw fail(`"${key}" is empty`);
    return value;
  };
  if ('messages' in r) return { kind: 'chat', messages: parseMessages(r.messages, fail) };
  if ('prompt' in r || 'completion' in r) {
    if (!('completion' in r)) throw fail('has "prompt" but no "completion"');
    if (!('prompt' in r)) throw fail('has "completion" but no "prompt"');
    return {
      kind: 'completion',
      prompt: stringField('prompt', true),
      completion: stringField('completion'),
    };
  }
  if ('text' in r) return { kind: 'text', text: stringField('text') };
  const keys = Object.keys(r).map((k) => `"${k}"`);
  throw fail(
    `expected "text", "prompt" and "completion", or "messages" (found ${keys.length > 0 ? keys.join(', ') : 'no keys'})`,
  );
}

function parseMessages(value: unknown, fail: (problem: string) => FormatError): ChatMessage[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw fail('"messages" must be a non-empty array of {"role", "content"} objects');
  }
  const messages = value.map((m: unknown, i): ChatMessage => {
    const message = (typeof m === 'object' && m !== null ? m : {}) as Record<string, unknown>;
    const { role, content } = message;
    if (typeof role !== 'string' || !ROLES.includes(role)) {
      throw fail(
        `messages[${i}].role is ${JSON.stringify(role)}; expected "system", "user" or "assistant"`,
      );
    }
    if (typeof content !== 'string') throw fail(`messages[${i}].content must be a string`);
    return { role: role as ChatMessage['role'], content };
  });
  const firstAssistant = messages.findIndex((m) => m.role === 'assistant');
  if (firstAssistant < 0) throw fail('has no "assistant" message: there is no reply to learn');
  // A chat template renders the assistant's header only after a prompt: the reply needs one.
  if (firstAssistant === 0) {
    throw fail('messages[0] is an assistant reply; put a "user" or "system" message before it');
  }
  return messages;
}

/** One file, one kind of example: mixing them is almost always a mistake in the data. */
function checkOneKind(examples: SourcedExample[], fileName: string): Example['kind'] {
  const first = examples[0];
  const label = { text: '"text"', completion: '"prompt"/"completion"', chat: '"messages"' };
  for (const { example, where } of examples) {
    if (example.kind !== first.example.kind) {
      throw new FormatError(
        fileName,
        `${where} is a ${label[example.kind]} example but ${first.where} is a ${label[first.example.kind]} one; use one format per file`,
      );
    }
  }
  return first.example.kind;
}

// ─── Tokenizing, with the loss mask ──────────────────────────────────────────────────────────

/**
 * Token ids and a per-token `trained` flag: trained[i] says whether ids[i] is a prediction target
 * (the loss is on predicting ids[i] from ids[<i]).
 */
export interface TokenizedExample {
  ids: number[];
  trained: boolean[];
}

/**
 * text: BOS (where the tokenizer adds one) + text + EOS, all trained but BOS. completion:
 * BOS + prompt untrained, completion + EOS trained. chat: the chat template's rendering, only the
 * assistant replies (with their end-of-turn token) trained.
 */
export function tokenizeExample(tokenizer: TextTokenizer, example: Example): TokenizedExample {
  switch (example.kind) {
    case 'text':
      return maskRanges(
        withEos(tokenizer, tokenizer.encode(example.text)),
        [[0, Infinity]],
        tokenizer,
      );
    case 'completion': {
      const ids = withEos(tokenizer, tokenizer.encode(example.prompt + example.completion));
      const start = boundary(tokenizer.encode(example.prompt), ids);
      return maskRanges(ids, [[start, Infinity]], tokenizer);
    }
    case 'chat':
      return tokenizeChat(tokenizer, example.messages);
  }
}

/** ids with trained = true inside the [start, end) ranges, never on a leading BOS. */
function maskRanges(
  ids: number[],
  ranges: [number, number][],
  tokenizer: TextTokenizer,
): TokenizedExample {
  const trained = ids.map((_, i) => ranges.some(([start, end]) => i >= start && i < end));
  if (ids.length > 0 && ids[0] === tokenizer.bosId) trained[0] = false;
  return { ids, trained };
}

/** The model must learn to stop: end every text and completion with EOS (once). */
function withEos(tokenizer: TextTokenizer, ids: number[]): number[] {
  const eos = tokenizer.eosIds.at(0);
  return eos === undefined || ids.at(-1) === eos ? ids : [...ids, eos];
}

/**
 * Where the text after a prefix starts in `ids` (the whole text's tokens), given the prefix's own
 * tokens. Tokenizing the whole text once keeps its tokens what the model will see; when a token
 * straddles the prefix's end the first differing token counts as the continuation's, since it
 * carries the continuation's text.
 */
function boundary(prefixIds: readonly number[], ids: readonly number[]): number {
  let i = 0;
  while (i < prefixIds.length && i < ids.length && prefixIds[i] === ids[i]) i++;
  return i;
}

/**
 * The template's rendering of the whole conversation, tokenized once; each assistant reply's
 * tokens are found by rendering the conversation up to it (with the generation prompt: where the
 * reply starts) and through it (without trailing whitespace: the template's separator between
 * turns, not the reply; the end-of-turn token stays, so the model learns to stop).
 */
function tokenizeChat(
  tokenizer: TextTokenizer,
  messages: readonly ChatMessage[],
): TokenizedExample {
  const render = (upTo: number, addGenerationPrompt: boolean): string => {
    let text: string | null;
    try {
      text = tokenizer.chat(messages.slice(0, upTo), { addGenerationPrompt });
    } catch (e) {
      throw new FormatError('chat template', `failed to render a conversation: ${errorMessage(e)}`);
    }
    if (text === null) {
      throw new FormatError(
        'tokenizer',
        'has no chat template, so "messages" examples cannot be rendered; use "text" or "prompt"/"completion" lines for this model',
      );
    }
    return text;
  };
  const encode = (text: string) =>
    withBos(tokenizer, tokenizer.encode(text, { specialTokens: false }));
  const full = render(messages.length, false);
  const ids = encode(full);
  const ranges: [number, number][] = [];
  messages.forEach((message, i) => {
    if (message.role !== 'assistant') return;
    const before = render(i, true);
    const through = render(i + 1, false).trimEnd();
    if (!full.startsWith(before) || !full.startsWith(through)) {
      throw new FormatError(
        'chat template',
        'does not render a conversation turn by turn (a shorter conversation is not a prefix of the longer one), so the replies cannot be masked',
      );
    }
    const start = boundary(encode(before), ids);
    const throughIds = encode(through);
    const end = boundary(throughIds, ids);
    // A token straddling the reply's end carries some of the reply: it is trained too.
    ranges.push([start, Math.max(start, end < throughIds.length ? end + 1 : end)]);
  });
  return maskRanges(ids, ranges, tokenizer);
}

/**
 * Chat renderings are encoded without special tokens (a template may write BOS itself); add the
 * BOS the tokenizer adds by convention when the template did not.
 */
function withBos(tokenizer: TextTokenizer, ids: number[]): number[] {
  const bos = tokenizer.bosId;
  const addsBos = bos !== null && tokenizer.encode('').at(0) === bos;
  return addsBos && ids.at(0) !== bos ? [bos, ...ids] : ids;
}

// ─── Train/validation split ──────────────────────────────────────────────────────────────────

/**
 * Deterministic split by a seeded shuffle: validation gets round(fraction·n) examples, at least
 * one when n ≥ 2 and fraction > 0, never all of them. A single example (one plain-text document)
 * is cut instead: its last `fraction` of tokens become validation.
 */
export function splitExamples(
  examples: readonly TokenizedExample[],
  validationFraction: number,
  seed: number,
): { train: TokenizedExample[]; validation: TokenizedExample[] } {
  if (!(validationFraction >= 0 && validationFraction < 1)) {
    throw new RangeError(`validation fraction ${validationFraction} must be in [0, 1)`);
  }
  if (validationFraction === 0) return { train: [...examples], validation: [] };
  if (examples.length === 1) return cutExample(examples[0], validationFraction);
  const n = examples.length;
  const count = Math.min(n - 1, Math.max(1, Math.round(validationFraction * n)));
  const isValidation = new Array<boolean>(n).fill(false);
  for (const i of permutation(n, seed).slice(0, count)) isValidation[i] = true;
  // The file's order is kept within each set (the training order is shuffled later anyway).
  return {
    train: examples.filter((_, i) => !isValidation[i]),
    validation: examples.filter((_, i) => isValidation[i]),
  };
}

/**
 * Cuts one example into train (its start) and validation (its end). The validation part begins
 * with the train part's last token as untrained context, so every trained token is a target in
 * exactly one of them and the first validation target still has a token before it.
 */
function cutExample(
  example: TokenizedExample,
  validationFraction: number,
): { train: TokenizedExample[]; validation: TokenizedExample[] } {
  const n = example.ids.length;
  // Each part needs two tokens (one context, one target) to yield any loss.
  if (n < 4) return { train: [example], validation: [] };
  const cut = Math.min(n - 1, Math.max(2, n - Math.round(validationFraction * n)));
  const validation = {
    ids: example.ids.slice(cut - 1),
    trained: [false, ...example.trained.slice(cut)],
  };
  return {
    train: [{ ids: example.ids.slice(0, cut), trained: example.trained.slice(0, cut) }],
    validation: [validation],
  };
}

// ─── Packing ─────────────────────────────────────────────────────────────────────────────────

/**
 * One training sequence: input ids [seqLen] and targets [seqLen], target[t] = the token after
 * input[t], or -1 where it is not trained (masked, or padding).
 */
export interface Sequence {
  input: Uint32Array;
  target: Int32Array;
}

/**
 * Packs examples back to back into one token stream, cut into windows of seqLen + 1 tokens that
 * overlap by one, so that every stream token after the first is a target exactly once. Examples
 * are not isolated from each other (no attention mask between them): each starts with BOS or
 * follows an EOS, as in pretraining. The last window is padded with id 0 and masked targets
 * (attention is causal, so padding after the real tokens changes nothing before it). Windows with
 * no trained target at all (a long prompt) are dropped: they would only cost time.
 */
export function packSequences(examples: readonly TokenizedExample[], seqLen: number): Sequence[] {
  if (!Number.isInteger(seqLen) || seqLen < 1) {
    throw new RangeError(`sequence length ${seqLen} must be a positive integer`);
  }
  const ids = examples.flatMap((e) => e.ids);
  const trained = examples.flatMap((e) => e.trained);
  const sequences: Sequence[] = [];
  for (let start = 0; start + 1 < ids.length; start += seqLen) {
    const input = new Uint32Array(seqLen);
    const target = new Int32Array(seqLen).fill(-1);
    let targets = 0;
    for (let t = 0; t < seqLen && start + t < ids.length; t++) {
      input[t] = ids[start + t];
      if (start + t + 1 < ids.length && trained[start + t + 1]) {
        target[t] = ids[start + t + 1];
        targets++;
      }
    }
    if (targets > 0) sequences.push({ input, target });
  }
  return sequences;
}

// ─── Data order ──────────────────────────────────────────────────────────────────────────────

/** A seeded Fisher–Yates shuffle of 0…n-1. */
function permutation(n: number, seed: number): Uint32Array {
  const random = seededRandom(seed);
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

// The last epoch's order: training asks for consecutive positions, so one entry is enough and
// the function stays pure (the cache only saves recomputing the same shuffle).
let lastOrder: { count: number; seed: number; epoch: number; order: Uint32Array } | null = null;

/**
 * The index of the sequence used at global position `pos` (= step·batch + i). Each epoch is a
 * fresh shuffle seeded with seed + epoch, so a run resumed at any step sees the same order.
 */
export function sequenceAt(count: number, seed: number, pos: number): number {
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`sequence count ${count} must be a positive integer`);
  }
  if (!Number.isInteger(pos) || pos < 0) {
    throw new RangeError(`position ${pos} must be a non-negative integer`);
  }
  const epoch = Math.floor(pos / count);
  if (lastOrder?.count !== count || lastOrder.seed !== seed || lastOrder.epoch !== epoch) {
    lastOrder = { count, seed, epoch, order: permutation(count, seed + epoch) };
  }
  return lastOrder.order[pos % count];
}

// ─── All together ────────────────────────────────────────────────────────────────────────────

/** Everything the Data panel shows. */
export interface DatasetSummary {
  format: DatasetFormat;
  examples: number;
  tokens: number;
  trainedTokens: number;
  trainSequences: number;
  validationSequences: number;
  /** Up to five examples as the model sees them (long ones cut), with their token counts. */
  preview: { text: string; tokens: number }[];
}

export interface PreparedData {
  train: Sequence[];
  validation: Sequence[];
  summary: DatasetSummary;
}

const PREVIEW_EXAMPLES = 5;
/** Enough to recognise an example; a whole book would only slow the worker → UI message. */
const PREVIEW_CHARS = 600;

/** Parse + tokenize + split + pack in one call. */
/** How often preparation reports: about every 100 kB of stories. */
const PROGRESS_EVERY = 256;

export function prepareDataset(
  content: string,
  fileName: string,
  tokenizer: TextTokenizer,
  options: { seqLen: number; validationFraction: number; seed: number },
  /** Examples tokenized so far of all, now and then (tokenizing is nearly all the time). */
  onProgress?: (done: number, total: number) => void,
): PreparedData {
  const { format, examples } = parseSourced(content, fileName);
  if (format === 'jsonl-chat' && !hasChatTemplate(tokenizer)) {
    throw new FormatError(
      fileName,
      'holds chat examples ("messages"), but this model\'s tokenizer has no chat template to render them; use "text" or "prompt"/"completion" lines for this model',
    );
  }
  const tokenized = examples.map(({ example, where }, i) => {
    if (i % PROGRESS_EVERY === 0) onProgress?.(i, examples.length);
    try {
      return tokenizeExample(tokenizer, example);
    } catch (e) {
      // Name the file and the line: a template that cannot render this conversation, say.
      throw new FormatError(fileName, `${where}: ${errorMessage(e)}`);
    }
  });
  onProgress?.(examples.length, examples.length);
  const { train, validation } = splitExamples(tokenized, options.validationFraction, options.seed);
  const trainSequences = packSequences(train, options.seqLen);
  const validationSequences = packSequences(validation, options.seqLen);
  if (trainSequences.length === 0) {
    throw new FormatError(
      fileName,
      'has nothing to learn from: no token in it follows another (too short for this tokenizer?)',
    );
  }
  return {
    train: trainSequences,
    validation: validationSequences,
    summary: {
      format,
      examples: examples.length,
      tokens: tokenized.reduce((sum, e) => sum + e.ids.length, 0),
      trainedTokens: tokenized.reduce((sum, e) => sum + e.trained.filter(Boolean).length, 0),
      trainSequences: trainSequences.length,
      validationSequences: validationSequences.length,
      preview: examples.slice(0, PREVIEW_EXAMPLES).map(({ example }, i) => ({
        text: cut(exampleText(tokenizer, example), PREVIEW_CHARS),
        tokens: tokenized[i].ids.length,
      })),
    },
  };
}

function hasChatTemplate(tokenizer: TextTokenizer): boolean {
  try {
    return tokenizer.chat([{ role: 'user', content: 'Hi' }]) !== null;
  } catch {
    return true; // a template that refuses this probe; each conversation reports its own error
  }
}

/** An example's text as the model sees it (a chat through its template). */
function exampleText(tokenizer: TextTokenizer, example: Example): string {
  switch (example.kind) {
    case 'text':
      return example.text;
    case 'completion':
      return example.prompt + example.completion;
    case 'chat':
      return tokenizer.chat(example.messages) ?? '';
  }
}

function cut(text: string, chars: number): string {
  return text.length <= chars ? text : `${text.slice(0, chars)}…`;
}
