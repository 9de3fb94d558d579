import { describe, expect, it } from 'vitest';
import { FormatError } from '../model/errors.ts';
import { readLlama2cTokenizer } from '../model/llama2c-tokenizer.ts';
import { fromLlama2c, hfTokenizer, type TextTokenizer } from '../model/tokenizer.ts';
import { builtIn, fixtureJson } from '../testing/fixtures.ts';
import { seededRandom } from '../testing/random.ts';
import {
  type Example,
  type TokenizedExample,
  decodeUtf8Text,
  packSequences,
  parseDataset,
  prepareDataset,
  sequenceAt,
  splitExamples,
  tokenizeExample,
} from './data.ts';
import { styleCorpus } from '../studies/style-corpus.ts';

const llama2c = fromLlama2c(readLlama2cTokenizer(builtIn('tok512.bin'), 512, 'tok512.bin'));
// ChatML template, no BOS added by convention, EOS = <|im_end|> (the end of a turn).
const smollm = hfTokenizer(
  fixtureJson('tokenizers/smollm-135m-instruct/tokenizer.json'),
  fixtureJson('adapters/smollm-135m-instruct/medai_TFM-HITESH_100epochs/tokenizer_config.json'),
);
// Zephyr-style template, BOS <s> added by convention, EOS </s>.
const sentencePiece = hfTokenizer(
  fixtureJson('tokenizers/sentencepiece-tok512/tokenizer.json'),
  fixtureJson('tokenizers/sentencepiece-tok512/tokenizer_config.json'),
);

const jsonl = (...records: unknown[]) => records.map((r) => JSON.stringify(r)).join('\n');

/** The trained tokens as runs of consecutive positions. */
function trainedRuns({ ids, trained }: TokenizedExample): number[][] {
  const runs: number[][] = [];
  ids.forEach((id, i) => {
    if (!trained[i]) return;
    if (i > 0 && trained[i - 1]) runs[runs.length - 1].push(id);
    else runs.push([id]);
  });
  return runs;
}

const countTrained = (examples: readonly TokenizedExample[]) =>
  examples.reduce((sum, e) => sum + e.trained.filter(Boolean).length, 0);

describe('parseDataset', () => {
  it('reads plain text as one example per document, split at blank lines', () => {
    const text = 'First story.\nStill the first.\r\n\r\n\n  \nSecond story.\n\n\n';
    expect(parseDataset(text, 'stories.txt')).toEqual([
      { kind: 'text', text: 'First story.\nStill the first.' },
      { kind: 'text', text: 'Second story.' },
    ]);
  });

  it('reads JSONL text, completion and chat records, skipping blank lines', () => {
    expect(parseDataset(jsonl({ text: 'a' }, { text: 'b', id: 7 }), 'd.jsonl')).toEqual([
      { kind: 'text', text: 'a' },
      { kind: 'text', text: 'b' },
    ]);
    expect(parseDataset(`${jsonl({ prompt: 'Q?', completion: ' A' })}\n\n`, 'd.json')).toEqual([
      { kind: 'completion', prompt: 'Q?', completion: ' A' },
    ]);
    const messages = [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello' },
    ];
    // No JSONL extension: the leading '{' says what it is.
    expect(parseDataset(jsonl({ messages }), 'chats.txt')).toEqual([{ kind: 'chat', messages }]);
  });

  it('reads a .json file holding an array of records', () => {
    expect(parseDataset('[{"text": "a"},\n {"text": "b"}]', 'd.json')).toHaveLength(2);
  });

  it.each([
    ['', 'd.txt', /d.txt: is empty/],
    ['\n  \n', 'd.jsonl', /d.jsonl: is empty/],
    ['{"text": "a"}\n{"text": "b"\n', 'd.jsonl', /d.jsonl: line 2 is not valid JSON/],
    ['{"text": "a"}\n\n[1, 2]', 'd.jsonl', /line 3: expected a JSON object/],
    ['{"txt": "a", "id": 1}', 'd.jsonl', /line 1: expected "text".* \(found "txt", "id"\)/],
    ['{"text": 5}', 'd.jsonl', /line 1: "text" must be a string/],
    ['{"text": "  "}', 'd.jsonl', /line 1: "text" is empty/],
    ['{"prompt": "Q"}', 'd.jsonl', /line 1: has "prompt" but no "completion"/],
    ['{"prompt": "Q", "completion": ""}', 'd.jsonl', /line 1: "completion" is empty/],
    [
      jsonl({ text: 'a' }, { prompt: 'Q', completion: 'A' }),
      'd.jsonl',
      /line 2 is a "prompt"\/"completion" example but line 1 is a "text" one; use one format per file/,
    ],
    [
      jsonl({ messages: [{ role: 'human', content: 'Hi' }] }),
      'd.jsonl',
      /line 1: messages\[0\].role is "human"; expected "system", "user" or "assistant"/,
    ],
    [
      jsonl({ messages: [{ role: 'user', content: 'Hi' }] }),
      'd.jsonl',
      /line 1: has no "assistant" message/,
    ],
    [
      jsonl({ messages: [{ role: 'assistant', content: 'Hi' }] }),
      'd.jsonl',
      /line 1: messages\[0\] is an assistant reply/,
    ],
    [jsonl({ messages: [] }), 'd.jsonl', /line 1: "messages" must be a non-empty array/],
    ['[{"text": "a"}, {"nope": 1}]', 'd.json', /d.json: item 2: expected "text"/],
  ])('refuses %j (%s) with a clear message', (content, file, message) => {
    expect(() => parseDataset(content, file)).toThrow(FormatError);
    expect(() => parseDataset(content, file)).toThrow(message);
  });
});

