// A run handed to another engine: the data as JSONL, the target's files and a README, all from
// SETTINGS spelled for the target.
import { axolotl } from './axolotl.ts';
import { jsonl, TRAIN_FILE, VALIDATION_FILE } from './dataset.ts';
import { llamafactory } from './llamafactory.ts';
import { readme } from './readme.ts';
import { hasValidation, type HandoffRun } from './run.ts';
import { SETTINGS, type HandoffSetting, type Spelled, type TargetName } from './settings.ts';
import type { TargetFiles } from './target.ts';
import { trl } from './trl.ts';

const TARGET_FILES: Record<TargetName, TargetFiles> = { trl, axolotl, llamafactory };

export interface SpelledSetting {
  setting: HandoffSetting;
  spelled: Spelled;
}

/** Sets `value` at a dotted path (`lora.r`) of a nested object. */
function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) node = (node[part] ??= {}) as Record<string, unknown>;
  node[parts[parts.length - 1]] = value;
}

/**
 * Every setting of the run as the target spells it, and the nested settings object they make
 * (each key at its dots). A key the setting's row does not list, or two rows writing one key, is
 * a mistake in the table.
 */
export function spellRun(
  run: HandoffRun,
  target: TargetName,
): { config: Record<string, unknown>; settings: SpelledSetting[] } {
  const config: Record<string, unknown> = {};
  const written = new Set<string>();
  const settings = SETTINGS.map((setting) => {
    const spelling = setting.targets[target];
    const spelled = spelling.spell(run);
    for (const [key, value] of Object.entries(spelled.set)) {
      if (!spelling.keys.includes(key) || written.has(key))
        throw new Error(`${setting.name}: ${target}'s ${key} is not listed or written twice`);
      written.add(key);
      setPath(config, key, value);
    }
    return { setting, spelled };
  });
  return { config, settings };
}

/** The output folder's files by path: data/, the target's files and README.md. */
export function exportRunFiles(run: HandoffRun, target: TargetName): Map<string, Uint8Array> {
  const { config, settings } = spellRun(run, target);
  const files = new Map<string, string>([[TRAIN_FILE, jsonl(run.dataset.train)]]);
  if (hasValidation(run)) files.set(VALIDATION_FILE, jsonl(run.dataset.validation));
  const targetFiles = TARGET_FILES[target];
  for (const [name, text] of targetFiles.files(run, config)) files.set(name, text);
  files.set('README.md', readme(run, target, settings, targetFiles.howToRun(run)));
  const encoder = new TextEncoder();
  return new Map([...files].map(([name, text]) => [name, encoder.encode(text)]));
}
