// Synthetic fine-tuning corpora with styles the base model cannot already have: short stories in
// TinyStories' simple words (what stories260K and its 512-token vocabulary know), each with a
// character and a catch phrase TinyStories never uses. After a few steps a LoRA that has learned
// anything writes the name and the phrase; the base model never does. Two styles that differ in
// narrator, cast, plot and phrase give two adapters to merge and tell apart (src/merge/report.ts).
import { seededRandom } from '../linalg/random.ts';

/** One invented style: who it is about, the phrase every story says, and its stories. */
export interface StyleCorpus {
  /** The invented character, in every story. */
  name: string;
  /** The catch phrase every story contains, word for word. */
  phrase: string;
  /** `count` short stories, separated by blank lines; the same (count, seed) gives the same text. */
  stories(count: number, seed: number): string;
}

type Choice = Record<'kind' | 'friend' | 'place' | 'thing', string>;
type Line = (c: Choice) => string;

/** What a style varies: the cast to draw from, and the story's parts in order, one line each. */
interface StyleRecipe {
  name: string;
  phrase: string;
  cast: Record<keyof Choice, readonly string[]>;
  parts: readonly (readonly Line[])[];
}

/** Draws the cast, then one line per part: the draw order is what keeps old corpora unchanged. */
function storyTeller(recipe: StyleRecipe): StyleCorpus {
  const { cast, parts } = recipe;
  return {
    name: recipe.name,
    phrase: recipe.phrase,
    stories(count, seed) {
      const random = seededRandom(seed);
      const pick = <T>(options: readonly T[]): T => options[Math.floor(random() * options.length)];
      const stories: string[] = [];
      for (let i = 0; i < count; i++) {
        const c: Choice = {
          kind: pick(cast.kind),
          friend: pick(cast.friend),
          place: pick(cast.place),
          thing: pick(cast.thing),
        };
        stories.push(parts.map((options) => pick(options)(c)).join(' '));
      }
      return stories.join('\n\n');
    },
  };
}

// ─── Zimmy: told about a playful character, " |Z|im|my" in tok512 (common pieces, never seen
// together), who cheers friends up with nonsense. ───────────────────────────────────────────────

const Z = 'Zimmy';
const MOON = 'the moon is a blue cheese';

export const ZIMMY_STYLE: StyleCorpus = storyTeller({
  name: Z,
  phrase: MOON,
  cast: {
    kind: ['little dog', 'little boy', 'little girl', 'big dog', 'little cat', 'little bird'],
    friend: ['Lily', 'Tim', 'Timmy', 'Tom', 'Sue', 'Ben', 'Mia', 'Sam'],
    place: ['park', 'garden', 'forest', 'yard', 'house'],
    thing: ['ball', 'kite', 'red hat', 'big box', 'toy', 'doll'],
  },
  parts: [
    [
      (c) => `Once upon a time, there was a ${c.kind} named ${Z}.`,
      (c) => `One day, a ${c.kind} named ${Z} went to the ${c.place}.`,
      (c) => `${Z} was a happy ${c.kind} who liked to play.`,
    ],
    [
      (c) => `${Z} saw ${c.friend} in the ${c.place}. ${c.friend} had a ${c.thing}.`,
      (c) => `In the ${c.place}, ${Z} met ${c.friend}. They played with a ${c.thing}.`,
      (c) => `${c.friend} came to play with ${Z} and had a new ${c.thing}.`,
    ],
    [
      (c) => `But the ${c.thing} went up in a tree. ${c.friend} was sad.`,
      (c) => `Then the ${c.thing} was lost. ${c.friend} began to cry.`,
      (c) => `Then ${c.friend} fell down and was sad.`,
    ],
    [
      () => `${Z} smiled and said, "Do not be sad, ${MOON}!"`,
      () => `${Z} said, "Here is a secret: ${MOON}!"`,
      () => `${Z} said, "Look up, ${MOON}!"`,
      () => `"Guess what?" said ${Z}. "Mom says ${MOON}!"`,
    ],
    [
      (c) => `${c.friend} laughed. Then they found the ${c.thing} and played all day.`,
      (c) => `${c.friend} was happy again, and they played in the ${c.place}.`,
      (c) => `${c.friend} and ${Z} were best friends from that day on.`,
      () => `At night, they looked at the moon and smiled.`,
    ],
  ],
});

// ─── Snorp: told by the character, in the first person and the present of a diary — another
// narrator, cast and plot (weather, not a lost toy) — " |S|n|or|p" in tok512. ─────────────────