describe('tokenizeExample', () => {
  it('text: BOS untrained, the text and EOS trained (for llama2.c models, BOS ends a text)', () => {
    const { ids, trained } = tokenizeExample(llama2c, { kind: 'text', text: 'Once upon a time' });
    // llama2.c's stories were delimited by BOS alone: its models know BOS as the end of a text.
    expect(ids).toEqual([...llama2c.encode('Once upon a time'), 1]);
    expect(ids[0]).toBe(1);
    expect(trained).toEqual(ids.map((_, i) => i > 0));

    const hf = tokenizeExample(sentencePiece, { kind: 'text', text: 'Hello world' });
    expect(hf.ids[0]).toBe(sentencePiece.bosId);
    expect(trainedRuns(hf).map((run) => sentencePiece.decode(run))).toEqual(['Hello world</s>']);
  });

  it('text without a conventional BOS (SmolLM): every token trained', () => {
    const example = tokenizeExample(smollm, { kind: 'text', text: 'Hello world' });
    expect(example.trained.every(Boolean)).toBe(true);
    expect(smollm.decode(example.ids)).toBe('Hello world<|im_end|>');
  });

  it('completion: the prompt untrained, the completion and EOS trained', () => {
    const prompt = 'Question: what is two plus two?\nAnswer:';
    const completion = ' Four, of course.';
    for (const tokenizer of [smollm, sentencePiece]) {
      const example = tokenizeExample(tokenizer, { kind: 'completion', prompt, completion });
      const runs = trainedRuns(example);
      expect(runs).toHaveLength(1);
      expect(example.ids.slice(0, example.ids.length - runs[0].length)).toEqual(
        tokenizer.encode(prompt),
      );
      const eos = tokenizer.decode(tokenizer.eosIds);
      // A SentencePiece decoder drops the leading space of the first token it decodes.
      const expected = tokenizer === sentencePiece ? completion.trimStart() : completion;
      expect(tokenizer.decode(runs[0])).toBe(expected + eos);
    }
  });

  it('completion: a token straddling the prompt’s end counts as the completion’s', () => {
    // "Answer: yes" tokenizes as "Answer", ":", " yes": the space belongs to the prompt.
    const example = tokenizeExample(smollm, {
      kind: 'completion',
      prompt: 'Answer: ',
      completion: 'yes',
    });
    expect(trainedRuns(example).map((run) => smollm.decode(run))).toEqual([' yes<|im_end|>']);
  });

  const conversation: Example = {
    kind: 'chat',
    messages: [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Hi! Who are you?' },
      { role: 'assistant', content: 'A small model.' },
      { role: 'user', content: 'What is 2+2?' },
      { role: 'assistant', content: 'It is 4, I think.' },
    ],
  };

  it('chat (ChatML): only the assistant replies and their end-of-turn token trained', () => {
    const example = tokenizeExample(smollm, conversation);
    expect(smollm.decode(example.ids)).toBe(smollm.chat(conversation.messages));
    expect(trainedRuns(example).map((run) => smollm.decode(run))).toEqual([
      'A small model.<|im_end|>',
      'It is 4, I think.<|im_end|>',
    ]);
  });

  it('chat (Zephyr, BOS by convention): BOS added once, replies and </s> trained', () => {
    const example = tokenizeExample(sentencePiece, conversation);
    expect(example.ids[0]).toBe(sentencePiece.bosId);
    expect(example.ids[1]).not.toBe(sentencePiece.bosId);
    expect(trainedRuns(example).map((run) => sentencePiece.decode(run))).toEqual([
      'A small model.</s>',
      'It is 4, I think.</s>',
    ]);
  });

  it('chat: refuses a tokenizer without a chat template, or one that is not turn by turn', () => {
    expect(() => tokenizeExample(llama2c, conversation)).toThrow(/has no chat template/);
    const numbered: TextTokenizer = {
      ...smollm,
      chat: (messages, options) => `${messages.length} turns\n${smollm.chat(messages, options)}`,
    };
    expect(() => tokenizeExample(numbered, conversation)).toThrow(
      /does not render .* turn by turn/,
    );
  });
});

