// `lora-studio push ADAPTER_DIR --repo USER/NAME`: an adapter folder to a Hub model repo in one
// commit (src/hub/push.ts speaks the Hub's upload API; src/hub/adapter-upload.ts decides what
// goes: the PEFT files, the model card with a valid base_model, the merge recipe, a GGUF LoRA).
// The token comes from HF_TOKEN and goes nowhere but the Hub's Authorization header.
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { readPeftAdapter } from '../adapters/peft-read.ts';
import { FormatError } from '../model/errors.ts';
import { readGguf } from '../model/gguf/read.ts';
import {
  adapterUpload,
  CARD_FILE,
  CONFIG_FILE,
  RECIPE_FILE,
  WEIGHT_FILES,
} from '../hub/adapter-upload.ts';
import { HUB_ENDPOINT, HubPushError, parseRepoId, pushToHub } from '../hub/push.ts';
import { numberOption, parseOptions, UsageError } from './args.ts';

const USAGE =
  'usage: push ADAPTER_DIR --repo USER/NAME [--private] [--revision BRANCH] [--message MSG] [--gguf FILE] [--base-model HUB_ID] [--endpoint URL] [--timeout SECONDS] (the token in HF_TOKEN)';

/** The folder's files that a push takes: config, weights (safetensors, else a .bin), card, recipe. */
async function adapterFolderFiles(dir: string): Promise<Map<string, Uint8Array>> {
  const info = await stat(dir).catch(() => null);
  if (!info) throw new FormatError(dir, 'does not exist');
  if (!info.isDirectory())
    throw new FormatError(dir, 'is not a folder: push takes a PEFT adapter folder');
  const files = new Map<string, Uint8Array>();
  for (const name of [CONFIG_FILE, ...WEIGHT_FILES, CARD_FILE, RECIPE_FILE]) {
    if (name === WEIGHT_FILES[1] && files.has(WEIGHT_FILES[0])) continue;
    const bytes = await readFile(join(dir, name)).catch(() => null);
    if (bytes) files.set(name, new Uint8Array(bytes));
  }
  return files;
}

/** A llama.cpp GGUF LoRA file, checked to be one. */
async function ggufLora(path: string): Promise<{ name: string; bytes: Uint8Array }> {
  const bytes = new Uint8Array(
    await readFile(path).catch(() => {
      throw new FormatError(path, 'cannot be read (does the file exist?)');
    }),
  );
  const type = readGguf(bytes, path).metadata.get('general.type');
  if (type?.type !== 'string' || type.value !== 'adapter')
    throw new FormatError(
      path,
      'is not a GGUF LoRA (general.type is not "adapter"); write one with lora-studio export-gguf',
    );
  return { name: basename(path), bytes };
}

export async function push(args: string[]): Promise<number> {
  const { values, flags, positionals } = parseOptions(args, {
    values: ['repo', 'revision', 'message', 'gguf', 'base-model', 'endpoint', 'timeout'],
    flags: ['private'],
    positionals: true,
  });
  if (positionals.length !== 1) throw new UsageError(`give one adapter folder; ${USAGE}`);
  const [dir] = positionals;
  const repo = values.get('repo');
  if (repo === undefined) throw new UsageError(`--repo USER/NAME is required; ${USAGE}`);
  const timeout = numberOption(values, 'timeout', 60);
  if (!(timeout > 0)) throw new UsageError(`--timeout must be a positive number of seconds`);
  try {
    parseRepoId(repo);
    const token = process.env.HF_TOKEN?.trim() ?? '';
    if (!token)
      throw new UsageError(
        'no token: set HF_TOKEN to a Hub User Access Token with write access (https://huggingface.co/settings/tokens)',
      );
    const files = await adapterFolderFiles(dir);
    readPeftAdapter(files, dir);
    const ggufPath = values.get('gguf');
    const upload = adapterUpload(files, {
      repo,
      baseModel: values.get('base-model'),
      gguf: ggufPath === undefined ? undefined : await ggufLora(ggufPath),
    });
    const endpoint = values.get('endpoint') ?? (process.env.HF_ENDPOINT || HUB_ENDPOINT);
    // Progress of the large files and the commit; the quick API calls before them say nothing,
    // so that a refusal there is the only line.
    let shown = '';
    const result = await pushToHub(upload.files, {
      repo,
      token,
      endpoint,
      revision: values.get('revision'),
      private: flags.has('private'),
      message: values.get('message') ?? `Upload ${basename(dir)} with LoRA Studio`,
      timeoutMs: timeout * 1000,
      onProgress: (p) => {
        const line =
          p.phase === 'lfs'
            ? `uploading the large files: ${p.done} of ${p.total} bytes${p.file ? ` (${p.file})` : ''}`
            : p.phase === 'commit'
              ? 'committing'
              : '';
        if (line && line !== shown) console.error(`push: ${line}`);
        shown = line;
      },
    });
    console.log(
      JSON.stringify(
        {
          repo: result.repo,
          url: result.url,
          revision: result.revision,
          created: result.created,
          private: flags.has('private') && result.created ? true : undefined,
          commit: result.commit.oid,
          commit_url: result.commit.url,
          base_model: upload.baseModel,
          card: upload.card,
          files: result.files,
        },
        null,
        2,
      ),
    );
    return 0;
  } catch (e) {
    // Every refusal of the Hub, the token or the repo id is the input's: exit 2 (exit.ts).
    if (e instanceof HubPushError) throw new UsageError(e.message);
    throw e;
  }
}
