// The exported train.py's data loader (studio_sequences and the tokenization under it) makes the
// studio's token windows: run under python3 on the exported JSONL files, with a stand-in for the
// Hugging Face tokenizer that answers from the built-in tokenizer's encodings (computed here), its
// windows must be the sequences src/train/data.ts packs for the same run, split by split. Needs
// python3 only: train.py imports torch, transformers, peft, trl and datasets where it uses them,
// not at its top, so importing it here must succeed without them.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { LoraSpec } from '../adapters/config.ts';
import { readLlama2cTokenizer } from '../model/llama2c-tokenizer.ts';
import { fromLlama2c, type ChatMessage, type TextTokenizer } from '../model/tokenizer.ts';
import { builtIn } from '../testing/fixtures.ts';
import { parseDataset, prepareDataset, type Example, type Sequence } from '../train/data.ts';
import { exportRunFiles } from './export.ts';
import { handoffRun } from './run.ts';
import { runCheckpoint } from './test-runs.ts';

const PYTHON = spawnSync('python3', ['--version']).status === 0 ? 'python3' : null;

type Template = (messages: readonly ChatMessage[], addGenerationPrompt: boolean) => string;

/**
 * Chat templates for the built-in tokenizer (it has none): turns ending with a marker and a
 * newline; and turns run together, where a reply's last token can straddle the next turn's start.
 */
const TEMPLATES: Record<'lines' | 'runOn', Template> = {
  lines: (messages, add) =>
    messages.map((m) => `<${m.role}>\n${m.content}\n</turn>\n`).join('') +
    (add ? '<assistant>\n' : ''),
  runOn: (messages, add) =>
    messages.map((m) => `${m.role}: ${m.content}`).join('') + (add ? 'assistant: ' : ''),
};

const base = fromLlama2c(readLlama2cTokenizer(builtIn('tok512.bin'), 512, 'tok512.bin'));
const withTemplate = (chat: Template): TextTokenizer => ({
  ...base,
  chat: (messages, { addGenerationPrompt = false } = {}) => chat(messages, addGenerationPrompt),
});

const LONG_PROMPT =
  'Once upon a time, in a small house at the edge of a big forest, there lived a girl who loved to ask questions about everything she saw. ';

