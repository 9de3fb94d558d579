// Every merge method, in the order the docs, the UI and the CLI list them. Adding one: a file in
// methods/ describing it (methods/method.ts says what an entry holds), its place in METHODS and
// its row in docs/merging.md; the spec's checks, the merge card, the CLI and the mergekit reader
// follow from the entry (methods.test.ts checks that they do). A method that needs new math also
// names a new combiner, which merge.ts implements.
import { breadcrumbsSvd } from './methods/breadcrumbs-svd.ts';
import { cat } from './methods/cat.ts';
import { dareLinear } from './methods/dare-linear.ts';
import { dareLinearSvd } from './methods/dare-linear-svd.ts';
import { dareTies } from './methods/dare-ties.ts';
import { dareTiesSvd } from './methods/dare-ties-svd.ts';
import { dellaSvd } from './methods/della-svd.ts';
import { linear } from './methods/linear.ts';
import { loraLego } from './methods/lora-lego.ts';
import { magnitudePrune } from './methods/magnitude-prune.ts';
import { magnitudePruneSvd } from './methods/magnitude-prune-svd.ts';
import type { MergeMethodDefinition } from './methods/method.ts';
import { opcm } from './methods/opcm.ts';
import { slerp } from './methods/slerp.ts';
import { svd } from './methods/svd.ts';
import { taskArithmetic } from './methods/task-arithmetic.ts';
import { ties } from './methods/ties.ts';
import { tiesSvd } from './methods/ties-svd.ts';
import type { ParameterName } from './parameters.ts';

export type {
  EntrywisePlan,
  MergeMethodDefinition,
  MethodFamily,
  MethodImplementation,
} from './methods/method.ts';

const METHODS = [
  cat,
  svd,
  taskArithmetic,
  linear,
  ties,
  dareLinear,
  dareTies,
  magnitudePrune,
  tiesSvd,
  dareLinearSvd,
  dareTiesSvd,
  magnitudePruneSvd,
  breadcrumbsSvd,
  dellaSvd,
  slerp,
  loraLego,
  opcm,
] as const;

export type MergeMethod = (typeof METHODS)[number]['name'];
export const METHOD_NAMES: MergeMethod[] = METHODS.map((m) => m.name);

export const MERGE_METHODS = Object.fromEntries(METHODS.map((m) => [m.name, m])) as Record<
  MergeMethod,
  MergeMethodDefinition<MergeMethod>
>;

/** Whether `name` is a method (not merely a key every object has, like "toString"). */
export const isMergeMethod = (name: string): name is MergeMethod =>
  Object.hasOwn(MERGE_METHODS, name);

/** Whether `method` reads `parameter` (the UI shows and sends only those). */
export function reads(method: MergeMethod, parameter: ParameterName): boolean {
  return MERGE_METHODS[method].parameters.includes(parameter);
}

/** How many adapters `method` merges: from one up, unless its entry says otherwise. */
function adapterLimits(method: MergeMethod): { min: number; max: number } {
  const { min = 1, max = Infinity } = MERGE_METHODS[method].adapters ?? {};
  return { min, max };
}

/** Whether `method` merges `count` adapters. */
export function takesAdapters(method: MergeMethod, count: number): boolean {
  const { min, max } = adapterLimits(method);
  return count >= min && count <= max;
}

const NUMBER_WORDS = ['no', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
const adapters = (n: number) => `${NUMBER_WORDS[n] ?? n} adapter${n === 1 ? '' : 's'}`;

/** How many adapters `method` merges, in words: "exactly two adapters", "at least one adapter". */
export function adapterCountText(method: MergeMethod): string {
  const { min, max } = adapterLimits(method);
  if (min === max) return `exactly ${adapters(min)}`;
  if (max === Infinity) return `at least ${adapters(min)}`;
  return `${NUMBER_WORDS[min] ?? min} to ${adapters(max)}`;
}
