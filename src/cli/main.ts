import { INIT_NAMES } from '../adapters/inits.ts';
import { VARIANT_NAMES } from '../adapters/variants.ts';
import { errorMessage } from '../errors.ts';
import { WEIGHT_PRECISIONS } from '../model/weights.ts';
import { VARIANTS } from '../studies/init-study.ts';
import { compare } from './compare.ts';
import { compress } from './compress.ts';
import { convert } from './convert.ts';
import { exportGguf } from './export-gguf.ts';
import { extract } from './extract.ts';
import { EXIT, exitCode } from './exit.ts';
import { generate } from './generate.ts';
import { info } from './info.ts';
import { inspect } from './inspect.ts';
import { initStudyCommand } from './init-study.ts';
import { logits } from './logits.ts';
import { merge } from './merge.ts';
import { MERGE_SUMMARY } from './merge-options.ts';
import { mergeDemoCommand } from './merge-demo.ts';
import { perplexity } from './perplexity.ts';
import { route, ROUTE_SUMMARY } from './route.ts';
import { routeStudyCommand } from './route-study.ts';
import { bakeRouter, BAKE_ROUTER_SUMMARY } from './bake-router.ts';
import { train, VARIANT_FLAGS } from './train.ts';
import { truncate } from './truncate.ts';

/** The --weights choices, from the list the commands accept. */
const WEIGHTS_USAGE = `[--weights ${WEIGHT_PRECISIONS.join('|')}]`;

