// Composition links: what a board becomes in a URL fragment and back, and the links a reader
// must refuse before anything is downloaded (damaged, too long, hostile, impossible boards).
import { describe, expect, it } from 'vitest';
import { isRevision, parseHubRef, refText } from '../hub/repo-id.ts';
import { compositionLink, sharedComposition, type SharedComposition } from './composition-link.ts';
import { DEFAULT_MERGE, methodParameters, settingsFromOptions } from './merge-settings.ts';

const COMMIT = '0123456789abcdef0123456789abcdef01234567';
const PAGE = 'https://studio.example/lora/?hub=x';

const BOARD: SharedComposition = {
  baseModel: 'HuggingFaceTB/SmolLM2-135M',
  adapters: [
    { repo: 'erin/zimmy-style', revision: COMMIT, weight: 0.75, on: true },
    { repo: 'sam.k/snorp_style', weight: -0.5, on: true },
    { repo: 'erin/unused', revision: 'refs/pr/3', weight: 1, on: false },
  ],
  merge: {
    method: 'ties_svd',
    density: 0.3,
    rank: { energy: 0.9 },
    layerGrid: {
      modules: ['q_proj', 'v_proj'],
      weights: [
        [1, 0.5],
        [0, 2],
      ],
    },
    lines: { alpha: 0.5, beta: 1 },
  },
  prompt: 'Un jour, « Zimmy » 🦊 a dit',
};

/** The fragment of a link whose JSON is `json` (as a hostile page would make one). */
const fragmentOf = (json: unknown) =>
  `#compose=${Buffer.from(JSON.stringify(json)).toString('base64url')}`;
const linkJson = (patch: Record<string, unknown>) => ({
  lora_studio_composition: 1,
  adapters: [{ repo: 'erin/zimmy', weight: 1, on: true }],
  merge: { method: 'linear' },
  ...patch,
});
const refusal = (hash: string) => {
  try {
    sharedComposition(hash);
  } catch (e) {
    return (e as Error).message;
  }
  return 'accepted';
};