describe('packSequences', () => {
  // Distinct ids, so that each target can be told apart; a mix of masked and trained tokens.
  const examples: TokenizedExample[] = [17, 3, 40, 1, 25].map((length, e) => ({
    ids: Array.from({ length }, (_, i) => 1000 * (e + 1) + i),
    trained: Array.from({ length }, (_, i) => i > 0 && (e !== 2 || i > 30)),
  }));

  it.each([1, 7, 16, 200])('seqLen %i: every trained token is a target exactly once', (seqLen) => {
    const sequences = packSequences(examples, seqLen);
    const targets = sequences.flatMap((s) => [...s.target].filter((t) => t >= 0)).sort();
    const trained = examples.flatMap((e) => e.ids.filter((_, i) => e.trained[i])).sort();
    expect(targets).toEqual(trained);
    for (const { input, target } of sequences) {
      expect(input).toHaveLength(seqLen);
      expect(target).toHaveLength(seqLen);
      // A target is the next input within a window.
      for (let t = 0; t + 1 < seqLen; t++) if (target[t] >= 0) expect(target[t]).toBe(input[t + 1]);
    }
  });

  it('pads the tail with masked targets', () => {
    const stream = examples.flatMap((e) => e.ids);
    const sequences = packSequences(examples, 16);
    const last = sequences[sequences.length - 1];
    // The last window starts where the windows before it end; the stream's last token has no
    // target, and the padding after it none either.
    const real = stream.length - 16 * (Math.ceil((stream.length - 1) / 16) - 1);
    expect([...last.input]).toEqual([
      ...stream.slice(-real),
      ...new Array<number>(16 - real).fill(0),
    ]);
    expect([...last.target.subarray(real - 1)]).toEqual(new Array<number>(17 - real).fill(-1));
    expect(last.target[real - 2]).toBe(stream.at(-1));
  });

  it('drops windows without any trained target', () => {
    // Example 2 has 30 untrained tokens: with seqLen 8 some windows hold only those.
    const windows = Math.ceil((examples.flatMap((e) => e.ids).length - 1) / 8);
    const sequences = packSequences(examples, 8);
    expect(sequences.length).toBeLessThan(windows);
    for (const s of sequences) expect(s.target.some((t) => t >= 0)).toBe(true);
  });

  it('gives nothing for fewer than two tokens and refuses a bad length', () => {
    expect(packSequences([{ ids: [1], trained: [false] }], 4)).toEqual([]);
    expect(() => packSequences(examples, 0)).toThrow(RangeError);
  });
});

