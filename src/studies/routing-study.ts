// The routing study of docs/routing.md: three adapters trained on stories260K in three invented
// styles (Zimmy, Snorp, Momo), composed statically (task arithmetic at the best shared weight) and
// dynamically (learned scales, token routers dense and top-1, and MixLoRA experts trained from
// scratch), each trained on a mix of the three styles' training texts and measured on each
// style's held-out stories: the loss, the share of the matching adapter's improvement kept, and
// for routers the share of each text's tokens routed to its own adapter. Real training, real
// losses.
import type { PeftAdapter } from '../adapters/peft-read.ts';
import type { Gpu } from '../gpu/device.ts';
import type { ModelConfig } from '../model/config.ts';
import type { GpuModel } from '../model/forward.ts';
import type { TextTokenizer } from '../model/tokenizer.ts';
import { evalSequences, gpuEvaluator, weightSweep, type ReportSource } from '../merge/report.ts';
import type { RoutingMode } from '../routing/modes.ts';
import {
  adapterRouterState,
  RoutedAdapter,
  trainedRouterState,
  type RouterState,
} from '../routing/router.ts';
import {
  DEFAULT_ROUTE_SETTINGS,
  routingUsage,
  trainRouter,
  validationLoss,
} from '../routing/train.ts';
import { prepareDataset } from '../train/data.ts';
import { trainStyleAdapter, type StyleTraining } from './style-adapter.ts';
import { ROUTING_STYLES } from './style-corpus.ts';

export interface RoutingStudySettings {
  adapters: StyleTraining;
  /** Router (and MixLoRA) training steps and learning rates. */
  routerSteps: number;
  routerLr: number;
  expertLr: number;
  log?: (line: string) => void;
}

export interface StudyRow {
  label: string;
  /** Loss on each style's held-out text, by style name. */
  losses: Record<string, number>;
  /** Share of each style's own token routed to its adapter (routers over adapters only). */
  ownShare?: Record<string, number>;
  /** What was learned, in words (the scales; the best weight). */
  note?: string;
}

export interface RoutingStudy {
  styles: string[];
  base: Record<string, number>;
  alone: Record<string, number>;
  rows: StudyRow[];
}

const byStyle = <T>(styles: readonly string[], f: (s: string, i: number) => T): Record<string, T> =>
  Object.fromEntries(styles.map((s, i) => [s, f(s, i)]));

