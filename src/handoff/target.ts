// What each target of the hand-off writes besides the data and the README (one module per target:
// trl.ts, axolotl.ts, llamafactory.ts), from the settings SETTINGS spelled for it.
import type { HandoffRun } from './run.ts';

export interface TargetFiles {
  /** Its files by path inside the output folder; `spelled` holds SETTINGS' keys, nested at their dots. */
  files(run: HandoffRun, spelled: Readonly<Record<string, unknown>>): Map<string, string>;
  /** The README's "How to run" section, as Markdown lines. */
  howToRun(run: HandoffRun): string[];
}