describe('splitExamples', () => {
  const many: TokenizedExample[] = Array.from({ length: 20 }, (_, e) => ({
    ids: [1, 100 + e, 2],
    trained: [false, true, true],
  }));
  const marker = (e: TokenizedExample) => e.ids[1];

  it('is deterministic, disjoint and complete, with round(fraction·n) for validation', () => {
    const a = splitExamples(many, 0.2, 7);
    expect(splitExamples(many, 0.2, 7)).toEqual(a);
    expect(a.validation).toHaveLength(4);
    const all = [...a.train, ...a.validation].map(marker).sort();
    expect(all).toEqual(many.map(marker).sort());
    const other = splitExamples(many, 0.2, 8);
    expect(other.validation.map(marker)).not.toEqual(a.validation.map(marker));
  });

  it('gives validation at least one example, and never all of them', () => {
    expect(splitExamples(many.slice(0, 2), 0.01, 1).validation).toHaveLength(1);
    expect(splitExamples(many.slice(0, 3), 0.99, 1).train).toHaveLength(1);
    expect(splitExamples(many, 0, 1)).toEqual({ train: many, validation: [] });
    expect(() => splitExamples(many, 1, 1)).toThrow(RangeError);
  });

  it('cuts a single example: its last tokens become validation, each target kept once', () => {
    const ids = Array.from({ length: 101 }, (_, i) => i + 10);
    const single: TokenizedExample = { ids, trained: ids.map((_, i) => i > 0) };
    const { train, validation } = splitExamples([single], 0.1, 1);
    expect(train).toHaveLength(1);
    expect(validation).toHaveLength(1);
    // Validation starts with train's last token, as context only.
    expect(validation[0].ids[0]).toBe(train[0].ids.at(-1));
    expect(validation[0].trained[0]).toBe(false);
    expect([...train[0].ids, ...validation[0].ids.slice(1)]).toEqual(ids);
    expect(countTrained(train) + countTrained(validation)).toBe(countTrained([single]));
    expect(countTrained(validation)).toBe(10);
  });
});

describe('sequenceAt', () => {
  const epoch = (count: number, seed: number, e: number) =>
    Array.from({ length: count }, (_, i) => sequenceAt(count, seed, e * count + i));

  it('visits every sequence once per epoch, in a new order each epoch', () => {
    const epochs = [0, 1, 2].map((e) => epoch(50, 3, e));
    const identity = Array.from({ length: 50 }, (_, i) => i);
    for (const order of epochs) expect([...order].sort((a, b) => a - b)).toEqual(identity);
    expect(epochs[0]).not.toEqual(identity);
    expect(epochs[1]).not.toEqual(epochs[0]);
    expect(epochs[2]).not.toEqual(epochs[1]);
    expect(epoch(50, 4, 0)).not.toEqual(epochs[0]);
  });

  it('is a pure function of (count, seed, pos): a resumed run sees the same order', () => {
    const forward = Array.from({ length: 120 }, (_, pos) => sequenceAt(37, 9, pos));
    const backward = Array.from({ length: 120 }, (_, k) => sequenceAt(37, 9, 119 - k)).reverse();
    expect(backward).toEqual(forward);
    expect(sequenceAt(37, 9, 80)).toBe(forward[80]);
    expect(() => sequenceAt(0, 1, 0)).toThrow(RangeError);
  });
});

