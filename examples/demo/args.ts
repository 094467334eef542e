/** Command-line options of `npm start` (examples/demo.ts). */
import { KV_SCHEMES, type KVScheme } from '../../lib/index.js';

export interface DemoOptions {
  /** Tokens generated per run (1..511: the model's context is 512). */
  tokens: number;
  /** KV schemes compared in run (3); empty: none. */
  kv: KVScheme[];
  /**
   * R: newest tokens each quantized cache keeps in f32 (a multiple of 32, the group size).
   * The library default is 128; the demo uses 32 so that on a 256-token run most tokens are
   * really quantized (with R = 128 and 32 tokens nothing would be).
   */
  residual: number;
  /** Where compressed weights and the quantized KV caches live. */
  device: 'cpu' | 'cuda' | 'auto';
  /** Print the report as JSON instead of a table. */
  json: boolean;
  /** Also write the report as Markdown to this path. */
  markdown?: string;
  /** Also write the KV trade-off chart (SVG) to this path. */
  svg?: string;
}

export const USAGE = `usage: npm start -- [--tokens N] [--kv kivi,vidkv,zipcache,fp8|none] [--residual R] [--device cpu|cuda|auto] [--json]
                     [--markdown PATH] [--svg PATH]
  --tokens N     tokens generated per run, 1..511 (default 256)
  --kv LIST      KV schemes for run (3), comma-separated, or 'none' (default: all)
  --residual R   newest tokens each KV cache keeps in f32, a multiple of 32 (default 32)
  --device D     device of the compressed weights and KV caches (default auto)
  --json         print the report as JSON
  --markdown P   also write the report as Markdown to P
  --svg P        also write the KV bytes-per-token vs agreement chart to P`;

export class UsageError extends Error {}

export function parseArgs(argv: readonly string[]): DemoOptions {
  const o: DemoOptions = { tokens: 256, kv: [...KV_SCHEMES], residual: 32, device: 'auto', json: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] =
      arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--tokens': {
        const v = value();
        const n = Number(v);
        if (!/^\d+$/.test(v) || n < 1 || n > 511)
          throw new UsageError(`--tokens must be an integer in 1..511 (the model's context is 512), got '${v}'`);
        o.tokens = n;
        break;
      }
      case '--kv': {
        const v = value();
        if (v === 'none') {
          o.kv = [];
          break;
        }
        const names = v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        for (const s of names) {
          if (!(KV_SCHEMES as readonly string[]).includes(s))
            throw new UsageError(`--kv: unknown scheme '${s}' (known: ${KV_SCHEMES.join(', ')}, or 'none')`);
        }
        o.kv = [...new Set(names)] as KVScheme[];
        break;
      }
      case '--residual': {
        const v = value();
        const n = Number(v);
        if (!/^\d+$/.test(v) || n % 32 !== 0 || n > 512)
          throw new UsageError(`--residual must be a multiple of 32 (the KV group size) in 0..512, got '${v}'`);
        o.residual = n;
        break;
      }
      case '--device': {
        const v = value();
        if (v !== 'cpu' && v !== 'cuda' && v !== 'auto') throw new UsageError(`--device must be cpu, cuda or auto, got '${v}'`);
        o.device = v;
        break;
      }
      case '--json':
        if (inline !== undefined) throw new UsageError('--json takes no value');
        o.json = true;
        break;
      case '--markdown':
        o.markdown = value();
        break;
      case '--svg':
        o.svg = value();
        break;
      case '--help':
      case '-h':
        throw new UsageError('');
      default:
        throw new UsageError(`unknown option '${arg}'`);
    }
  }
  return o;
}
