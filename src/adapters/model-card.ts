// The README.md model card that travels with a trained adapter, as the Hub shows it: base model,
// method, rank and targets, the data, the training curve's numbers, and how to load it.
import type { LoraSpec, OrthogonalBasis } from './config.ts';
import { basisOf } from './inits.ts';
import { variantEntry } from './variants.ts';

export interface TrainedCardInfo {
  name: string;
  baseModel: string;
  lora: LoraSpec;
  steps: number;
  lr: number;
  data: { fileName: string; examples: number; trainSequences: number; tokens: number };
  trainLossFirst: number;
  trainLossLast: number;
  valLossFirst: number | null;
  valLossLast: number | null;
}

const loss = (first: number | null, last: number | null) =>
  first === null || last === null ? 'not measured' : `${first.toFixed(3)} → ${last.toFixed(3)}`;

/** The card's row for an orthogonally adapted adapter's basis. */
function basisRow(basis: OrthogonalBasis | undefined): string[] {
  return basis
    ? [
        `| orthogonal basis | seed ${basis.seed}, slice ${basis.slice} (A frozen: adapters on other slices of this seed sum with little interference) |`,
      ]
    : [];
}

/** The Hub's front matter of an adapter card. */
export function cardFrontMatter(baseModel: string, tags: readonly string[]): string[] {
  return [
    '---',
    `base_model: ${baseModel}`,
    'library_name: peft',
    `tags: [${tags.join(', ')}]`,
    '---',
    '',
  ];
}

/**
 * A file-system-safe form of an adapter's name: the folder its download unpacks to (importing
 * the folder names the adapter after it again).
 */
export function fileSafeName(name: string): string {
  return name.replace(/[^\w.-]+/g, '-').replace(/^-+|-+$/g, '') || 'adapter';
}

/** How to load the adapter with PEFT from `where` (its folder, or its Hub repo), as the card's closing lines. */
export function peftLoadLines(where: string): string[] {
  return [
    '```python',
    'from peft import PeftModel',
    `model = PeftModel.from_pretrained(base_model, "${where}")`,
    '```',
    '',
  ];
}

export function trainedCard(c: TrainedCardInfo): string {
  const { lora } = c;
  const { tag } = variantEntry(lora.variant);
  return [
    ...cardFrontMatter(c.baseModel, ['lora', 'lora-studio']),
    `# ${c.name}`,
    '',
    `A LoRA adapter for ${c.baseModel}, fine-tuned in LoRA Studio (in the browser, on WebGPU).`,
    '',
    '| | |',
    '|---|---|',
    `| init | ${lora.init}${tag ? `, ${tag.text}` : ''} |`,
    `| rank, alpha | ${lora.rank}, ${lora.alpha}${lora.rslora ? ' (rsLoRA)' : ''} |`,
    ...basisRow(basisOf(lora)),
    `| target modules | ${lora.targets.join(', ')} |`,
    `| dropout | ${lora.dropout} |`,
    `| steps, learning rate | ${c.steps}, ${c.lr} |`,
    `| data | ${c.data.fileName}: ${c.data.examples} examples, ${c.data.tokens} tokens, ${c.data.trainSequences} training sequences |`,
    `| training loss | ${loss(c.trainLossFirst, c.trainLossLast)} |`,
    `| validation loss | ${loss(c.valLossFirst, c.valLossLast)} |`,
    '',
    'Load with PEFT:',
    '',
    ...peftLoadLines(fileSafeName(c.name)),
  ].join('\n');
}
