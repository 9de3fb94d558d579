// Every way the studio routes between low-rank experts, described once (docs/routing.md): the
// CLI's `route --mode` values and help, what a router folder says it is, which parameters train,
// how experts are made and gated all come from ROUTING_MODES. Each mode is a stacked term
// y = W·x + s·B·(G(x) ⊙ A·x) (src/routing/router.ts) with the gate G of its kind. This table
// imports no code at run time.

/** How a mode's gate G is formed: a learned constant per expert, a router softmax(W_r·x) (top-k
 * optional), or the top-k of |A·x| itself (no router). */
export type GateSource = 'scales' | 'router' | 'magnitude';

/** Where a mode's experts come from: the adapters given, or trained with the router from scratch. */
export type ExpertSource = 'adapters' | 'trained';

export interface RoutingModeEntry {
  /** The --mode value and what a router folder records. */
  name: string;
  label: string;
  /** Where the math comes from. */
  paper: string;
  /** What it does, in one line (help, docs). */
  explanation: string;
  experts: ExpertSource;
  gate: GateSource;
  /** Trained experts: each a rank-1 component of one adapter (SMoRA, FlyLoRA), or of `--rank`. */
  rankOneExperts: boolean;
  /** Trained experts: whether A trains (FlyLoRA keeps its sparse random A frozen). */
  trainsA: boolean;
  /** Experts per token where --top-k is not given (0: all of them, softly). */
  defaultTopK: (experts: number) => number;
}

export const ROUTING_MODES = [
  {
    name: 'scales',
    label: 'Learned scales',
    paper: 'ScaLearn (Frohmann et al., 2024)',
    explanation:
      'One weight per adapter (or per adapter and layer with --per-layer), learned on the data with the adapters frozen: a learned merge that bakes to a plain LoRA.',
    experts: 'adapters',
    gate: 'scales',
    rankOneExperts: false,
    trainsA: false,
    defaultTopK: () => 0,
  },
  {
    name: 'token',
    label: 'Token routing over frozen adapters',
    paper: 'MeteoRA (Xu et al., 2024); LoRA-Mixer (frozen experts)',
    explanation:
      'A router per adapted module, softmax(W_r·x) over the adapters (top-k optional), decides per token how much of each; only the routers train, with the load-balancing loss.',
    experts: 'adapters',
    gate: 'router',
    rankOneExperts: false,
    trainsA: false,
    defaultTopK: () => 0,
  },
  {
    name: 'mixlora',
    label: 'Jointly trained experts',
    paper: 'MixLoRA (Li et al., 2024); MoLA (Gao et al., 2024)',
    explanation:
      "E LoRA experts of rank r per module and their top-k routers trained together from scratch (--experts, --rank; MoLA's more experts in higher layers with --layer-experts).",
    experts: 'trained',
    gate: 'router',
    rankOneExperts: false,
    trainsA: true,
    defaultTopK: (experts: number) => Math.min(2, experts),
  },
  {
    name: 'smora',
    label: 'Rank-wise experts (SMoRA)',
    paper: 'SMoRA (Zhao et al., 2025), "Each Rank Could be an Expert"',
    explanation:
      'One adapter of rank r whose every rank-1 component is an expert; a router picks the top-k components per token.',
    experts: 'trained',
    gate: 'router',
    rankOneExperts: true,
    trainsA: true,
    defaultTopK: (experts: number) => Math.max(1, Math.floor(experts / 4)),
  },
  {
    name: 'flylora',
    label: 'Implicit rank-wise experts (FlyLoRA)',
    paper: 'FlyLoRA (Zou et al., 2025)',
    explanation:
      'A frozen sparse random A; the top-k of |A·x| per token choose which rank-1 components of B act: routing without a router.',
    experts: 'trained',
    gate: 'magnitude',
    rankOneExperts: true,
    trainsA: false,
    defaultTopK: (experts: number) => Math.max(1, Math.floor(experts / 4)),
  },
] as const satisfies readonly RoutingModeEntry[];

export type RoutingMode = (typeof ROUTING_MODES)[number]['name'];

export const ROUTING_MODE_NAMES: readonly RoutingMode[] = ROUTING_MODES.map((m) => m.name);

export function routingMode(name: string): RoutingModeEntry & { name: RoutingMode } {
  const entry = ROUTING_MODES.find((m) => m.name === name);
  if (!entry)
    throw new RangeError(`unknown routing mode "${name}": use ${ROUTING_MODE_NAMES.join(', ')}`);
  return entry;
}
