// A recipe is checked as a whole before any work: structure, method and parameters.
import { describe, expect, it } from 'vitest';
import { readRecipe } from './recipe.ts';

const recipe = (spec: unknown) => JSON.stringify({ created_with: 'LoRA Studio', spec });
const adapters = [
  { id: 'a', weight: 1 },
  { id: 'b', weight: [0, 1] },
];

describe('readRecipe', () => {
  it('returns the spec of a sound recipe', () => {
    expect(readRecipe(recipe({ method: 'ties_svd', adapters, density: 0.3 }), 'r.json')).toEqual({
      method: 'ties_svd',
      adapters,
      density: 0.3,
    });
  });

  it.each([
    ['{}', /r.json: is not a merge recipe/],
    ['null', /r.json: is not a merge recipe/],
    ['[1]', /r.json: is not a merge recipe/],
    ['{"spec": 3}', /r.json: is not a merge recipe/],
    ['not json', /r.json: is not valid JSON/],
    [recipe({ adapters }), /spec.method must be a merge method name/],
    [recipe({ method: 'ties_svd' }), /spec.adapters must be a non-empty list/],
    [recipe({ method: 'ties_svd', adapters: [null] }), /spec.adapters\[0\] needs a string id/],
    [recipe({ method: 'ties_svd', adapters: [{ id: 'a', weight: 'x' }] }), /needs a string id/],
    [recipe({ method: 'frankenmerge', adapters }), /unknown method "frankenmerge"/],
    [recipe({ method: 'ties_svd', adapters, density: 7 }), /density/],
    [recipe({ method: 'slerp', adapters: [adapters[0]] }), /slerp merges/],
  ])('refuses %s', (text, message) => {
    expect(() => readRecipe(text, 'r.json')).toThrow(message);
  });
});