const CASES = [
  {
    kind: 'text',
    fileName: 'stories.txt',
    content: [
      'Once upon a time there was a little cat named Tom.',
      'Tom liked to sit in the sun and watch the birds fly by. One day a big bird came down.',
      'The bird said hello.',
      'Lily and Ben went to the park. They played on the swings and ate ice cream until the sun went down and it was time to go home.',
      'The end.',
      'A dog ran.',
      'It was a happy day for everyone in the little town by the sea.',
    ].join('\n\n'),
    seqLen: 16,
    validationFraction: 0.3,
    template: 'lines',
  },
  {
    kind: 'completion',
    fileName: 'qa.jsonl',
    content: [
      { prompt: 'Q: What colour is the sky?\nA:', completion: ' Blue, on a sunny day.' },
      // Longer than a window: one window holds no trained target and is skipped.
      { prompt: LONG_PROMPT + 'What did she ask?\nA:', completion: ' Why.' },
      { prompt: '', completion: 'A story with no prompt at all.' },
      { prompt: 'Q: How many legs has a dog?\nA:', completion: ' Four legs.' },
      { prompt: 'Tom said', completion: ' hi' },
      { prompt: 'Q: Is the sun hot?\nA:', completion: ' Yes, very hot.' },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n'),
    seqLen: 12,
    validationFraction: 0.34,
    template: 'lines',
  },
  {
    kind: 'chat',
    fileName: 'chat.jsonl',
    content: [
      [
        { role: 'system', content: 'You tell short stories.' },
        { role: 'user', content: 'Tell me about a cat.' },
        { role: 'assistant', content: 'The cat sat on the mat and purred.' },
      ],
      [
        { role: 'user', content: 'Name a colour.' },
        { role: 'assistant', content: 'Red.' },
        { role: 'user', content: 'Another one?' },
        { role: 'assistant', content: 'Green, like the grass.' },
      ],
      [
        { role: 'user', content: LONG_PROMPT },
        { role: 'assistant', content: 'Because the sky is big.' },
      ],
      [
        { role: 'user', content: 'Count to three.' },
        { role: 'assistant', content: 'One, two, three.' },
      ],
    ]
      .map((messages) => JSON.stringify({ messages }))
      .join('\n'),
    seqLen: 20,
    validationFraction: 0.25,
    template: 'lines',
  },
  {
    kind: 'chat',
    fileName: 'run-on.jsonl',
    content: [
      [
        { role: 'user', content: 'Is it far?' },
        // "so" runs into the next turn's "user": one token carries both.
        { role: 'assistant', content: 'It is so' },
        { role: 'user', content: 'Why?' },
        { role: 'assistant', content: 'Because the hill is tall.' },
      ],
      [
        { role: 'user', content: 'Where did Tim go?' },
        { role: 'assistant', content: 'He went to the park to play' },
      ],
      [
        { role: 'system', content: 'Be kind.' },
        { role: 'user', content: 'Say yes' },
        { role: 'assistant', content: 'yes' },
        { role: 'user', content: 'And again?' },
        { role: 'assistant', content: 'yes, yes' },
      ],
      [
        { role: 'user', content: 'Say one' },
        { role: 'assistant', content: 'one' },
        { role: 'user', content: 'Go on.' },
        { role: 'assistant', content: 'two' },
      ],
    ]
      .map((messages) => JSON.stringify({ messages }))
      .join('\n'),
    seqLen: 10,
    validationFraction: 0.25,
    template: 'runOn',
  },
] as const;

/** Every text and conversation train.py will ask the tokenizer about, with the answers. */
function tokenizerTable(examples: readonly Example[], tokenizer: TextTokenizer, chat: Template) {
  const texts = new Set<string>(['']);
  const chats: { messages: ChatMessage[]; add_generation_prompt: boolean; text: string }[] = [];
  for (const e of examples) {
    if (e.kind === 'text') texts.add(e.text);
    if (e.kind === 'completion') texts.add(e.prompt + e.completion).add(e.prompt);
    if (e.kind === 'chat')
      for (let upTo = 0; upTo <= e.messages.length; upTo++)
        for (const add of [false, true]) {
          const text = chat(e.messages.slice(0, upTo), add);
          chats.push({ messages: e.messages.slice(0, upTo), add_generation_prompt: add, text });
          texts.add(text).add(text.trimEnd());
        }
  }
  const encode = (specialTokens: boolean) =>
    Object.fromEntries([...texts].map((t) => [t, tokenizer.encode(t, { specialTokens })]));
  return {
    bos: tokenizer.bosId,
    eos: tokenizer.eosIds[0],
    // train.py gives a tokenizer without a pad token its EOS.
    pad: tokenizer.eosIds[0],
    special: encode(true),
    plain: encode(false),
    chats,
  };
}

/** Imports the exported train.py and prints its windows for each split file, as JSON. */
const DRIVER = String.raw`
import importlib.util, json, sys

table = json.load(open(sys.argv[1]))
chats = {
    (tuple((m["role"], m["content"]) for m in c["messages"]), c["add_generation_prompt"]): c["text"]
    for c in table["chats"]
}


class StandInTokenizer:
    """What train.py asks of a Hugging Face tokenizer, answered from the studio's encodings."""

    bos_token_id = table["bos"]
    eos_token_id = table["eos"]
    pad_token_id = table["pad"]

    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": list(table["special" if add_special_tokens else "plain"][text])}

    def apply_chat_template(self, messages, tokenize=True, add_generation_prompt=False):
        assert tokenize is False
        return chats[(tuple((m["role"], m["content"]) for m in messages), add_generation_prompt)]


spec = importlib.util.spec_from_file_location("train", sys.argv[2])
train = importlib.util.module_from_spec(spec)
spec.loader.exec_module(train)
heavy = [m for m in ("torch", "transformers", "peft", "trl", "datasets") if m in sys.modules]
assert not heavy, "train.py imports at its top: " + ", ".join(heavy)
seq_len = int(sys.argv[3])
out = {}
for name in sys.argv[4:]:
    with open(name) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    out[name] = list(train.studio_sequences(rows, StandInTokenizer(), seq_len))
print(json.dumps(out))
`;

interface Window {
  input_ids: number[];
  attention_mask: number[];
  labels: number[];
}

/** A train.py window as the studio's Sequence: inputs (padding as 0) and shifted targets (-1). */
function asStudio(w: Window, seqLen: number): { input: number[]; target: number[] } {
  expect(w.input_ids).toHaveLength(seqLen + 1);
  return {
    input: w.input_ids.slice(0, seqLen).map((id, t) => (w.attention_mask[t] ? id : 0)),
    target: w.labels.slice(1, seqLen + 1).map((l) => (l === -100 ? -1 : l)),
  };
}

const plain = (s: Sequence) => ({ input: [...s.input], target: [...s.target] });

describe.skipIf(!PYTHON)('train.py data loader (python3)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lora-studio-train-py-'));
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it.each(CASES)(
    '$fileName: the windows of the studio’s own sequences, split by split',
    ({ fileName, content, seqLen, validationFraction, template }) => {
      const chat = TEMPLATES[template];
      const tokenizer = withTemplate(chat);
      const lora: LoraSpec = {
        rank: 4,
        alpha: 8,
        rslora: false,
        targets: ['attention'],
        dropout: 0,
        init: 'lora',
        variant: 'lora',
      };
      const data = { fileName, content };
      const checkpoint = runCheckpoint({
        lora,
        data,
        seqLen,
        validationFraction,
        train: { seed: 5 },
      });
      const files = exportRunFiles(handoffRun(checkpoint, data), 'trl');
      const caseDir = join(dir, fileName);
      for (const [name, bytes] of files) {
        const path = join(caseDir, name);
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, bytes);
      }
      writeFileSync(join(caseDir, 'driver.py'), DRIVER);
      writeFileSync(
        join(caseDir, 'tokenizer.json'),
        JSON.stringify(tokenizerTable(parseDataset(content, fileName), tokenizer, chat)),
      );
      const splits = ['data/train.jsonl', 'data/validation.jsonl'];
      const stdout = execFileSync(
        PYTHON!,
        ['driver.py', 'tokenizer.json', 'train.py', String(seqLen), ...splits],
        { cwd: caseDir, encoding: 'utf8' },
      );
      const windows = JSON.parse(stdout) as Record<string, Window[]>;

      const studio = prepareDataset(content, fileName, tokenizer, {
        seqLen,
        validationFraction,
        seed: 5,
      });
      const [train, validation] = splits.map((s) => windows[s].map((w) => asStudio(w, seqLen)));
      // The cases are chosen to need several windows, padding and (for prompts) a skipped window.
      expect(studio.train.length).toBeGreaterThan(2);
      expect(studio.validation.length).toBeGreaterThan(0);
      expect(train).toEqual(studio.train.map(plain));
      expect(validation).toEqual(studio.validation.map(plain));
    },
  );
});

if (!PYTHON) console.warn('train.py data loader test skipped: python3 is not on PATH');
