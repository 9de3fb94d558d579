// Regexes in a tokenizer.json run on JavaScript's backtracking engine, so a hostile one can take
// exponential time on one sentence (`^(\w+\s?)*$` hangs on a line of words ending in "!").
// Exponential backtracking needs a repeated group that can itself match in many ways — a
// quantifier inside a repeated group ("star height" 2) — or a backreference. Real tokenizers'
// patterns (GPT-2, Llama 3, Qwen, SentencePiece replacements) never repeat a group that holds a
// quantifier; a pattern that does is refused before it is ever run.

export interface RegexRisk {
  /** Why the pattern is refused, or null when it is safe to run. */
  reason: string | null;
}

/** Length of the quantifier starting at `i` (0 when none), and whether it repeats (max > 1). */
function quantifierAt(p: string, i: number): { length: number; repeats: boolean } {
  const c = p[i];
  if (c === '*' || c === '+') return { length: p[i + 1] === '?' ? 2 : 1, repeats: true };
  if (c === '?') return { length: 1, repeats: false };
  if (c === '{') {
    const m = /^\{(\d*)(,?)(\d*)\}\??/.exec(p.slice(i));
    if (!m) return { length: 0, repeats: false };
    const max = m[2] === '' ? Number(m[1]) : m[3] === '' ? Infinity : Number(m[3]);
    return { length: m[0].length, repeats: max > 1 };
  }
  return { length: 0, repeats: false };
}

export function regexRisk(pattern: string): RegexRisk {
  // Per open group: whether something inside it is repeated.
  const groups: boolean[] = [];
  let lastGroupRepeats = false; // the group just closed holds a repeated element
  let afterGroup = false; // the previous element was a group
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      if (/[1-9k]/.test(pattern[i + 1] ?? '')) return { reason: 'it uses a backreference' };
      i++;
      afterGroup = false;
      continue;
    }
    if (c === '[') {
      // Skip the class; `]` right after `[` or `[^` is a literal.
      let j = i + 1;
      if (pattern[j] === '^') j++;
      if (pattern[j] === ']') j++;
      for (; j < pattern.length && pattern[j] !== ']'; j++) if (pattern[j] === '\\') j++;
      i = j;
      afterGroup = false;
      continue;
    }
    if (c === '(') {
      groups.push(false);
      afterGroup = false;
      continue;
    }
    if (c === ')') {
      lastGroupRepeats = groups.pop() ?? false;
      // What repeats inside a group repeats inside its parent too.
      if (lastGroupRepeats && groups.length > 0) groups[groups.length - 1] = true;
      afterGroup = true;
      continue;
    }
    const q = quantifierAt(pattern, i);
    if (q.length > 0) {
      if (q.repeats && afterGroup && lastGroupRepeats)
        return { reason: 'it repeats a group that holds a repeated element (nested quantifiers)' };
      if (q.repeats && groups.length > 0) groups[groups.length - 1] = true;
      i += q.length - 1;
    }
    afterGroup = false;
  }
  return { reason: null };
}

/** Every `{"Regex": …}` pattern in a tokenizer.json (normalizer, pre-tokenizer, decoder…). */
export function tokenizerRegexes(json: unknown): string[] {
  const found: string[] = [];
  const visit = (value: unknown, depth: number): void => {
    if (depth > 64 || typeof value !== 'object' || value === null) return;
    if (Array.isArray(value)) {
      // Vocabularies and merges are long arrays of strings: nothing to visit there.
      if (value.length > 0 && typeof value[0] !== 'object') return;
      for (const v of value) visit(v, depth + 1);
      return;
    }
    for (const [key, v] of Object.entries(value)) {
      if (key === 'vocab' || key === 'merges') continue;
      if (key === 'Regex' && typeof v === 'string') found.push(v);
      else visit(v, depth + 1);
    }
  };
  visit(json, 0);
  return found;
}
