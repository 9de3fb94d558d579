import { useState, type DragEvent } from 'react';

/**
 * A panel that highlights while files are dragged over it. With `onFiles` it takes the drop;
 * without, the page's own drop handler (page-drop.ts) does and the panel only shows where.
 */
export function useDropTarget(onFiles?: (data: DataTransfer) => void) {
  const [dragging, setDragging] = useState(false);
  return {
    className: dragging ? 'panel drop-target' : 'panel',
    onDragOver: (e: DragEvent) => {
      e.preventDefault();
      setDragging(true);
    },
    onDragLeave: () => {
      setDragging(false);
    },
    onDrop: (e: DragEvent) => {
      setDragging(false);
      if (!onFiles) return;
      e.preventDefault();
      onFiles(e.dataTransfer);
    },
  };
}
