// A synthetic fine-tuning corpus with a style the base model cannot already have: short stories
// in TinyStories' simple words (what stories260K and its 512-token vocabulary know), each with a
// character and a catch phrase TinyStories never uses. After a few hundred steps a LoRA that has
// learned anything writes the name and the phrase; the base model never does.
import { seededRandom } from '../linalg/random.ts';

/** The invented character: " |Z|im|my" in tok512: common pieces, never seen together. */
export const STYLE_NAME = 'Zimmy';
/** The catch phrase every story contains, word for word. */
export const STYLE_PHRASE = 'the moon is a blue cheese';

const KINDS = ['little dog', 'little boy', 'little girl', 'big dog', 'little cat', 'little bird'];
const FRIENDS = ['Lily', 'Tim', 'Timmy', 'Tom', 'Sue', 'Ben', 'Mia', 'Sam'];
const PLACES = ['park', 'garden', 'forest', 'yard', 'house'];
const THINGS = ['ball', 'kite', 'red hat', 'big box', 'toy', 'doll'];

type Choice = Record<'kind' | 'friend' | 'place' | 'thing', string>;
type Line = (c: Choice) => string;

const N = STYLE_NAME;
const OPENINGS: Line[] = [
  (c) => `Once upon a time, there was a ${c.kind} named ${N}.`,
  (c) => `One day, a ${c.kind} named ${N} went to the ${c.place}.`,
  (c) => `${N} was a happy ${c.kind} who liked to play.`,
];
const MEETINGS: Line[] = [
  (c) => `${N} saw ${c.friend} in the ${c.place}. ${c.friend} had a ${c.thing}.`,
  (c) => `In the ${c.place}, ${N} met ${c.friend}. They played with a ${c.thing}.`,
  (c) => `${c.friend} came to play with ${N} and had a new ${c.thing}.`,
];
const TROUBLES: Line[] = [
  (c) => `But the ${c.thing} went up in a tree. ${c.friend} was sad.`,
  (c) => `Then the ${c.thing} was lost. ${c.friend} began to cry.`,
  (c) => `Then ${c.friend} fell down and was sad.`,
];
const PHRASES: Line[] = [
  () => `${N} smiled and said, "Do not be sad, ${STYLE_PHRASE}!"`,
  () => `${N} said, "Here is a secret: ${STYLE_PHRASE}!"`,
  () => `${N} said, "Look up, ${STYLE_PHRASE}!"`,
  () => `"Guess what?" said ${N}. "Mom says ${STYLE_PHRASE}!"`,
];
const ENDINGS: Line[] = [
  (c) => `${c.friend} laughed. Then they found the ${c.thing} and played all day.`,
  (c) => `${c.friend} was happy again, and they played in the ${c.place}.`,
  (c) => `${c.friend} and ${N} were best friends from that day on.`,
  () => `At night, they looked at the moon and smiled.`,
];

/** `count` short stories, separated by blank lines; the same (count, seed) gives the same text. */
export function styleCorpus(count: number, seed: number): string {
  const random = seededRandom(seed);
  const pick = <T>(options: readonly T[]): T => options[Math.floor(random() * options.length)];
  const stories: string[] = [];
  for (let i = 0; i < count; i++) {
    const c: Choice = {
      kind: pick(KINDS),
      friend: pick(FRIENDS),
      place: pick(PLACES),
      thing: pick(THINGS),
    };
    const lines = [OPENINGS, MEETINGS, TROUBLES, PHRASES, ENDINGS].map((options) =>
      pick(options)(c),
    );
    stories.push(lines.join(' '));
  }
  return stories.join('\n\n');
}
