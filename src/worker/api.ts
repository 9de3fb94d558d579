// The contract between the UI and the worker that owns the GPU. The UI imports only
// this file (types) and the client; everything behind it runs in the worker.
export type { AdapterReport } from '../gpu/device.ts';
export type { SelfCheckResult } from '../linalg/self-check.ts';
import type { AdapterReport } from '../gpu/device.ts';
import type { NamedProblem } from '../linalg/matmul-tuning.ts';
import type { SelfCheckResult } from '../linalg/self-check.ts';
import type { ModelConfig } from '../model/config.ts';
import type { GenerateOptions } from '../model/generate.ts';
import type { DownloadProgress } from '../model/hub.ts';
import type { LossReport } from '../model/perplexity.ts';

export type { ModelConfig, GenerateOptions, LossReport, DownloadProgress };

/** What the studio shows about a loaded model. */
export interface ModelInfo {
  name: string;
  config: ModelConfig;
  parameters: number;
  /** GPU memory for weights and KV cache, in bytes. */
  gpuBytes: number;
}

export interface GenerationResult {
  /** The prompt and its continuation, decoded. */
  text: string;
  newTokens: number;
  /** Wall time of the whole generation (prefill and decode). */
  ms: number;
}

/** Why WebGPU cannot be used, each with its own advice in the UI. */
export type UnavailableReason = 'no-webgpu' | 'insecure-context' | 'no-adapter' | 'device-failed';

export type GpuStatus =
  | { state: 'ready'; adapter: AdapterReport }
  | { state: 'unavailable'; reason: UnavailableReason; detail: string }
  | { state: 'lost'; reason: string; detail: string };

export interface StudioApi {
  /** Acquires the GPU. `onStatus` hears later changes (device lost, reconnected). */
  connect(onStatus: (status: GpuStatus) => void): Promise<GpuStatus>;
  /** Re-acquires the device after a loss. */
  reconnect(): Promise<GpuStatus>;
  /** Runs the kernels on the GPU and compares them with their CPU references. */
  selfCheck(): Promise<SelfCheckResult[]>;
  /**
   * Measures the matmul strategies on this GPU for the given problems (default: squares and
   * LoRA-layer shapes) and keeps the fastest, also for later sessions.
   */
  tuneMatmul(problems?: readonly NamedProblem[]): Promise<{ problem: string; tile: string }[]>;
  /** Loads the built-in stories260K model (shipped with the app: no network). */
  loadBuiltinModel(): Promise<ModelInfo>;
  /**
   * Loads a model from files the user chose or dropped: an HF folder (config.json, safetensors,
   * tokenizer.json) or a llama2.c checkpoint with its tokenizer. Replaces the loaded model.
   */
  loadModelFiles(files: readonly File[], name: string): Promise<ModelInfo>;
  /**
   * Downloads a model from the Hugging Face Hub by repo id (`HuggingFaceTB/SmolLM2-135M`) through
   * the browser's cache; `baseUrl` replaces https://huggingface.co (tests use a local server).
   */
  loadModelFromHub(
    repo: string,
    baseUrl?: string,
    onProgress?: (p: DownloadProgress) => void,
  ): Promise<ModelInfo>;
  unloadModel(): Promise<void>;
  /** Mean next-token loss of `text` under the loaded model. */
  perplexity(text: string): Promise<LossReport>;
  /**
   * Continues `prompt` with the loaded model; `onText` hears the text so far after every new
   * token (decoded whole, so multi-byte characters arrive intact).
   */
  generate(
    prompt: string,
    options: GenerateOptions,
    onText?: (text: string) => void,
  ): Promise<GenerationResult>;
}
