// The command's exit code says whose problem it was: the input's (2) or ours (1).
import { FormatError } from '../model/errors.ts';
import { UsageError } from './args.ts';

/** Exit codes, as README's "Security and robustness" documents them. */
export const EXIT = { ok: 0, internal: 1, badInput: 2, interrupted: 130 } as const;

/** File errors that mean the user named something that cannot be read as asked. */
const UNREADABLE = new Set([
  'ENOENT',
  'ENOTDIR',
  'EISDIR',
  'EACCES',
  'EPERM',
  'ELOOP',
  'ENAMETOOLONG',
]);

/**
 * 2 for what the user gave (arguments, files that are not what they claim, settings out of
 * range: UsageError, FormatError, RangeError, unreadable paths), 1 for anything else.
 */
export function exitCode(e: unknown): number {
  if (e instanceof UsageError || e instanceof FormatError || e instanceof RangeError)
    return EXIT.badInput;
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && UNREADABLE.has(code) ? EXIT.badInput : EXIT.internal;
}