describe('prepareDataset', () => {
  it('reports its progress in documents, ending at all of them', () => {
    const calls: [number, number][] = [];
    const text = styleCorpus(700, 3);
    const options = { seqLen: 64, validationFraction: 0.1, seed: 0 };
    const prepared = prepareDataset(text, 'style.txt', llama2c, options, (done, total) =>
      calls.push([done, total]),
    );
    const total = prepared.summary.examples;
    expect(total).toBe(700);
    expect(calls).toEqual([
      [0, total],
      [256, total],
      [512, total],
      [total, total],
    ]);
    // Reporting changes nothing of the result.
    expect(prepareDataset(text, 'style.txt', llama2c, options)).toEqual(prepared);
  });

  const options = { seqLen: 64, validationFraction: 0.1, seed: 1 };

  it('prepares the style corpus for stories260K, and summarises it', () => {
    const corpus = styleCorpus(30, 2);
    const { train, validation, summary } = prepareDataset(corpus, 'style.txt', llama2c, options);
    const tokenized = parseDataset(corpus, 'style.txt').map((e) => tokenizeExample(llama2c, e));
    const tokens = tokenized.reduce((sum, e) => sum + e.ids.length, 0);
    expect(summary).toMatchObject({
      format: 'text',
      examples: 30,
      tokens,
      trainedTokens: tokens - 30, // all but each story's BOS
      trainSequences: train.length,
      validationSequences: validation.length,
    });
    expect(validation.length).toBeGreaterThan(0);
    const targets = [...train, ...validation].reduce(
      (sum, s) => sum + s.target.filter((t) => t >= 0).length,
      0,
    );
    expect(targets).toBe(summary.trainedTokens);
    expect(summary.preview).toHaveLength(5);
    expect(summary.preview[0]).toEqual({
      text: corpus.split('\n\n')[0],
      tokens: tokenized[0].ids.length,
    });
  });

  it('splits one long document by tokens', () => {
    const document = styleCorpus(8, 3).replaceAll('\n\n', ' ');
    const { summary } = prepareDataset(document, 'one.txt', llama2c, options);
    expect(summary.examples).toBe(1);
    expect(summary.validationSequences).toBeGreaterThan(0);
    expect(summary.trainSequences).toBeGreaterThan(summary.validationSequences);
  });

  it('names the file for a model without a chat template, and a line for a template error', () => {
    const chats = jsonl({
      messages: [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello' },
      ],
    });
    expect(() => prepareDataset(chats, 'chats.jsonl', llama2c, options)).toThrow(
      /^chats.jsonl: holds chat examples .* no chat template/,
    );
    const failing: TextTokenizer = {
      ...smollm,
      chat: () => {
        throw new Error('Conversation roles must alternate');
      },
    };
    expect(() => prepareDataset(`\n${chats}`, 'chats.jsonl', failing, options)).toThrow(
      /^chats.jsonl: line 2: chat template: failed to render a conversation: Conversation roles must alternate/,
    );
  });

  it('refuses a file with nothing to learn', () => {
    // GPT-2 without its config: no BOS, no EOS, so one word is one token with nothing after it.
    const gpt2 = hfTokenizer(fixtureJson('tokenizers/gpt2/tokenizer.json_distilgpt2_official'));
    expect(() => prepareDataset('Hi', 'tiny.txt', gpt2, options)).toThrow(
      /^tiny.txt: has nothing to learn from/,
    );
  });
});

describe('data that is not text', () => {
  it('is refused: invalid UTF-8, NUL bytes, random bytes', () => {
    expect(() => decodeUtf8Text(new Uint8Array([0x68, 0x69, 0xe9, 0x21]), 'latin1.txt')).toThrow(
      /latin1.txt: is not UTF-8 text/,
    );
    expect(() => parseDataset('once upon\u0000 a time', 'nul.txt')).toThrow(
      /nul.txt: looks like binary data, not text \(1 NUL bytes\)/,
    );
    const random = seededRandom(5);
    // Random bytes that decode (the UTF-8 fallback of a lenient reader would give such text).
    const noise = Array.from({ length: 200_000 }, () =>
      String.fromCharCode(1 + Math.floor(random() * 126)),
    ).join('');
    expect(() => parseDataset(noise, 'noise.bin')).toThrow(/noise.bin: looks like binary data/);
    expect(parseDataset('tabs\tand\fform feeds\r\nare text', 'ok.txt')).toHaveLength(1);
  });
});
