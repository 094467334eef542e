/** Command-line options of the end-to-end demo (`npm start -- --help`). */
import { KV_SCHEMES, type KVScheme } from '../../lib/index.js';

export interface DemoOptions {
  /** Tokens generated per run (1..512, the model's context). */
  tokens: number;
  /** KV schemes run in part (3), each at its default bits. */
  kv: KVScheme[];
  /** Where compressed weights and quantized KV caches live. */
  device: 'auto' | 'cpu' | 'cuda';
  /** Print the report as JSON instead of tables. */
  json: boolean;
  /** Write demo-report.md and demo-kv.svg into this folder. */
  reportDir?: string;
  /** Newest tokens each quantized cache keeps in f32 (a multiple of 32). */
  residual: number;
}

export const DEFAULT_OPTIONS: DemoOptions = { tokens: 256, kv: [...KV_SCHEMES], device: 'auto', json: false, residual: 128 };

export const USAGE = `usage: npm start -- [options]
  --tokens N      tokens generated per run, 1..512 (default 256)
  --kv LIST       KV schemes for part (3): comma list of ${KV_SCHEMES.join(', ')}, or 'all' / 'none' (default all)
  --device D      auto | cpu | cuda: where compressed weights and KV caches live (default auto)
  --residual R    newest tokens a quantized cache keeps in f32, a multiple of 32 (default 128, the library's)
  --json          print the report as JSON
  --report DIR    also write DIR/demo-report.md and DIR/demo-kv.svg
  --help          this text`;

export class UsageError extends Error {}

function intArg(name: string, raw: string | undefined, lo: number, hi: number): number {
  const v = Number(raw);
  if (raw === undefined || !/^\d+$/.test(raw) || v < lo || v > hi) throw new UsageError(`${name} needs an integer in [${lo}, ${hi}], got '${raw ?? ''}'`);
  return v;
}

/** Parses argv (without node and the script); throws UsageError with what was wrong. */
export function parseOptions(argv: readonly string[]): DemoOptions | 'help' {
  const o: DemoOptions = { ...DEFAULT_OPTIONS, kv: [...DEFAULT_OPTIONS.kv] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case '--help':
      case '-h':
        return 'help';
      case '--json':
        o.json = true;
        break;
      case '--tokens':
        o.tokens = intArg('--tokens', value(), 1, 512);
        break;
      case '--residual':
        o.residual = intArg('--residual', value(), 0, 512);
        if (o.residual % 32 !== 0) throw new UsageError(`--residual must be a multiple of 32 (the group size), got ${o.residual}`);
        break;
      case '--device': {
        const d = value();
        if (d !== 'auto' && d !== 'cpu' && d !== 'cuda') throw new UsageError(`--device must be auto, cpu or cuda, got '${d ?? ''}'`);
        o.device = d;
        break;
      }
      case '--kv': {
        const list = value();
        if (list === undefined || list === '') throw new UsageError(`--kv needs a list: ${KV_SCHEMES.join(',')}, all or none`);
        if (list === 'all') o.kv = [...KV_SCHEMES];
        else if (list === 'none') o.kv = [];
        else {
          const names = list.split(',').map((s) => s.trim());
          const bad = names.filter((n) => !(KV_SCHEMES as readonly string[]).includes(n));
          if (bad.length) throw new UsageError(`unknown KV scheme ${bad.map((b) => `'${b}'`).join(', ')}: use ${KV_SCHEMES.join(', ')}, all or none`);
          o.kv = [...new Set(names)] as KVScheme[];
        }
        break;
      }
      case '--report': {
        const dir = value();
        if (!dir) throw new UsageError('--report needs a folder');
        o.reportDir = dir;
        break;
      }
      default:
        throw new UsageError(`unknown option '${arg}'`);
    }
  }
  return o;
}
