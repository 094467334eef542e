/**
 * Decides how a model's tensors are stored: which BF16 matrices share a compressed
 * unit (one per transformer block, one per large standalone matrix) and which stay
 * verbatim. Works from the headers alone, so planning never reads weights.
 */
import { InferzipError } from '../errors.js';
import type { SafetensorsEntry } from '../safetensors/index.js';

/** The six DFloat11 buffers of a unit, stored as `<prefix>.<buffer>`. */
export { UNIT_BUFFERS, type UnitBufferName } from '../df11/unit-buffers.js';
import { UNIT_BUFFERS } from '../df11/unit-buffers.js';

/**
 * A standalone BF16 matrix (outside any block) gets its own unit from this many elements
 * on (32 KiB of BF16). Below it the fixed cost of a unit (decode tables, 1-4 KiB) would eat
 * most of the ~30% saving, so smaller matrices are stored verbatim.
 */
export const DEFAULT_MIN_STANDALONE_ELEMENTS = 16_384;

/** Matches the prefix of a transformer block: `model.layers.3`, `transformer.h.3`, `blocks.3`... */
export const DEFAULT_BLOCK_PATTERN = /^(.*?(?:^|\.)(?:layers|layer|h|blocks|block)\.(\d+))\./;

/** Order of a Llama-family block's matrices inside its unit (the DFloat11 reference order). */
const LLAMA_ORDER = [
  'self_attn.q_proj.weight',
  'self_attn.k_proj.weight',
  'self_attn.v_proj.weight',
  'self_attn.o_proj.weight',
  'mlp.gate_proj.weight',
  'mlp.up_proj.weight',
  'mlp.down_proj.weight',
];

export interface PlannedUnit {
  /** Name prefix of the unit's buffers (`model.layers.3`, `model.embed_tokens`). */
  readonly prefix: string;
  readonly kind: 'block' | 'matrix';
  /** Block index for kind 'block'. */
  readonly block?: number;
  /** Original tensor names, in concatenation order. */
  readonly members: readonly string[];
  /** Total BF16 elements. */
  readonly elements: number;
}

export interface ModelPlan {
  readonly units: readonly PlannedUnit[];
  /** Original tensors stored unchanged (norms, biases, F32, small matrices...). */
  readonly verbatim: readonly string[];
}

export interface PlanOptions {
  minStandaloneElements?: number;
  blockPattern?: RegExp;
}

function memberRank(prefix: string, name: string): number {
  const i = LLAMA_ORDER.indexOf(name.slice(prefix.length + 1));
  return i < 0 ? LLAMA_ORDER.length : i;
}

/** Standalone unit prefix: the module path (drop a trailing `.weight`), as DFloat11 names it. */
function standalonePrefix(name: string): string {
  return name.endsWith('.weight') ? name.slice(0, -'.weight'.length) : name;
}

/** Groups tensors into units. `tensors` is in file order (shard order for sharded models). */
export function planModel(tensors: readonly SafetensorsEntry[], options: PlanOptions = {}): ModelPlan {
  const minStandalone = options.minStandaloneElements ?? DEFAULT_MIN_STANDALONE_ELEMENTS;
  const pattern = options.blockPattern ?? DEFAULT_BLOCK_PATTERN;
  const blocks = new Map<string, { block: number; members: SafetensorsEntry[] }>();
  const standalone: SafetensorsEntry[] = [];
  const verbatim: string[] = [];
  for (const t of tensors) {
    const isMatrix = t.dtype === 'BF16' && t.shape.length >= 2 && t.byteLength > 0;
    const m = isMatrix ? pattern.exec(t.name) : null;
    if (m && m[1]) {
      const prefix = m[1];
      let b = blocks.get(prefix);
      if (!b) blocks.set(prefix, (b = { block: Number(m[2] ?? blocks.size), members: [] }));
      b.members.push(t);
    } else if (isMatrix && t.byteLength / 2 >= minStandalone) {
      standalone.push(t);
    } else {
      verbatim.push(t.name);
    }
  }
  const units: PlannedUnit[] = [];
  for (const [prefix, b] of blocks) {
    const members = [...b.members].sort((x, y) => memberRank(prefix, x.name) - memberRank(prefix, y.name));
    units.push({
      prefix,
      kind: 'block',
      block: b.block,
      members: members.map((e) => e.name),
      elements: members.reduce((s, e) => s + e.byteLength / 2, 0),
    });
  }
  for (const t of standalone)
    units.push({ prefix: standalonePrefix(t.name), kind: 'matrix', members: [t.name], elements: t.byteLength / 2 });
  checkNames(tensors, units);
  return { units, verbatim };
}

/** A unit's buffer names must not collide with a tensor of the model or with another unit. */
function checkNames(tensors: readonly SafetensorsEntry[], units: readonly PlannedUnit[]): void {
  const taken = new Set(tensors.map((t) => t.name));
  for (const u of units) {
    for (const b of UNIT_BUFFERS) {
      const name = `${u.prefix}.${b}`;
      if (taken.has(name)) {
        throw new InferzipError(
          'INVALID_ARGUMENT',
          `cannot compress: unit '${u.prefix}' would store '${name}', which clashes with a tensor of the model or another unit (is the input already a DFloat11 model?)`,
        );
      }
      taken.add(name);
    }
  }
}
