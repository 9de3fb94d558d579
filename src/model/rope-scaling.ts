// Rotary frequencies from a config's rope_theta and rope_scaling, as transformers'
// modeling_rope_utils computes them (in f64 here): the default θ^(−2j/d), `linear`
// (position interpolation), `llama3` (Llama 3.1+'s banded rescaling) and `longrope` (Phi-3's
// per-pair factors and attention factor). Other types are refused by name.
import { FormatError } from './errors.ts';
import type { RopeSpec } from './architecture.ts';

export const ROPE_TYPES = ['default', 'linear', 'llama3', 'longrope'] as const;

type Scaling = Record<string, unknown>;

/** The default inverse frequencies θ^(−2j/dims), j < dims/2, of `dims` rotary values. */
export function ropeInverseFrequencies(dims: number, theta: number): Float64Array {
  return Float64Array.from({ length: dims / 2 }, (_, j) => theta ** (-(2 * j) / dims));
}

/**
 * The frequencies of `dims` rotating values. `maxPositions` and `originalMax` are the config's
 * max_position_embeddings and original_max_position_embeddings (longrope reads them).
 */
export function ropeFrequencies(
  dims: number,
  theta: number,
  scaling: Scaling | null | undefined,
  context: { maxPositions: number; originalMax?: number },
  file = 'config.json',
): RopeSpec {
  const base = ropeInverseFrequencies(dims, theta);
  const named = scaling?.rope_type ?? scaling?.type;
  const type = !scaling ? 'default' : typeof named === 'string' ? named : 'unknown';
  const number = (key: string, fallback?: number): number => {
    const v = scaling?.[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
      throw new FormatError(
        file,
        `rope_scaling.${key} must be a positive number, got ${JSON.stringify(v)}`,
      );
    return v;
  };
  switch (type) {
    case 'default':
      return { invFreq: base, attentionFactor: 1 };
    case 'linear': {
      const factor = number('factor');
      return { invFreq: base.map((f) => f / factor), attentionFactor: 1 };
    }
    case 'llama3': {
      const factor = number('factor');
      const low = number('low_freq_factor');
      const high = number('high_freq_factor');
      const original = number('original_max_position_embeddings');
      const lowWavelength = original / low;
      const highWavelength = original / high;
      const invFreq = base.map((f) => {
        const wavelength = (2 * Math.PI) / f;
        if (wavelength < highWavelength) return f;
        if (wavelength > lowWavelength) return f / factor;
        const smooth = (original / wavelength - low) / (high - low);
        return (1 - smooth) * (f / factor) + smooth * f;
      });
      return { invFreq, attentionFactor: 1 };
    }
    case 'longrope': {
      const originalMax =
        context.originalMax ?? number('original_max_position_embeddings', context.maxPositions);
      const factor =
        context.originalMax !== undefined
          ? context.maxPositions / originalMax
          : number('factor', 1);
      // This engine keeps contexts within original_max_position_embeddings (see the Phi-3
      // family), where transformers uses the short factors.
      const factors = scaling?.short_factor;
      if (
        !Array.isArray(factors) ||
        factors.length !== dims / 2 ||
        !factors.every((f) => typeof f === 'number' && f > 0)
      )
        throw new FormatError(
          file,
          `rope_scaling.short_factor must list ${dims / 2} positive numbers (one per rotated pair)`,
        );
      const given = scaling?.attention_factor;
      const attentionFactor =
        typeof given === 'number'
          ? given
          : factor <= 1
            ? 1
            : Math.sqrt(1 + Math.log(factor) / Math.log(originalMax));
      return {
        invFreq: base.map((f, j) => f / (factors[j] as number)),
        attentionFactor,
      };
    }
    default:
      throw new FormatError(
        file,
        `rope_scaling type ${JSON.stringify(type)} is not supported (supported: ${ROPE_TYPES.join(', ')})`,
      );
  }
}
