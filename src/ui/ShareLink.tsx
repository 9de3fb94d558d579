// The Compose panel's "Share as a link" and what an opened link did (share-store.ts).
import { useState } from 'react';
import { isHubRepoId } from '../hub/repo-id.ts';
import { JobProgress } from './JobProgress.tsx';
import { MessageLines } from './MessageLines.tsx';
import { useModelStore } from './model-store.ts';
import { useShareStore } from './share-store.ts';

/** Makes the link that opens this board elsewhere. */
export function ShareLinkControl() {
  const link = useShareStore((s) => s.link);
  const makeLink = useShareStore((s) => s.makeLink);
  return (
    <div className="compose-card share-link" data-testid="share-link">
      <h3>Share as a link</h3>
      <p className="muted">
        The link holds the board (each adapter by its Hub repo and commit, with its switch and
        weight), the merge settings and the preview prompt, after a <code>#</code>: browsers send no
        part of it to any server. Opening it downloads the adapters from the Hub.
      </p>
      <button type="button" onClick={makeLink}>
        Make link
      </button>
      {link?.state === 'refused' && <MessageLines text={link.why} testId="share-link-error" />}
      {link?.state === 'made' && (
        <MadeLink key={link.url} url={link.url} adapters={link.adapters} />
      )}
    </div>
  );
}

function MadeLink({ url, adapters }: { url: string; adapters: number }) {
  const [copied, setCopied] = useState(false);
  return (
    <div className="share-link-made">
      <input
        readOnly
        value={url}
        aria-label="Link to this composition"
        data-testid="share-link-url"
        onFocus={(e) => {
          e.target.select();
        }}
      />
      <button
        type="button"
        onClick={() =>
          void navigator.clipboard.writeText(url).then(() => {
            setCopied(true);
          })
        }
      >
        {copied ? 'Copied' : 'Copy'}
      </button>
      <p className="muted">
        {adapters} adapter{adapters === 1 ? '' : 's'}, {url.length} characters.
      </p>
    </div>
  );
}

/** Opening a link: its downloads, then what it put on the board and what it could not carry. */
export function OpenedLinkBanner() {
  const opened = useShareStore((s) => s.opened);
  const dismiss = useShareStore((s) => s.dismissOpened);
  const info = useModelStore((s) => s.model.info);
  const loading = useModelStore((s) => s.model.loading);
  const loadFromHub = useModelStore((s) => s.loadFromHub);
  if (opened.state === 'idle') return null;
  if (opened.state === 'running')
    return (
      <JobProgress
        job={opened}
        label="Opening the shared composition"
        unit="adapters"
        testId="opened-link-progress"
      />
    );
  if (opened.state === 'failed')
    return (
      <div className="note opened-link" data-testid="opened-link-error">
        <MessageLines text={opened.message} />
        <button type="button" onClick={dismiss}>
          Dismiss
        </button>
      </div>
    );
  const { names, reused, otherBase, notes } = opened.result;
  const downloaded = names.length - reused;
  return (
    <div className="note opened-link" data-testid="opened-link">
      <p>
        Opened a shared composition: {names.join(', ')} on the board
        {downloaded > 0 && `, ${downloaded} downloaded from the Hub`}
        {reused > 0 && `, ${reused} already in the library`}.
      </p>
      {otherBase !== null && info && info.baseModel !== otherBase && (
        <p data-testid="opened-link-base">
          It was composed on {otherBase}; the loaded model is {info.name}.{' '}
          {isHubRepoId(otherBase) && (
            <button type="button" disabled={loading} onClick={() => void loadFromHub(otherBase)}>
              Load {otherBase} from the Hub
            </button>
          )}
        </p>
      )}
      {notes.map((note) => (
        <p key={note}>{note}</p>
      ))}
      <button type="button" onClick={dismiss}>
        Dismiss
      </button>
    </div>
  );
}
