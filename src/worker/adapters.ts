// The adapter part of the Studio API: the library (list, files, remove), importing what the user
// dropped (validated against the loaded model), and applying library adapters to the loaded
// model (W x + Σ wᵢ·sᵢ·Bᵢ·Aᵢ·x; adapted-model.ts) for the playground and perplexity.
import { transfer } from 'comlink';
import { errorMessage } from '../errors.ts';
import { zipSync } from 'fflate';
import { withCompressedRestored } from '../adapters/compeft.ts';
import { ggufLoraFile } from '../adapters/gguf.ts';
import { applyRefusal } from '../adapters/applicable.ts';
import { adapterFiles, type DroppedFile } from '../adapters/import.ts';
import {
  describeEntry,
  type AdapterLibrary,
  type LibraryEntry,
  type LibraryItem,
} from '../adapters/library.ts';
import { CARD_FILE, hubAdapterFiles } from '../hub/adapter-download.ts';
import { refText, sameRef, type HubRef } from '../hub/repo-id.ts';
import {
  misfit,
  readPeftAdapter,
  shapeMismatches,
  type PeftAdapter,
} from '../adapters/peft-read.ts';
import type { MergeCompute } from '../merge/compute.ts';
import type { FileCache } from '../model/hub.ts';
import { fileSafeName } from '../adapters/model-card.ts';
import { truncateAdapter } from '../adapters/truncate.ts';
import {
  adapterIntrusions,
  adapterIntrusionsCpu,
  INTRUDER_DEFAULTS,
} from '../analysis/intruders.ts';
import { libraryZip, readLibraryZip } from '../adapters/library-zip.ts';
import { FormatError } from '../model/errors.ts';
import { namesModel } from '../model/load.ts';
import { UNAPPLIABLE, type StudioApi } from './api.ts';
import type { LoadedModel } from './loaded.ts';

export interface AdapterDeps {
  loaded(): LoadedModel | undefined;
  library: AdapterLibrary;
  /** Where Hub downloads are kept between sessions. */
  fileCache?: FileCache;
  /** Where a dropped compressed adapter is restored (its ΔW SVDs). */
  compute(): MergeCompute;
}

type AdapterApi = Pick<
  StudioApi,
  | 'listAdapters'
  | 'cutAdapter'
  | 'adapterIntruders'
  | 'adapterFiles'
  | 'adapterZip'
  | 'adapterGguf'
  | 'removeAdapter'
  | 'importAdapter'
  | 'importAdapterFromHub'
  | 'setAdapterHub'
  | 'libraryZip'
  | 'restoreLibrary'
  | 'applyAdapters'
  | 'renameAdapter'
  | 'duplicateAdapter'
> & {
  /** A library adapter parsed (once) with its library name. */
  parsedAdapter(id: string): Promise<PeftAdapter>;
};

/** How an import is kept: despite a misfit, where it came from, and a restored entry's own origin and time. */
interface ImportOptions {
  force?: boolean;
  hub?: HubRef;
  origin?: string;
  createdAt?: number;
}

/** A Hub commit id: 40 hex digits. */
const COMMIT = /^[0-9a-f]{40}$/;

/** The dropped adapter's folder or zip name; null for loose files. */
function droppedName(files: readonly DroppedFile[]): string | null {
  const zip = files.find((f) => f.name.toLowerCase().endsWith('.zip'));
  if (zip) return zip.name.replace(/\.zip$/i, '');
  const path = files.find((f) => f.name.includes('/'))?.name;
  return path ? path.split('/').slice(-2, -1)[0] : null;
}

/** A name for loose files, from what they are: "Qwen2.5-0.5B-Instruct · lora r6". */
function describedName(adapter: PeftAdapter): string {
  const base = adapter.baseModel?.split('/').at(-1);
  const { variant, rank } = adapter.details;
  return `${base ? `${base} · ` : ''}${variant} r${rank}`;
}

/** "72 tensors hold NaN or infinite values (first…)": one line however many there are. */
function nonFiniteSummary(adapter: PeftAdapter): string[] {
  const bad = adapter.nonFinite;
  if (bad.length === 0) return [];
  if (bad.length === 1)
    return [
      `${bad[0].tensor} holds ${bad[0].count} NaN or infinite value${bad[0].count > 1 ? 's' : ''}`,
    ];
  const values = bad.reduce((n, t) => n + t.count, 0);
  return [
    `${bad.length} tensors hold NaN or infinite values (${values} values; the first: ${bad[0].tensor})`,
  ];
}

/** A library id no other entry has: what made it, when, and a random part. */
export function newId(kind: string): string {
  return `${kind}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6).toString(36)}`;
}

