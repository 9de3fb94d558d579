// Cutting a DyLoRA-trained adapter to a smaller rank (src/train/dylora.ts): A's first b rows and
// B's first b columns of every module, with the same alpha, so PEFT scales the cut adapter by
// α/b (α/√b with rsLoRA) — the scaling its rank-b prefix was trained at. The result is a plain
// PEFT LoRA of rank b; every other key of adapter_config.json and every other tensor is kept.
import { FormatError } from '../model/errors.ts';
import { readSafetensors, writeSafetensors, type TensorToWrite } from '../model/safetensors.ts';
import { adapterFiles, CONFIG, tensorRole, WEIGHTS } from './peft-config.ts';

/** The adapter's files cut to rank `rank` (modules of a smaller rank are kept whole). */
export function truncateAdapter(
  files: ReadonlyMap<string, Uint8Array>,
  rank: number,
  name: string,
): Map<string, Uint8Array> {
  if (!(Number.isInteger(rank) && rank >= 1))
    throw new RangeError(`the rank to cut to must be a whole number ≥ 1 (got ${rank})`);
  const { config, weights } = adapterFiles(files, name, { strict: false });
  const st = readSafetensors(weights, WEIGHTS);
  const tensors: TensorToWrite[] = [];
  for (const [key, entry] of st.header.tensors) {
    const role = tensorRole(key);
    if (role.kind === 'vector')
      throw new FormatError(
        name,
        `holds ${role.vector.description} (${key}), which were fitted to the full-rank update: only plain LoRA adapters can be cut`,
      );
    const data = st.read(key);
    const [rows, cols] = entry.shape;
    if (role.kind === 'factor' && entry.shape.length === 2) {
      if (role.which === 'A' && rows > rank) {
        tensors.push({ name: key, shape: [rank, cols], data: data.slice(0, rank * cols) });
        continue;
      }
      if (role.which === 'B' && cols > rank) {
        const cut = new Float32Array(rows * rank);
        for (let o = 0; o < rows; o++) cut.set(data.subarray(o * cols, o * cols + rank), o * rank);
        tensors.push({ name: key, shape: [rows, rank], data: cut });
        continue;
      }
    }
    tensors.push({ name: key, shape: entry.shape, data });
  }
  const raw: Record<string, unknown> = { ...config.raw, r: Math.min(config.r, rank) };
  if (Object.keys(config.rankPattern).length > 0)
    raw.rank_pattern = Object.fromEntries(
      Object.entries(config.rankPattern).map(([k, v]) => [k, Math.min(v, rank)]),
    );
  return new Map([
    [CONFIG, new TextEncoder().encode(JSON.stringify(raw, null, 2))],
    [WEIGHTS, writeSafetensors(tensors, st.header.metadata)],
  ]);
}
