// YAML as Python's readers take it. PyYAML reads YAML 1.1, where a float needs a dot before its
// exponent: `1e-8` would reach Axolotl and LLaMA-Factory as the string "1e-8" (LLaMA-Factory
// hands its arguments to transformers unconverted), so such floats are written `1.0e-8`.
import { stringify, type ScalarTag } from 'yaml';

const EXPONENT_WITHOUT_DOT = /^[-+]?\d+e[-+]\d+$/;

const pythonFloat: ScalarTag = {
  tag: 'tag:yaml.org,2002:float',
  default: true,
  identify: (value) => typeof value === 'number' && !Number.isInteger(value),
  // Chosen over the built-in float tags when stringifying, which test nothing.
  test: /^[-+]?\d[\d.]*e[-+]?\d+$/,
  resolve: (text) => Number(text),
  stringify: ({ value }) => {
    const text = String(value);
    return EXPONENT_WITHOUT_DOT.test(text) ? text.replace('e', '.0e') : text;
  },
};

/** A YAML document of `value` after `header` as comment lines. */
export function pythonYaml(value: unknown, header: readonly string[]): string {
  const body = stringify(value, { customTags: (tags) => [pythonFloat, ...tags], lineWidth: 0 });
  return header.map((line) => `# ${line}`.trimEnd() + '\n').join('') + body;
}
