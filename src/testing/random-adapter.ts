// A random LoRA for a model's config as PEFT files: tests that need a real adapter of known
// shape (push, export, compression, baking, sharing) make theirs here. Factors are uniform in
// [-range, range], drawn layer by layer, module by module in the architecture's order, A before B.
import { peftFiles } from '../adapters/peft.ts';
import { modulePath } from '../model/architecture.ts';
import type { ModelConfig } from '../model/config.ts';
import { randomArray, seededRandom } from './random.ts';

export interface RandomAdapterOptions {
  seed: number;
  rank: number;
  alpha: number;
  range: number;
  baseModel: string;
  /** Module names (q_proj…); all of the architecture's when absent. */
  modules?: readonly string[];
  /** Which layers; all when absent. */
  layers?: readonly number[];
}

export function randomAdapterFiles(
  config: ModelConfig,
  options: RandomAdapterOptions,
): Map<string, Uint8Array> {
  const { rank, alpha, range } = options;
  const random = seededRandom(options.seed);
  const specs = config.arch.modules.filter((m) => options.modules?.includes(m.name) ?? true);
  const layers = options.layers ?? Array.from({ length: config.numLayers }, (_, l) => l);
  const modules = layers.flatMap((layer) =>
    specs.map((m) => ({
      path: modulePath(config.arch, layer, m),
      layer,
      rank,
      alpha,
      in: m.in,
      out: m.out,
      a: randomArray(random, rank * m.in, -range, range),
      b: randomArray(random, m.out * rank, -range, range),
    })),
  );
  return peftFiles({
    modules,
    rank,
    alpha,
    rslora: false,
    targets: specs.map((m) => m.name),
    dropout: 0,
    initLoraWeights: true,
    baseModel: options.baseModel,
    numLayers: config.numLayers,
  });
}