export async function routingStudy(
  gpu: Gpu,
  model: GpuModel,
  config: ModelConfig,
  tokenizer: TextTokenizer,
  s: RoutingStudySettings,
): Promise<RoutingStudy> {
  const log = s.log ?? (() => undefined);
  const sources: ReportSource[] = [];
  for (const style of ROUTING_STYLES) {
    log(`training the ${style.name} adapter (${s.adapters.steps} steps)`);
    const adapter = await trainStyleAdapter(gpu, model, config, tokenizer, style, s.adapters);
    const evalTokens = evalSequences(
      tokenizer,
      style.stories(8, 2),
      'held-out.txt',
      s.adapters.seqLen,
    );
    sources.push({ name: style.name, adapter, evalTokens });
  }
  const styles = sources.map((x) => x.name);
  const adapters: PeftAdapter[] = sources.map((x) => x.adapter);
  const evaluate = gpuEvaluator(gpu, model.base);
  const held = sources.map((x) => x.evalTokens);
  const lossesOf = async (composition: { adapter: PeftAdapter; weight: number }[]) =>
    (await evaluate(composition, held)).map((l) => l ?? NaN);
  const base = await lossesOf([]);
  const alone = await Promise.all(
    sources.map(async (x, i) => (await lossesOf([{ adapter: x.adapter, weight: 1 }]))[i]),
  );
  const rows: StudyRow[] = [];

  log('sweeping the task-arithmetic weight');
  const sweep = await weightSweep(evaluate, sources, [0.2, 0.25, 1 / 3, 0.5, 0.75, 1]);
  const mean = (p: (typeof sweep)[number]) =>
    styles.reduce((a, name) => a + p.losses[name].loss, 0) / styles.length;
  const best = sweep.reduce((a, b) => (mean(b) < mean(a) ? b : a));
  rows.push({
    label: 'task arithmetic, best shared weight',
    losses: byStyle(styles, (name) => best.losses[name].loss),
    note: `w = ${best.weight.toFixed(2)}`,
  });

  // The routers' data: the three styles' training texts, mixed.
  const mix = ROUTING_STYLES.map((style) => style.stories(s.adapters.stories, 1)).join('\n\n');
  const data = prepareDataset(mix, 'mix.txt', tokenizer, {
    seqLen: s.adapters.seqLen,
    validationFraction: 0.1,
    seed: 0,
  });
  const composition = adapters.map((adapter) => ({ adapter, weight: 0.5 }));
  const runs: { label: string; state: RouterState; lr: number; own: boolean }[] = [
    {
      label: 'learned scales (one per adapter)',
      state: adapterRouterState(config, composition, 'scales'),
      lr: s.routerLr,
      own: false,
    },
    {
      label: 'learned scales (per adapter and layer)',
      state: adapterRouterState(config, composition, 'scales', { perLayer: true }),
      lr: s.routerLr,
      own: false,
    },
    {
      label: 'token router, dense',
      state: adapterRouterState(config, composition, 'token', { topK: 0, balance: 0.01 }),
      lr: s.routerLr,
      own: true,
    },
    {
      label: 'token router, top-1',
      state: adapterRouterState(config, composition, 'token', { topK: 1, balance: 0.01 }),
      lr: s.routerLr,
      own: true,
    },
    {
      label: `MixLoRA: 3 experts of rank ${s.adapters.rank}, top-2, from scratch`,
      state: trainedRouterState(config, 'mixlora' satisfies RoutingMode, {
        targets: ['all-linear'],
        experts: 3,
        rank: s.adapters.rank,
        alpha: 2 * s.adapters.rank,
        topK: 2,
        balance: 0.01,
        seed: 0,
      }),
      lr: s.expertLr,
      own: false,
    },
  ];
  for (const r of runs) {
    log(`training: ${r.label} (${s.routerSteps} steps)`);
    const routed = RoutedAdapter.create(gpu, r.state, true);
    try {
      const { failure } = await trainRouter(gpu, model.base, routed, data, {
        ...DEFAULT_ROUTE_SETTINGS,
        steps: s.routerSteps,
        lr: r.lr,
        evalEvery: 0,
      });
      if (failure) throw new Error(`${r.label}: ${failure}`);
      const view = routed.view(model.base);
      const losses: number[] = [];
      for (const set of held) losses.push((await validationLoss(gpu, view, set, 4)) ?? NaN);
      let ownShare: Record<string, number> | undefined;
      if (r.own) {
        ownShare = {};
        for (const [i, set] of held.entries())
          ownShare[styles[i]] = (await routingUsage(gpu, model.base, routed, set)).shares[i];
      }
      const trained = await routed.read();
      const scales = trained.scales.get('all');
      rows.push({
        label: r.label,
        losses: byStyle(styles, (_, i) => losses[i]),
        ownShare,
        note: scales ? `w = ${Array.from(scales, (v) => v.toFixed(2)).join(', ')}` : undefined,
      });
    } finally {
      routed.dispose();
    }
  }
  return {
    styles,
    base: byStyle(styles, (_, i) => base[i]),
    alone: byStyle(styles, (_, i) => alone[i]),
    rows,
  };
}

const f3 = (x: number) => x.toFixed(3);
const percent = (x: number) => `${Math.round(100 * x)} %`;

/** The study as markdown, the way docs/routing.md quotes it. */
export function routingTables(study: RoutingStudy): string {
  const { styles } = study;
  const kept = (row: StudyRow, s: string) =>
    percent((study.base[s] - row.losses[s]) / (study.base[s] - study.alone[s]));
  const cells = (f: (s: string) => string) => styles.map(f).join(' | ');
  return [
    `| composition | ${cells((s) => `loss on ${s}`)} | ${cells((s) => `${s} kept`)} | tokens to own adapter | learned |`,
    `|---|${styles.map(() => '---|').join('')}${styles.map(() => '---|').join('')}---|---|`,
    `| base model | ${cells((s) => f3(study.base[s]))} | ${cells(() => '0 %')} | | |`,
    `| matching adapter alone | ${cells((s) => f3(study.alone[s]))} | ${cells(() => '100 %')} | | |`,
    ...study.rows.map(
      (r) =>
        `| ${r.label} | ${cells((s) => f3(r.losses[s]))} | ${cells((s) => kept(r, s))} | ${r.ownShare ? cells((s) => percent(r.ownShare![s])).replaceAll(' | ', ' / ') : ''} | ${r.note ?? ''} |`,
    ),
  ].join('\n');
}
