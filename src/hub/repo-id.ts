// Hub repo ids as the Hub checks them, and refs to a repo at a revision: their own module so that
// the page can check an id without loading the push code.

/** The Hub's rules for each part of a repo id: these characters, no "--" or "..", at most 96. */
const REPO_PART = /^[A-Za-z0-9_](?:[\w.-]{0,94}[A-Za-z0-9_])?$/;

/** Whether `id` is a Hub repo id `namespace/name`, by the Hub's rules for both parts. */
export function isHubRepoId(id: string): boolean {
  const parts = id.split('/');
  return (
    parts.length === 2 &&
    parts.every((p) => REPO_PART.test(p) && !p.includes('--') && !p.includes('..'))
  );
}

/** Where an adapter lives on the Hub: a repo, at a commit or branch (main when none). */
export interface HubRef {
  repo: string;
  revision?: string;
}

/** The same repo at the same revision (a missing revision is main). */
export const sameRef = (a: HubRef, b: HubRef): boolean =>
  a.repo === b.repo && (a.revision ?? 'main') === (b.revision ?? 'main');

/** `owner/name@abc1234` or `owner/name`, as a person reads a ref. */
export function refText(ref: HubRef): string {
  if (ref.revision === undefined) return ref.repo;
  return `${ref.repo}@${/^[0-9a-f]{40}$/.test(ref.revision) ? ref.revision.slice(0, 7) : ref.revision}`;
}

/** `owner/name` or `owner/name@revision`, as a person types a ref; null when it is neither. */
export function parseHubRef(text: string): HubRef | null {
  const parts = text.trim().split('@');
  const [repo, revision] = parts;
  if (parts.length > 2 || !isHubRepoId(repo)) return null;
  if (parts.length === 1) return { repo };
  return isRevision(revision) ? { repo, revision } : null;
}

/** A branch, tag or commit id: path segments of word characters, "." and "-", no "..". */
export function isRevision(text: string): boolean {
  return (
    text.length <= 200 &&
    /^[\w.-]+(?:\/[\w.-]+)*$/.test(text) &&
    !text.split('/').some((part) => /^\.+$/.test(part))
  );
}
