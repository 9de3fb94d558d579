// The engines a run is handed to, apart from the hand-off table (settings.ts) so that the studio's
// page can name them without loading the table and what it imports.

/** The engines a run is handed to (`export-run --to`), with the file each reads its settings from. */
export const TARGETS = {
  trl: { label: 'TRL / PEFT', config: 'run_config.json' },
  axolotl: { label: 'Axolotl', config: 'axolotl.yaml' },
  llamafactory: { label: 'LLaMA-Factory', config: 'llamafactory.yaml' },
} as const;

export type TargetName = keyof typeof TARGETS;
export const TARGET_NAMES = Object.keys(TARGETS) as TargetName[];