export function createAdapterApi(deps: AdapterDeps): AdapterApi {
  // Parsed once per adapter: a weight slider re-applies many times a second.
  const parsed = new Map<string, PeftAdapter>();

  async function entry(id: string): Promise<LibraryEntry> {
    const found = await deps.library.get(id);
    if (!found) throw new Error(`No adapter ${id} in the library.`);
    return found;
  }

  async function parsedAdapter(id: string): Promise<PeftAdapter> {
    let adapter = parsed.get(id);
    if (!adapter) {
      const e = await entry(id);
      adapter = readPeftAdapter(new Map(Object.entries(e.files)), e.name);
      parsed.set(id, adapter);
    }
    return adapter;
  }

  /** Adds an adapter's files to the library (named after them when `given` is null), checked against the loaded model. */
  async function addImported(
    byName: ReadonlyMap<string, Uint8Array>,
    given: string | null,
    options: ImportOptions,
  ): Promise<{ item: LibraryItem; warnings: string[] }> {
    const parsedAs = readPeftAdapter(byName, given ?? 'adapter');
    const name = given ?? describedName(parsedAs);
    const adapter = { ...parsedAs, name };
    const warnings = nonFiniteSummary(adapter);
    const loaded = deps.loaded();
    if (loaded) {
      const problems = shapeMismatches(adapter, loaded.model.config);
      const otherBase =
        adapter.baseModel && !namesModel(loaded, adapter.baseModel) ? adapter.baseModel : null;
      if (problems.length > 0 && !options.force)
        // What the user needs first: whose adapter it is, and what else is wrong with it.
        throw new Error(
          [
            `${name}: ${otherBase ? `an adapter for ${otherBase}; the loaded model is ${loaded.name}. It ` : ''}${misfit(problems)}`,
            ...warnings,
          ].join('\n'),
        );
      if (problems.length > 0)
        warnings.push(
          `does not fit ${loaded.name} (${problems.length} modules differ): kept for inspection and merging, not applied`,
        );
      if (otherBase) warnings.push(`trained on ${otherBase}; the loaded model is ${loaded.name}`);
    }
    const imported: LibraryEntry = {
      id: newId('imported'),
      name,
      baseModel: adapter.baseModel ?? 'unknown',
      createdAt: options.createdAt ?? Date.now(),
      origin:
        options.origin ?? (options.hub ? `from the Hub: ${refText(options.hub)}` : 'imported'),
      // The files as they came: unknown config fields survive a round trip.
      files: Object.fromEntries([...byName].filter(([f]) => f !== 'adapter_model.bin')),
      details: adapter.details,
      warnings,
      ...(options.hub && { hub: options.hub }),
    };
    await deps.library.add(imported);
    return { item: describeEntry(imported), warnings };
  }

  return {
    parsedAdapter,
    async listAdapters() {
      const loaded = deps.loaded();
      const items = await deps.library.list();
      if (!loaded) return items.map((item) => ({ ...item, fits: null }));
      return Promise.all(
        items.map(async (item) => {
          const problems = shapeMismatches(await parsedAdapter(item.id), loaded.model.config);
          return problems.length === 0
            ? { ...item, fits: true }
            : { ...item, fits: false, misfit: misfit(problems, 3) };
        }),
      );
    },
    async renameAdapter(id, name) {
      const trimmed = name.trim();
      if (!trimmed) throw new Error('An adapter needs a name.');
      const renamed = { ...(await entry(id)), name: trimmed };
      await deps.library.add(renamed);
      parsed.delete(id);
      return describeEntry(renamed);
    },
    async duplicateAdapter(id) {
      const original = await entry(id);
      const copy: LibraryEntry = {
        ...original,
        id: newId('copy'),
        name: `${original.name} (copy)`,
        createdAt: Date.now(),
      };
      await deps.library.add(copy);
      return describeEntry(copy);
    },
    async cutAdapter(id, rank) {
      const original = await entry(id);
      const files = truncateAdapter(new Map(Object.entries(original.files)), rank, original.name);
      const name = `${original.name} · rank ${rank}`;
      // The cut adapter is another file: no Hub commit or model card describes it.
      const cut: LibraryEntry = {
        ...original,
        id: newId('cut'),
        name,
        origin: `cut to rank ${rank} from ${original.name} (DyLoRA)`,
        createdAt: Date.now(),
        files: Object.fromEntries(files),
        details: readPeftAdapter(files, name).details,
        hub: undefined,
      };
      await deps.library.add(cut);
      return describeEntry(cut);
    },
    async adapterIntruders(id, onProgress) {
      const loaded = deps.loaded();
      const original = await entry(id);
      if (!loaded)
        throw new Error(
          `Load ${original.baseModel} to measure intruder dimensions: they compare with its weights.`,
        );
      const adapter = readPeftAdapter(new Map(Object.entries(original.files)), original.name);
      const problems = shapeMismatches(adapter, loaded.model.config);
      if (problems.length > 0) throw new Error(`${original.name}: ${misfit(problems)}`);
      const { model } = loaded;
      return model.where === 'gpu'
        ? adapterIntrusions(model.gpu, model.model.base, adapter, INTRUDER_DEFAULTS, onProgress)
        : adapterIntrusionsCpu(model.weights, adapter, INTRUDER_DEFAULTS);
    },
    async adapterFiles(id) {
      return Object.entries((await entry(id)).files).map(([name, bytes]) => ({ name, bytes }));
    },
    async adapterZip(id) {
      const e = await entry(id);
      const folder = fileSafeName(e.name);
      const files = Object.fromEntries(
        Object.entries(e.files).map(([name, bytes]) => [`${folder}/${name}`, bytes]),
      );
      return { name: `${folder}.zip`, bytes: zipSync(files, { level: 6 }) };
    },
    async adapterGguf(id) {
      const adapter = await parsedAdapter(id);
      const loaded = deps.loaded();
      if (!loaded)
        throw new Error(
          `Load the model ${adapter.name} is for first: a GGUF LoRA is written for the loaded model, whose architecture and attention head counts it needs.`,
        );
      const problems = shapeMismatches(adapter, loaded.model.config);
      if (problems.length > 0 && adapter.baseModel && !namesModel(loaded, adapter.baseModel))
        throw new Error(
          `No GGUF of ${adapter.name} for ${loaded.name}: it is an adapter for ${adapter.baseModel}, and a GGUF LoRA is written from its base model's config (architecture, head counts): load ${adapter.baseModel}, then export it.`,
        );
      if (problems.length > 0)
        throw new Error(
          `No GGUF of ${adapter.name} for ${loaded.name}: the adapter ${misfit(problems, 3)}`,
        );
      const file = ggufLoraFile(adapter, { name: adapter.name, config: loaded.model.config });
      return { name: `${fileSafeName(adapter.name)}.gguf`, bytes: file.bytes };
    },
    async removeAdapter(id) {
      parsed.delete(id);
      await deps.library.remove(id);
    },
    async importAdapter(files, options = {}) {
      await Promise.resolve(); // a failure rejects the promise instead of throwing at the call
      const dropped = await withCompressedRestored(files, deps.compute());
      const name = options.name?.trim() || droppedName(dropped);
      return addImported(adapterFiles(dropped), name, options);
    },
    async importAdapterFromHub(ref, options = {}, onProgress) {
      // A commit id names the same files forever; a branch may have moved since.
      const pinned = ref.revision !== undefined && COMMIT.test(ref.revision);
      const kept = pinned
        ? (await deps.library.list()).find((item) => item.hub && sameRef(item.hub, ref))
        : undefined;
      if (kept) return { item: kept, warnings: kept.warnings ?? [], reused: true };
      const files = await hubAdapterFiles(ref, {
        baseUrl: options.baseUrl,
        cache: deps.fileCache,
        onProgress,
      });
      const name = ref.repo.slice(ref.repo.indexOf('/') + 1);
      // The card is no adapter file: kept beside the two PEFT files, as a trained adapter's is.
      const byName = adapterFiles(files);
      const card = files.find((f) => f.name === CARD_FILE);
      if (card) byName.set(CARD_FILE, card.bytes);
      const added = await addImported(byName, name, { ...options, hub: ref });
      return { ...added, reused: false };
    },
    async libraryZip() {
      const entries = await Promise.all((await deps.library.list()).map((i) => entry(i.id)));
      const zip = { name: 'lora-studio-library.zip', bytes: libraryZip(entries) };
      return transfer(zip, [zip.bytes.buffer]);
    },
    async restoreLibrary(bytes, fileName) {
      await Promise.resolve(); // a failure rejects the promise instead of throwing at the call
      // Checked whole first, the manifest and every adapter's files: a bad zip adds nothing.
      const adapters = readLibraryZip(bytes, fileName);
      for (const a of adapters)
        try {
          readPeftAdapter(a.files, a.name);
        } catch (e) {
          throw new FormatError(`${fileName}: ${a.folder}/`, errorMessage(e));
        }
      const names: string[] = [];
      for (const a of adapters) {
        // As the library held them: kept even where they do not fit the loaded model.
        const { item } = await addImported(a.files, a.name, {
          force: true,
          hub: a.hub,
          origin: a.origin,
          createdAt: a.createdAt,
        });
        names.push(item.name);
      }
      return { names };
    },
    async setAdapterHub(id, ref) {
      const updated = { ...(await entry(id)), hub: ref };
      await deps.library.add(updated);
      return describeEntry(updated);
    },
    async applyAdapters(active, options = {}) {
      const loaded = deps.loaded();
      if (!loaded) throw new Error('Load a model first: adapters apply to the loaded model.');
      const chosen = [];
      for (const { id, weight } of active) {
        if (!Number.isFinite(weight)) throw new Error(`The weight of ${id} must be a number.`);
        const adapter = await parsedAdapter(id);
        const refusal = weight === 0 ? null : applyRefusal(adapter);
        if (refusal && !options.force?.includes(id)) throw new Error(`${refusal}: ${UNAPPLIABLE}.`);
        chosen.push({ adapter, weight });
      }
      // Built completely before anything changes: a refusal leaves the current composition.
      await loaded.model.apply(chosen);
    },
  };
}
