/**
 * `npm start`: the bundled tiny Llama (stories260K) end to end. Compresses the BF16 model
 * with DFloat11, verifies it, then generates the same tokens with (1) BF16 weights,
 * (2) weights decoded block by block from the compressed file and (3) (2) plus each
 * quantized KV cache, and prints one report. `npm start -- --help` lists the options.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { InferzipError } from '../lib/index.js';
import { kvChartSvg } from './demo/chart.js';
import { USAGE, UsageError, parseOptions } from './demo/options.js';
import { formatMarkdown, formatText } from './demo/report.js';
import { runDemo } from './demo/run.js';

async function main(): Promise<number> {
  let options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (options === 'help') {
    console.log(USAGE);
    return 0;
  }
  let report;
  try {
    report = await runDemo(options, options.json ? undefined : (m) => process.stderr.write(`${m}\n`));
  } catch (err) {
    // Typed library errors (no CUDA device, unreadable fixture...) read best as one line.
    if (!(err instanceof InferzipError)) throw err;
    console.error(`demo failed: ${err.code}: ${err.message}`);
    return 1;
  }
  if (options.reportDir) {
    mkdirSync(options.reportDir, { recursive: true });
    writeFileSync(join(options.reportDir, 'demo-kv.svg'), kvChartSvg(report));
    writeFileSync(join(options.reportDir, 'demo-report.md'), formatMarkdown(report, 'demo-kv.svg'));
  }
  console.log(options.json ? JSON.stringify(report, null, 2) : formatText(report));
  // A failed run or a lost bit is a failure of the demo, not a footnote.
  return report.bitIdentical && report.runs.every((r) => r.status === 'ok') ? 0 : 1;
}

process.exitCode = await main();
