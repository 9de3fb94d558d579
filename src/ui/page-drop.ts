// Drops anywhere on the page. An adapter's files (PEFT files, a folder holding them, a .zip) go to
// the library wherever they land; a folder without an adapter is a model; anything else is left
// to the panel it was dropped on (Model, Data), as is whatever lands on a zone marked
// data-own-drop, and a file dropped beside the panels never replaces the studio with the
// browser's view of it.
import { useEffect } from 'react';
import { droppedFiles, holdsFolder, isAdapterFile, type PickedFile } from './dropped-files.ts';
import { useLibraryStore } from './library-store.ts';
import { useModelStore } from './model-store.ts';
import { useToastStore } from './toast-store.ts';

const carriesFiles = (e: DragEvent) => e.dataTransfer?.types.includes('Files') === true;

/** An error's first line: the toast says what happened, the panel holds the details. */
const firstLine = (text: string) => text.split('\n')[0];

/**
 * Routes a folder (or the Library panel's drop) once its files are known, and says in a toast what
 * it became: the panel that did the work may be scrolled out of sight.
 */
async function route(files: PickedFile[], toLibrary: boolean) {
  const toast = useToastStore.getState();
  if (toLibrary || files.some((f) => isAdapterFile(f.path))) {
    toast.show(`Importing ${files.length === 1 ? files[0].path : `${files.length} files`}…`);
    await useLibraryStore.getState().importFiles(files);
    const result = useLibraryStore.getState().importState;
    if (result.state === 'done') toast.show(`${result.name} is in the library.`);
    else if (result.state === 'failed')
      toast.show(`Not imported: ${firstLine(result.message)} (details in the Library)`, 'error');
    return;
  }
  const folder = files[0]?.path.split('/')[0];
  toast.show(`Loading the model ${folder}…`);
  await useModelStore.getState().loadFiles(
    files.map((f) => f.file),
    folder,
  );
  const { model } = useModelStore.getState();
  if (model.error) toast.show(`Not loaded: ${firstLine(model.error)}`, 'error');
  else if (model.info) toast.show(`${model.info.name} is loaded.`);
}

function onDragOver(e: DragEvent) {
  if (!carriesFiles(e)) return;
  e.preventDefault();
}

function onDrop(e: DragEvent) {
  const data = e.dataTransfer;
  if (!data || !carriesFiles(e)) return;
  e.preventDefault();
  const target = e.target instanceof Element ? e.target : null;
  // A panel's own drop zone (Extract's base and tuned checkpoints) takes the drop itself.
  if (target?.closest('[data-own-drop]')) return;
  const toLibrary = target?.closest('[data-testid="library"]') != null;
  const names = [...data.files].map((f) => f.name);
  if (!toLibrary && !names.some(isAdapterFile) && !holdsFolder(data)) return;
  // Ours: the panel under the pointer never hears of this drop, so tell it the drag has left.
  e.stopPropagation();
  target?.dispatchEvent(new DragEvent('dragleave', { bubbles: true }));
  droppedFiles(data).then(
    (files) => route(files, toLibrary),
    (error: unknown) => {
      const message = `Could not read the drop: ${String(error)}`;
      useLibraryStore.setState({ error: message });
      useToastStore.getState().show(message, 'error');
    },
  );
}

/** Listens on the window before the panels do (capture), for as long as the app is mounted. */
export function usePageDrop(): void {
  useEffect(() => {
    window.addEventListener('dragover', onDragOver, true);
    window.addEventListener('drop', onDrop, true);
    return () => {
      window.removeEventListener('dragover', onDragOver, true);
      window.removeEventListener('drop', onDrop, true);
    };
  }, []);
}