const S = 'Snorp';
const SUN = 'the sun has cold toes';

export const SNORP_STYLE: StyleCorpus = storyTeller({
  name: S,
  phrase: SUN,
  cast: {
    kind: ['little frog', 'little bear', 'little duck', 'small fox', 'little mouse'],
    friend: ['Max', 'Anna', 'Lucy', 'Jack', 'Kitty', 'Bob', 'Jane'],
    place: ['pond', 'hill', 'beach', 'farm', 'lake'],
    thing: ['boat', 'cake', 'drum', 'blue ball', 'little car', 'big book'],
  },
  parts: [
    [
      (c) => `My name is ${S}. I am a ${c.kind} and I live near the ${c.place}.`,
      (c) => `Hello! I am ${S}, a ${c.kind}. This is my day.`,
      (c) => `I am ${S}, a ${c.kind}. Every morning I go to the ${c.place}.`,
    ],
    [
      (c) => `Today my friend ${c.friend} and I play with my ${c.thing}.`,
      (c) => `I take my ${c.thing} to the ${c.place}, and ${c.friend} comes too.`,
      (c) => `${c.friend} asks, "Can I play with your ${c.thing}?" I say yes.`,
    ],
    [
      () => `Then it starts to rain, and we run under a big tree.`,
      (c) => `Then a big wind comes and takes my ${c.thing} away.`,
      () => `Then the sky gets dark, and we are a little scared.`,
    ],
    [
      (c) => `I tell ${c.friend} what Grandma says: ${SUN}.`,
      () => `So I sing my song: "La la la, ${SUN}!"`,
      () => `I say, "Do not worry, ${SUN}."`,
      () => `I whisper, "You know, ${SUN}."`,
    ],
    [
      () => `We laugh and go home for soup.`,
      (c) => `${c.friend} gives me a big hug. I am very happy.`,
      (c) => `Tonight I will dream about the ${c.place}.`,
      () => `And that is my day. I love my friends!`,
    ],
  ],
});

// ─── Momo: an old cow's tale of long ago, in the past tense and with a question to the
// listener — a third narrator, cast and plot (a journey), for routing between three adapters. ───

const W = 'Momo';
const RAIN = 'the rain tastes like milk';

export const MOMO_STYLE: StyleCorpus = storyTeller({
  name: W,
  phrase: RAIN,
  cast: {
    kind: ['old cow', 'old goat', 'old owl', 'old horse'],
    friend: ['Nina', 'Leo', 'Rosa', 'Ted', 'Ella', 'Fred'],
    place: ['river', 'town', 'road', 'sea'],
    thing: ['map', 'lamp', 'bag', 'shoe', 'bell'],
  },
  parts: [
    [
      (c) => `Long ago, an ${c.kind} called ${W} went to the ${c.place}.`,
      (c) => `Do you know ${W}, the ${c.kind}? Long ago, he walked to the ${c.place}.`,
      (c) => `Long ago, ${W} the ${c.kind} left home for the ${c.place}.`,
    ],
    [
      (c) => `On the way, ${W} met ${c.friend}, who had lost a ${c.thing}.`,
      (c) => `${c.friend} walked with ${W} and carried an old ${c.thing}.`,
      (c) => `${W} found a ${c.thing} and gave it to ${c.friend}.`,
    ],
    [
      () => `The road was long, and they were tired.`,
      (c) => `Then they could not find the way to the ${c.place}.`,
      () => `Then the night came, and it was cold.`,
    ],
    [
      () => `${W} looked up and said, "Do not fear, ${RAIN}."`,
      () => `${W} told an old story: ${RAIN}.`,
      () => `"Listen," said ${W}, "${RAIN}."`,
    ],
    [
      (c) => `In the morning they came to the ${c.place}. Was it not a good trip?`,
      (c) => `${c.friend} smiled, and they walked on. What did they see?`,
      () => `${W} still tells this tale. Do you like it?`,
    ],
  ],
});

/** Both styles, for code that treats them alike. */
export const STYLES: readonly StyleCorpus[] = [ZIMMY_STYLE, SNORP_STYLE];

/** The three styles the routing study routes between (docs/routing.md). */
export const ROUTING_STYLES: readonly StyleCorpus[] = [...STYLES, MOMO_STYLE];

// The first style under its original names, which the tests and the example dataset use.
export const STYLE_NAME = ZIMMY_STYLE.name;
export const STYLE_PHRASE = ZIMMY_STYLE.phrase;
export const styleCorpus = (count: number, seed: number): string =>
  ZIMMY_STYLE.stories(count, seed);
