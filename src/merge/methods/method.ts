// What a merge method is, as data: mergekit's registry of methods that declare their parameters,
// as plain objects. An entry says what the method does, which parameters it reads, what it
// refuses, and which implementation merge.ts runs for it. Its implementation is named, not
// imported: the UI reads this table, and must not pull the merge engine into its bundle.
import type { Sparsify } from '../entrywise.ts';
import type { ParameterName } from '../parameters.ts';
import type { ResolvedSpec } from '../spec.ts';

/** How a method combines the adapters' ΔW = s·B·A. */
export type MethodFamily =
  /** On the low-rank factors, never forming m×n: exact, unless the method itself approximates (LoRA-LEGO's clusters). */
  | 'exact'
  /** PEFT's combination of A and B separately: B·A holds cross terms no adapter had. */
  | 'factor'
  /** Entrywise on the dense ΔW of each module, then SVD back to the output rank. */
  | 'dense';

/** An entrywise method: how each adapter's entries are thinned, and how the kept ones combine. */
export interface EntrywisePlan {
  sparsify: Exclude<Sparsify['kind'], 'none'>;
  /** A plain weighted sum, or TIES sign election and disjoint merge (majoritySign, tiesDivisor). */
  consensus: 'sum' | 'ties';
}

/** Which of merge.ts's implementations runs the method. */
export type MethodImplementation =
  /** Module by module on the factors. */
  | { combine: 'sum' | 'linear' | 'slerp' | 'lora_lego' }
  /** All modules at once, adapter after adapter (OPCM's sequence). */
  | { sequence: 'opcm' }
  /** Entrywise: on the dense ΔW (dense family), or on A and on B separately (factor family). */
  | { entrywise: EntrywisePlan };

export interface MergeMethodDefinition<Name extends string = string> {
  name: Name;
  /** What people call it (the merge card's choices). */
  label: string;
  /** One line for the method table, the UI, the CLI's help and the model card. */
  summary: string;
  family: MethodFamily;
  /** PEFT's add_weighted_adapter has this combination type, with this meaning. */
  peft: boolean;
  /** How many adapters it merges, where it is not any number from one up. */
  adapters?: { min?: number; max?: number };
  /** The parameters it reads (besides weights); the UI shows only these. */
  parameters: readonly ParameterName[];
  /** What it refuses beyond each parameter's own range: the problem, or null. */
  check?: (spec: Omit<ResolvedSpec, 'adapters'>) => string | null;
  /** The output rank when none is asked: the largest source rank; without it, all of the result. */
  defaultRank?: 'largest';
  /** mergekit's `merge_method` names that mean this method. */
  mergekit?: readonly string[];
  implementation: MethodImplementation;
}

/** A method entry, its name kept as a literal type (MergeMethod is the union of them). */
export const defineMethod = <const Name extends string>(
  method: MergeMethodDefinition<Name>,
): MergeMethodDefinition<Name> => method;