describe('composition links', () => {
  it('carry the board, the merge and the prompt through the fragment and back', () => {
    const link = compositionLink(PAGE, BOARD);
    expect(link.startsWith(`${PAGE}#compose=`)).toBe(true);
    // Safe in a URL as it is: nothing to escape.
    expect(link.slice(link.indexOf('#') + 1)).toMatch(/^compose=[\w-]+$/);
    expect(sharedComposition(new URL(link).hash)).toEqual(BOARD);
    // A link made from a page that already shows a link replaces its fragment.
    expect(compositionLink(link, { ...BOARD, prompt: 'x' })).toMatch(/^[^#]*#compose=[\w-]+$/);
  });

  it('leaves pages without a link alone', () => {
    for (const hash of ['', '#', '#webgpu-help', '#composer=abc'])
      expect(sharedComposition(hash)).toBeNull();
  });

  it('give back the merge card the sender had', () => {
    const settings = {
      ...DEFAULT_MERGE,
      method: 'della_svd' as const,
      density: 0.4,
      epsilon: 0.1,
      rankMode: 'fixed' as const,
      rank: 6,
      clamp: 0.99,
    };
    const merge = { method: settings.method, ...methodParameters(settings), clamp: 0.99 };
    const opened = sharedComposition(new URL(compositionLink(PAGE, { ...BOARD, merge })).hash)!;
    expect(settingsFromOptions(opened.merge)).toEqual(settings);
    const energy = settingsFromOptions({ method: 'svd', rank: { energy: 0.8 } });
    expect([energy.rankMode, energy.energyPercent]).toEqual(['energy', 80]);
    expect(settingsFromOptions({ method: 'linear' })).toEqual({
      ...DEFAULT_MERGE,
      method: 'linear',
    });
  });

  it('refuse, in one line, links that are damaged or hold what a board cannot', () => {
    const cases: [string, RegExp][] = [
      ['#compose=', /cut short or damaged/],
      ['#compose=eyJsb3Jh', /cut short or damaged/],
      ['#compose=%%%', /cut short or damaged.*characters base64url does not use/],
      [`#compose=${'A'.repeat(100_004)}`, /is 100 kB long; a composition fits in 100 kB/],
      [fragmentOf([1, 2]), /holds no LoRA Studio composition/],
      [fragmentOf(linkJson({ lora_studio_composition: 2 })), /another version of the studio/],
      [fragmentOf(linkJson({ adapters: [] })), /must name 1 to 32 adapters/],
      [
        fragmentOf(linkJson({ adapters: Array(33).fill({ repo: 'a/b', weight: 1, on: true }) })),
        /1 to 32/,
      ],
      [
        fragmentOf(linkJson({ adapters: [{ repo: '../../etc', weight: 1, on: true }] })),
        /not a Hub repo id/,
      ],
      [
        fragmentOf(linkJson({ adapters: [{ repo: 'a/b', weight: 1 }] })),
        /whether a\/b is switched on/,
      ],
      [
        fragmentOf(linkJson({ adapters: [{ repo: 'a/b', weight: 9, on: true }] })),
        /weight 9; weights go from -2 to 2/,
      ],
      [fragmentOf(linkJson({ adapters: [{ repo: 'a/b', weight: '1', on: true }] })), /weight 1;/],
      [
        fragmentOf(
          linkJson({ adapters: [{ repo: 'a/b', revision: '../main', weight: 1, on: true }] }),
        ),
        /no branch or commit id/,
      ],
      [
        fragmentOf(
          linkJson({
            adapters: [
              { repo: 'a/b', weight: 1, on: true },
              { repo: 'a/b', revision: 'main', weight: 0, on: false },
            ],
          }),
        ),
        /names a\/b@main twice/,
      ],
      [
        fragmentOf(linkJson({ merge: { method: 'rm -rf' } })),
        /merge settings this studio refuses \(merge: unknown method "rm -rf"/,
      ],
      [
        fragmentOf(linkJson({ merge: { method: 'ties', density: 7 } })),
        /refuses \(merge: .*density/,
      ],
      [
        fragmentOf(
          linkJson({
            merge: { method: 'linear', layerGrid: { modules: ['q_proj'], weights: [[1, 2]] } },
          }),
        ),
        /one number per module type/,
      ],
      [
        fragmentOf(
          linkJson({
            merge: {
              method: 'linear',
              layerGrid: { modules: ['q'], weights: Array(1025).fill([1]) },
            },
          }),
        ),
        /at most 1024 layers/,
      ],
      [fragmentOf(linkJson({ merge: null })), /has no merge method/],
      [
        fragmentOf(linkJson({ prompt: 'x'.repeat(4001) })),
        /prompt that is not text of at most 4000/,
      ],
      [fragmentOf(linkJson({ base_model: 5 })), /base model that is not text/],
    ];
    for (const [hash, expected] of cases) {
      const message = refusal(hash);
      expect(message, hash.slice(0, 80)).toMatch(expected);
      expect(message, hash.slice(0, 80)).toMatch(/^This composition link .*\.$/);
      expect(message).not.toContain('\n');
    }
  });

  it('read refs as people type them', () => {
    expect(parseHubRef(' erin/zimmy ')).toEqual({ repo: 'erin/zimmy' });
    expect(parseHubRef(`erin/zimmy@${COMMIT}`)).toEqual({ repo: 'erin/zimmy', revision: COMMIT });
    expect(parseHubRef('erin/zimmy@refs/pr/1')).toEqual({
      repo: 'erin/zimmy',
      revision: 'refs/pr/1',
    });
    for (const bad of [
      'zimmy',
      'erin/zimmy@',
      'erin/zimmy@a@b',
      'a/b/c',
      'erin/zimmy@../x',
      'erin/zim my',
    ])
      expect(parseHubRef(bad), bad).toBeNull();
    expect(isRevision('v1.0')).toBe(true);
    expect(isRevision('/main')).toBe(false);
    expect(refText({ repo: 'erin/zimmy', revision: COMMIT })).toBe('erin/zimmy@0123456');
    expect(refText({ repo: 'erin/zimmy', revision: 'dev' })).toBe('erin/zimmy@dev');
  });
});
