// One short message where the user is looking, whatever panel did the work: what a drop anywhere
// on the page became (an adapter in the library, a model, or why not).
import { create } from 'zustand';

export interface Toast {
  /** Tells two equal messages apart, so the second one shows again. */
  id: number;
  text: string;
  kind: 'info' | 'error';
}

interface ToastStore {
  toast: Toast | null;
  show: (text: string, kind?: Toast['kind']) => void;
  dismiss: () => void;
}

let next = 0;

export const useToastStore = create<ToastStore>((set) => ({
  toast: null,
  show(text, kind = 'info') {
    set({ toast: { id: ++next, text, kind } });
  },
  dismiss() {
    set({ toast: null });
  },
}));
