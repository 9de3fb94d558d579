/** A failure on the GPU path, with the kernel (or allocation) and shapes it concerns. */
export class GpuError extends Error {
  override name = 'GpuError';
  constructor(
    message: string,
    /** What was running: a kernel label such as `elementwise.binary add [1000]`. */
    readonly context?: string,
    /** The WebGPU error type when one was captured: validation, out-of-memory or internal. */
    readonly kind?: 'validation' | 'out-of-memory' | 'internal' | 'unavailable' | 'lost',
  ) {
    super(context ? `${context}: ${message}` : message);
  }
}

/** Shapes that do not fit what an operation needs, e.g. mismatched sizes. */
export class ShapeError extends Error {
  override name = 'ShapeError';
}

/** Describes a captured GPUError as the kind our GpuError reports. */
export function kindOf(error: GPUError): 'validation' | 'out-of-memory' | 'internal' {
  if (error instanceof GPUOutOfMemoryError) return 'out-of-memory';
  if (error instanceof GPUValidationError) return 'validation';
  return 'internal';
}
