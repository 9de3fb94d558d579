import { adaptedCpuModel, adaptedGpuModel } from '../adapters/adapted-model.ts';
import { generateTokens } from '../model/generate.ts';
import { loadModelFromPath } from '../model/load-node.ts';
import { WEIGHT_PRECISIONS } from '../model/weights.ts';
import { adapterOptions } from './adapters.ts';
import { parseOptions, choiceOption, numberOption, UsageError } from './args.ts';
import { gpuOrCpu } from './device.ts';
import { applyRouterOption } from './router-option.ts';
import type { RoutedAdapter } from '../routing/router.ts';

/**
 * `lora-studio generate --model PATH [--tokenizer PATH] [--prompt TEXT] [--max-new-tokens N]
 * [--temperature T] [--top-p P] [--top-k K] [--seed S]`: only the generated text goes to
 * stdout, streamed; the prompt and the timing go to stderr.
 */
export async function generate(args: string[]): Promise<number> {
  const { values, lists, flags } = parseOptions(args, {
    lists: ['adapter'],
    flags: ['cpu', 'force'],
    values: [
      'model',
      'tokenizer',
      'prompt',
      'max-new-tokens',
      'temperature',
      'top-p',
      'top-k',
      'seed',
      'weights',
      'router',
    ],
  });
  const path = values.get('model');
  if (!path) throw new UsageError('--model PATH is required (an HF folder or a llama2.c .bin)');
  const { config, weights, tokenizer, name, hubId } = await loadModelFromPath(
    path,
    values.get('tokenizer'),
  );
  const prompt = values.get('prompt') ?? '';
  const options = {
    maxNewTokens: numberOption(values, 'max-new-tokens', 256),
    temperature: numberOption(values, 'temperature', 0),
    topP: numberOption(values, 'top-p', 1),
    topK: numberOption(values, 'top-k', 0),
    seed: numberOption(values, 'seed', 0),
  };
  const precision = choiceOption(values, 'weights', WEIGHT_PRECISIONS, 'file');
  const gpu = await gpuOrCpu('generate', flags.has('cpu'));
  const model = gpu
    ? adaptedGpuModel(gpu, config, weights, precision)
    : adaptedCpuModel(config, weights, precision);
  let routed: RoutedAdapter | null = null;
  try {
    await model.apply(
      await adapterOptions({ name, hubId, config }, lists.get('adapter') ?? [], flags.has('force')),
    );
    routed = await applyRouterOption(
      values.get('router'),
      { name, hubId, config },
      model,
      lists.get('adapter') ?? [],
    );
    const ids = tokenizer.encode(prompt);
    const context = ids.length > 0 ? ids : [config.bosTokenId];
    const promptText = tokenizer.decode(context, { skipSpecialTokens: true });
    process.stderr.write(promptText);
    const generated: number[] = [];
    let printed = 0;
    const start = performance.now();
    for await (const token of generateTokens(model, context, options)) {
      generated.push(token);
      // Decode the whole continuation each time so multi-byte characters print whole.
      const text = tokenizer
        .decode([...context, ...generated], { skipSpecialTokens: true })
        .slice(promptText.length);
      if (!text.endsWith('\uFFFD')) {
        process.stdout.write(text.slice(printed));
        printed = text.length;
      }
    }
    process.stdout.write('\n');
    const seconds = (performance.now() - start) / 1000;
    process.stderr.write(
      `[${generated.length} tokens in ${seconds.toFixed(2)} s, ${(generated.length / seconds).toFixed(1)} tokens/s]\n`,
    );
    return 0;
  } finally {
    routed?.dispose();
    model.dispose();
    gpu?.destroy();
  }
}