interface Command {
  summary: string;
  run: (args: string[]) => Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  info: {
    summary: 'print the WebGPU adapter, enabled features and key limits (--json for JSON)',
    run: info,
  },
  generate: {
    summary: `generate text: --model PATH [--tokenizer PATH] [--adapter DIR|FILE.gguf[:WEIGHT]]… [--router DIR] [--prompt TEXT] [--max-new-tokens N] [--temperature T] [--top-p P] [--top-k K] [--seed S] ${WEIGHTS_USAGE} [--cpu]`,
    run: generate,
  },
  perplexity: {
    summary: `mean loss of a text: --model PATH [--tokenizer PATH] [--adapter DIR|FILE.gguf[:WEIGHT]]… [--router DIR] --data FILE ${WEIGHTS_USAGE} [--cpu]; prints JSON`,
    run: perplexity,
  },
  logits: {
    summary: `raw logits for token ids fed exactly as given (no BOS, no template): --model DIR [--adapter DIR|FILE.gguf[:WEIGHT]]… [--router DIR] --ids 1,2,3 [--ids …] [--positions all|last] ${WEIGHTS_USAGE} [--cpu]; JSON {"logits": [batch][positions][vocab]} on stdout`,
    run: logits,
  },
  train: {
    summary: `fine-tune a LoRA/PiSSA adapter: --model PATH --data FILE --out DIR [--init ${INIT_NAMES.join('|')}] [--basis-seed S --basis-slice K] [--sorsa-gamma G] [--sparse s2ft --density D] [--rank R] [--alpha A] [--rslora] [--variant ${VARIANT_NAMES.join('|')}] ${VARIANT_FLAGS.map((f) => `[--${f}]`).join(' ')} [--targets attention|all-linear|LIST] [--layers LIST] [--dropout P] [--steps N] [--lr LR] [--batch B] [--seq-len T] [--grad-accum K] [--schedule cosine|wsd|constant] [--warmup N] [--weight-decay W] [--adam-beta1 B1] [--adam-beta2 B2] [--adam-epsilon E] [--max-grad-norm G] [--eval-every N] [--val-fraction F] [--sample PROMPT] [--checkpoint-every N] [--seed S] [--recompute] [--lora-pro] [--dylora] [--export plain|recompress|residual] ${WEIGHTS_USAGE} [--resume]; weight matrices keep the half precision of their file on the GPU unless --weights says otherwise; JSON summary on stdout`,
    run: train,
  },
  merge: {
    summary: MERGE_SUMMARY,
    run: merge,
  },
  route: {
    summary: ROUTE_SUMMARY,
    run: route,
  },
  'bake-router': {
    summary: BAKE_ROUTER_SUMMARY,
    run: bakeRouter,
  },
  'route-study': {
    summary:
      'train a Zimmy, a Snorp and a Momo adapter on the built-in stories260K, compose them by task arithmetic, learned scales, token routers (dense, top-1) and MixLoRA experts trained on their mixed texts; markdown table of held-out losses, kept improvement and tokens routed to their own adapter [--steps N] [--router-steps N] [--rank R] [--router-lr LR] [--expert-lr LR]',
    run: routeStudyCommand,
  },
  'init-study': {
    summary: `train every init and variant (${VARIANTS.map((v) => v.label).join(', ')}) on both style corpora with the built-in stories260K; markdown tables of validation loss [--steps N] [--lr LR] [--rank R] [--eval-every N] [--only LABEL,…] [--ranks: also the DyLoRA and LoRA adapters cut to every rank] [--sorsa-gamma G: SORSA's regulariser weight] [--intruders [--full-lr LR]: a full fine-tune against LoRA by intruder dimensions instead]`,
    run: initStudyCommand,
  },
  truncate: {
    summary:
      'cut an adapter trained with --dylora to a smaller rank: ADAPTER_DIR --rank B --out DIR (a plain PEFT LoRA of rank B, same alpha); prints JSON',
    run: truncate,
  },
  'merge-demo': {
    summary:
      'train a Zimmy and a Snorp adapter on the built-in stories260K, merge them by every method and print the merge report as markdown [--steps N] [--rank R] [--init I (orthogonal: slices 0 and 1 of one basis)]',
    run: mergeDemoCommand,
  },
  compare: {
    summary:
      'compare adapters for one base model: ‖ΔW‖, cosine, subspace overlap, sign conflicts, effective rank per module, summaries per pair; [--cpu] ADAPTER_DIR…; JSON on stdout',
    run: compare,
  },
  inspect: {
    summary:
      'summarise a PEFT LoRA adapter (folder or .zip): format, base model, ranks, alphas, scalings, targets, tensors with dtypes and non-finite counts, ‖ΔW‖ and effective rank per module; with --model MODEL also `intruders`, its intruder dimensions per module and layer [--intruder-k K] [--intruder-threshold E] [--cpu]; JSON on stdout; exit 2 on malformed input',
    run: inspect,
  },
  extract: {
    summary:
      'a LoRA from a full fine-tune: --base MODEL --tuned MODEL (HF folders, read a tensor at a time, or .gguf/.bin) (--rank R | --energy E [--max-rank N]) --out DIR [--sv-epsilon S] [--targets all-linear|attention|LIST] [--embeddings skip|lora|save] [--head skip|save] [--base-id HUB_ID] [--seed S] [--cpu]; per module the truncated SVD of W_tuned − W_base; extraction.json reports the energy kept per module and what changed but is not carried; JSON summary on stdout',
    run: extract,
  },
  compress: {
    summary:
      'ComPEFT: ADAPTER_DIR --density D --out DIR [--target factors|delta] [--alpha A] [--model MODEL --data FILE (perplexity judges α and the cost)] [--curve] [--cpu]; keeps the top D share of each tensor by magnitude as signs and one scale per tensor (adapter_model.compeft, docs/sharing.md); COMPRESSED --decompress --out DIR writes the plain PEFT adapter back; JSON summary on stdout',
    run: compress,
  },
  'export-gguf': {
    summary:
      "write a PEFT LoRA adapter as a llama.cpp GGUF LoRA for its base model (its family's llama.cpp architecture, tensor names and q/k rule, its head counts): ADAPTER_DIR --out FILE.gguf --model MODEL_DIR|FILE.gguf (HF folder, llama2.c .bin or GGUF model; without it, --heads N --kv-heads N assume a Llama base) [--modelfile] (GGUF base: an ollama Modelfile beside FILE.gguf); see docs/gguf.md; JSON summary on stdout",
    run: exportGguf,
  },
  'export-run': {
    summary:
      "a training run as a folder TRL/PEFT, Axolotl or LLaMA-Factory trains from unchanged: RUN_DIR (train's --out) --to trl|axolotl|llamafactory --out DIR [--model HUB_ID_OR_PATH] --data FILE (the run's data, checked against its hash); the data as JSONL, train.py + run_config.json + accelerate configs (trl) or the tool's YAML, and a README listing what the tool cannot express; see docs/sharing.md; JSON summary on stdout",
    run: async (args) => (await import('./export-run.ts')).exportRun(args),
  },
  push: {
    summary:
      'push an adapter to a Hub model repo in one commit (created when missing): ADAPTER_DIR --repo USER/NAME [--private] [--revision BRANCH] [--message MSG] [--gguf FILE] [--base-model HUB_ID] [--endpoint URL] [--timeout SECONDS]; the token from HF_TOKEN (write access), the endpoint also from HF_ENDPOINT; uploads the PEFT files, the model card (base_model made a Hub id), merge_recipe.json and the GGUF; see docs/sharing.md; JSON summary on stdout',
    run: async (args) => (await import('./push.ts')).push(args),
  },
  convert: {
    summary:
      'llama2.c checkpoint to an HF folder: --llama2c FILE --out DIR [--tokenizer FILE] [--adapter DIR[:WEIGHT]]… (adapters baked into the weights, as merge_and_unload) [--force]',
    run: convert,
  },
  bench: {
    summary:
      'matmul GFLOP/s, ours vs TF.js WebGPU in Chromium and ours in Node (--quick, --node-only); --gguf-1b [--peer PATH]: a 1B GGUF model against llama.cpp; --tokenize: dataset preparation in MB/s',
    // Loaded on demand: it needs the dev tools (Vite, Playwright, TF.js).
    run: async (args) => (await import('./bench.ts')).bench(args),
  },
};

export function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return ['Usage: lora-studio <command> [options]', '', 'Commands:', ...lines].join('\n');
}

/** Runs one CLI command; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    console.log(usage());
    return EXIT.ok;
  }
  // hasOwn: names like "toString" must not reach Object.prototype.
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    console.error(`lora-studio: unknown command "${name}"\n\n${usage()}`);
    return EXIT.badInput;
  }
  try {
    return await command.run(args);
  } catch (e) {
    // One line: a message that spans lines (a parser's excerpt) is folded.
    console.error(`lora-studio ${name}: ${errorMessage(e).replace(/\s*\n\s*/g, ' ')}`);
    return exitCode(e);
  }
}
