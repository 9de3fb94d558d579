// The Hub models the Model panel offers, one or two per family, described once: docs/models.md
// lists the same rows (src/model/models-doc.test.ts holds the two equal and each family to the
// engine's). Sizes are the safetensors' total as the repo's file list publishes it (decimal
// units); parameters and licence as its model card names them.

export interface HubPreset {
  repo: string;
  /** The engine's family (src/model/families.ts) its config.json builds. */
  family: string;
  parameters: string;
  /** The safetensors to download, in bytes, as the Hub lists them. */
  downloadBytes: number;
  /** The size is an estimate (parameters × 2 bytes of bf16), not read off the repo's file list. */
  approx?: true;
  licence: string;
  /** The Hub serves the files only to a logged-in account that accepted the licence. */
  gated: boolean;
}

export const HUB_PRESETS: readonly HubPreset[] = [
  {
    repo: 'HuggingFaceTB/SmolLM2-135M-Instruct',
    family: 'llama',
    parameters: '135M',
    downloadBytes: 269e6,
    licence: 'Apache-2.0',
    gated: false,
  },
  {
    repo: 'openai-community/gpt2',
    family: 'gpt2',
    parameters: '124M',
    downloadBytes: 548e6,
    licence: 'MIT',
    gated: false,
  },
  {
    repo: 'google/gemma-3-270m-it',
    family: 'gemma3',
    parameters: '270M',
    downloadBytes: 536e6,
    approx: true,
    licence: 'Gemma Terms of Use',
    gated: true,
  },
  {
    repo: 'Qwen/Qwen2.5-0.5B-Instruct',
    family: 'qwen2',
    parameters: '0.5B',
    downloadBytes: 988e6,
    licence: 'Apache-2.0',
    gated: false,
  },
  {
    repo: 'Qwen/Qwen3-0.6B',
    family: 'qwen3',
    parameters: '0.6B',
    downloadBytes: 1.5e9,
    licence: 'Apache-2.0',
    gated: false,
  },
  {
    repo: 'meta-llama/Llama-3.2-1B-Instruct',
    family: 'llama',
    parameters: '1.24B',
    downloadBytes: 2.47e9,
    licence: 'Llama 3.2 Community License',
    gated: true,
  },
  {
    repo: 'HuggingFaceTB/SmolLM3-3B',
    family: 'smollm3',
    parameters: '3B',
    downloadBytes: 6.15e9,
    licence: 'Apache-2.0',
    gated: false,
  },
  {
    repo: 'microsoft/Phi-4-mini-instruct',
    family: 'phi3',
    parameters: '3.8B',
    downloadBytes: 7.67e9,
    licence: 'MIT',
    gated: false,
  },
];

/** A download size as the Hub writes it: "269 MB", "1.5 GB", "approx. 536 MB". */
export function presetSize(preset: HubPreset): string {
  const b = preset.downloadBytes;
  const size = b >= 1e9 ? `${+(b / 1e9).toPrecision(3)} GB` : `${Math.round(b / 1e6)} MB`;
  return preset.approx ? `approx. ${size}` : size;
}
