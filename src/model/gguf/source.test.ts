import { describe, expect, it } from 'vitest';
import type { GgufValue } from './read.ts';
import { ggufSourceRepo, hubRepoOfUrl } from './source.ts';

const str = (value: string): GgufValue => ({ type: 'string', value });
const source = (entries: Record<string, string>) =>
  ggufSourceRepo(new Map(Object.entries(entries).map(([k, v]) => [k, str(v)])));

describe('the Hub repo a GGUF model names as its source', () => {
  it('prefers general.source.repo_url, then the older converters’ repository, then general.repo_url', () => {
    const all = {
      'general.source.repo_url': 'https://huggingface.co/meta-llama/Llama-3.2-1B-Instruct',
      'general.source.huggingface.repository': 'TinyLlama/TinyLlama-1.1B-Chat-v1.0',
      'general.repo_url': 'https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct',
    };
    expect(source(all)).toBe('meta-llama/Llama-3.2-1B-Instruct');
    expect(
      source({ ...all, 'general.source.repo_url': 'https://github.com/meta-llama/llama' }),
    ).toBe('TinyLlama/TinyLlama-1.1B-Chat-v1.0');
    expect(source({ 'general.repo_url': all['general.repo_url'] })).toBe(
      'Qwen/Qwen2.5-0.5B-Instruct',
    );
  });

  it('skips values that name no Hub repo, and never takes the model it was fine-tuned from', () => {
    expect(
      source({
        'general.source.huggingface.repository': 'not a repo',
        'general.repo_url': 'https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct',
      }),
    ).toBe('HuggingFaceTB/SmolLM2-135M-Instruct');
    expect(
      source({
        'general.base_model.0.repo_url': 'https://huggingface.co/meta-llama/Llama-3.2-1B',
        'general.name': 'Llama 3.2 1B Instruct',
      }),
    ).toBeUndefined();
    expect(ggufSourceRepo(new Map([['general.repo_url', { type: 'u32', value: 1 }]]))).toBe(
      undefined,
    );
  });

  it('reads a repo id off a huggingface.co URL only', () => {
    expect(hubRepoOfUrl(str('https://huggingface.co/Qwen/Qwen3-0.6B'))).toBe('Qwen/Qwen3-0.6B');
    expect(hubRepoOfUrl(str('https://huggingface.co/Qwen/Qwen3-0.6B/tree/main'))).toBeNull();
    expect(hubRepoOfUrl(str('http://example.com/Qwen/Qwen3-0.6B'))).toBeNull();
    expect(hubRepoOfUrl(undefined)).toBeNull();
  });
});
