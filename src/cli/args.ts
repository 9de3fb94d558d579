/** A command was given wrong arguments: exit code 2, as for bad input (main.ts). */
export class UsageError extends Error {}

/**
 * Parses `--name value` options against the names a command accepts; flags have no value; list
 * options may repeat.
 */
export function parseOptions(
  args: readonly string[],
  accepted: {
    values: readonly string[];
    flags?: readonly string[];
    lists?: readonly string[];
    /** Accept arguments that are not options (paths, in order). */
    positionals?: boolean;
  },
): {
  values: Map<string, string>;
  flags: Set<string>;
  lists: Map<string, string[]>;
  positionals: string[];
} {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  const lists = new Map<string, string[]>();
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i].replace(/^--/, '');
    if (!args[i].startsWith('--')) {
      if (!accepted.positionals) throw new UsageError(`unexpected argument ${args[i]}`);
      positionals.push(args[i]);
      continue;
    }
    if (accepted.flags?.includes(name)) {
      flags.add(name);
    } else if (accepted.lists?.includes(name)) {
      if (i + 1 >= args.length) throw new UsageError(`--${name} needs a value`);
      lists.set(name, [...(lists.get(name) ?? []), args[++i]]);
    } else if (accepted.values.includes(name)) {
      if (i + 1 >= args.length) throw new UsageError(`--${name} needs a value`);
      values.set(name, args[++i]);
    } else {
      throw new UsageError(`unknown option ${args[i]}`);
    }
  }
  return { values, flags, lists, positionals };
}

/** A numeric option, or the fallback; refuses what is not a number. */
export function numberOption(values: Map<string, string>, name: string, fallback: number): number {
  const raw = values.get(name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got ${raw}`);
  return n;
}

/** An option restricted to some values, or the fallback; refuses others, naming the choices. */
export function choiceOption<T extends string>(
  values: Map<string, string>,
  name: string,
  choices: readonly T[],
  fallback: T,
): T {
  const raw = values.get(name);
  if (raw === undefined) return fallback;
  if (!(choices as readonly string[]).includes(raw))
    throw new UsageError(`--${name} must be one of ${choices.join(', ')}; got ${raw}`);
  return raw as T;
}
