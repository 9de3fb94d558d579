// The board to and from mergekit YAML: a download of the merge as configured, and a file that
// sets the board, the weights and the merge card (src/ui/mergekit-board.ts).
import { useRef, useState } from 'react';
import { errorMessage } from '../errors.ts';
import { boardSources, fittedGrid, mergeSpec, useComposeStore } from './compose-store.ts';
import { saveFile } from './download.ts';
import { useLibraryStore } from './library-store.ts';
import { boardYaml, importBoardYaml } from './mergekit-board.ts';
import { MessageLines } from './MessageLines.tsx';
import { useModelStore } from './model-store.ts';

export function MergekitYaml() {
  const input = useRef<HTMLInputElement>(null);
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);
  const board = useComposeStore((s) => s.board);
  const items = useLibraryStore((s) => s.items);
  const use = useLibraryStore((s) => s.use);
  const sources = boardSources(board, items, use);

  function exportYaml() {
    const { settings, grid, lines } = useComposeStore.getState();
    const layers = useModelStore.getState().model.info?.config.numLayers ?? 0;
    try {
      const spec = mergeSpec(sources, settings, fittedGrid(grid, layers), lines);
      const { yaml, lost } = boardYaml(spec, items);
      saveFile('mergekit.yaml', new TextEncoder().encode(yaml), 'application/yaml');
      setMessage({
        text: lost.length > 0 ? `Saved; mergekit cannot say: ${lost.join(', ')}.` : 'Saved.',
        error: false,
      });
    } catch (e) {
      setMessage({ text: errorMessage(e), error: true });
    }
  }

  async function importYaml(file: File) {
    try {
      const imported = importBoardYaml(await file.text(), items);
      const compose = useComposeStore.getState();
      const library = useLibraryStore.getState();
      // The file's adapters replace the board, switched on at its weights, in its order.
      for (const id of compose.board) compose.choose(id, false);
      for (const { id, weight } of imported.sources) {
        compose.choose(id, true);
        library.setWeight(id, weight);
        library.setUse(id, true);
      }
      compose.setSettings(imported.settings);
      const placed = `${imported.sources.length} adapter${imported.sources.length === 1 ? '' : 's'} from ${file.name} on the board`;
      setMessage({ text: [placed, ...imported.notes].join('; ') + '.', error: false });
    } catch (e) {
      setMessage({ text: errorMessage(e), error: true });
    }
  }

  return (
    <div className="controls mergekit-yaml" data-testid="mergekit-yaml">
      <button type="button" disabled={sources.length === 0} onClick={exportYaml}>
        Export mergekit YAML
      </button>
      <button type="button" onClick={() => input.current?.click()}>
        Import mergekit YAML…
      </button>
      <input
        ref={input}
        type="file"
        accept=".yaml,.yml"
        hidden
        data-testid="mergekit-file"
        onChange={(e) => {
          const file = e.target.files?.[0];
          e.target.value = '';
          if (file) void importYaml(file);
        }}
      />
      {message &&
        (message.error ? (
          <MessageLines text={message.text} testId="mergekit-error" />
        ) : (
          <span className="muted" role="status" data-testid="mergekit-status">
            {message.text}
          </span>
        ))}
    </div>
  );
}
