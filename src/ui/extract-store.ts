import { create } from 'zustand';
import type {
  AdapterEffect,
  CheckpointFiles,
  EmbeddingChoice,
  ExtractionOutcome,
  ExtractSettings,
  HeadChoice,
} from '../worker/api.ts';
import type { PickedFile } from './dropped-files.ts';
import { studioApi } from './gpu-store.ts';
import { failedJob, IDLE_JOB, runJob, type Job } from './job.ts';
import { useLibraryStore } from './library-store.ts';

/** Which of the two checkpoints a drop or a pick is for. */
export type CheckpointRole = 'base' | 'tuned';

/** A checkpoint the user chose, before the worker opens it. */
export interface Checkpoint {
  name: string;
  files: PickedFile[];
  bytes: number;
  /** What it looks like from its file names: the worker decides. */
  kind: 'HF folder' | 'GGUF' | 'files';
}

/** The form: a rank, or a share of ‖ΔW‖² in percent up to a rank. */
export interface ExtractForm {
  mode: 'rank' | 'energy';
  rank: number;
  energyPercent: number;
  maxRank: number;
  targets: 'all-linear' | 'attention';
  embeddings: EmbeddingChoice;
  head: HeadChoice;
}

export const DEFAULT_EXTRACT_FORM: ExtractForm = {
  mode: 'rank',
  rank: 16,
  energyPercent: 90,
  maxRank: 128,
  targets: 'all-linear',
  embeddings: 'skip',
  head: 'skip',
};

/** A text to measure the loaded model on, and where it came from. */
export interface MeasureText {
  text: string;
  fileName: string;
}

interface ExtractStore {
  base: Checkpoint | null;
  tuned: Checkpoint | null;
  form: ExtractForm;
  job: Job<ExtractionOutcome>;
  /** The loaded model on the text without and with the extracted adapter. */
  effect: Job<AdapterEffect>;
  /** Text typed in the panel; empty: the Data panel's file is measured. */
  ownText: string;
  choose: (role: CheckpointRole, files: PickedFile[]) => void;
  setForm: (patch: Partial<ExtractForm>) => void;
  setOwnText: (text: string) => void;
  extract: (text: MeasureText | null) => Promise<void>;
  measure: (text: MeasureText) => Promise<void>;
}

const basename = (path: string) => path.slice(path.lastIndexOf('/') + 1);

/** The checkpoint's name: the dropped folder's, the one file's, else the files'. */
export function checkpointOf(files: PickedFile[]): Checkpoint | null {
  if (files.length === 0) return null;
  const folders = new Set(files.map((f) => (f.path.includes('/') ? f.path.split('/')[0] : '')));
  const [folder] = folders;
  const name =
    folders.size === 1 && folder
      ? folder
      : files.length === 1
        ? files[0].path
        : files.map((f) => basename(f.path)).join(', ');
  const names = files.map((f) => basename(f.path).toLowerCase());
  return {
    name,
    files,
    bytes: files.reduce((n, f) => n + f.file.size, 0),
    kind: names.includes('config.json')
      ? 'HF folder'
      : names.some((n) => n.endsWith('.gguf'))
        ? 'GGUF'
        : 'files',
  };
}

/** The worker's settings from the form, or why the form cannot be sent. */
export function extractSettings(form: ExtractForm): ExtractSettings | string {
  const whole = (n: number) => Number.isInteger(n) && n >= 1;
  const common = { targets: [form.targets], embeddings: form.embeddings, head: form.head };
  if (form.mode === 'rank') {
    if (!whole(form.rank)) return 'The rank must be a whole number of 1 or more.';
    return { ...common, rule: form.rank };
  }
  if (!(form.energyPercent > 0 && form.energyPercent <= 100))
    return 'The energy share must be more than 0 % and at most 100 %.';
  if (!whole(form.maxRank)) return 'The largest rank must be a whole number of 1 or more.';
  return { ...common, rule: { energy: form.energyPercent / 100, max: form.maxRank } };
}

const forWorker = (c: Checkpoint): CheckpointFiles => ({
  name: c.name,
  files: c.files.map(({ path, file }) => ({ path, file })),
});

export const useExtractStore = create<ExtractStore>((set, get) => {
  // Only the latest measurement may show its answer.
  let measuring = 0;

  return {
    base: null,
    tuned: null,
    form: DEFAULT_EXTRACT_FORM,
    job: IDLE_JOB,
    effect: IDLE_JOB,
    ownText: '',

    choose(role, files) {
      const checkpoint = checkpointOf(files);
      if (checkpoint) set(role === 'base' ? { base: checkpoint } : { tuned: checkpoint });
    },

    setForm(patch) {
      set({ form: { ...get().form, ...patch } });
    },

    setOwnText(ownText) {
      set({ ownText });
    },

    async extract(text) {
      const studio = studioApi();
      const { base, tuned, form, job } = get();
      if (!studio || job.state === 'running') return;
      const show = (next: Job<ExtractionOutcome>) => {
        set({ job: next });
      };
      if (!base || !tuned) {
        show(failedJob('Choose a base and a tuned checkpoint first.'));
        return;
      }
      const settings = extractSettings(form);
      if (typeof settings === 'string') {
        show(failedJob(settings));
        return;
      }
      measuring++;
      set({ effect: IDLE_JOB });
      await runJob(show, (onProgress) =>
        studio.extractAdapter(forWorker(base), forWorker(tuned), settings, onProgress),
      );
      const done = get().job;
      if (done.state !== 'done') return;
      await useLibraryStore.getState().refresh();
      if (text) await get().measure(text);
    },

    async measure({ text, fileName }) {
      const studio = studioApi();
      const { job } = get();
      if (!studio || job.state !== 'done') return;
      const ticket = ++measuring;
      await runJob(
        (effect) => {
          set({ effect });
        },
        () => studio.adapterEffect(job.result.item.id, text, fileName),
        () => ticket === measuring,
      );
    },
  };
});

/** Stops the running extraction at its next weight. */
export function cancelExtraction(): void {
  void studioApi()?.cancelExtraction();
}
