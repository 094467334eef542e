// `npm start`: the bundled tiny Llama (stories260K) compressed losslessly with DFloat11,
// run on weights streamed block by block from the compressed file, and on quantized KV
// caches; one report table. Options: see examples/demo/args.ts (`npm start -- --help`).
import { writeFileSync } from 'node:fs';
import { basename } from 'node:path';

import { InferzipError } from '../lib/index.js';
import { USAGE, UsageError, parseArgs } from './demo/args.js';
import { formatMarkdown, formatSvg, formatText } from './demo/report.js';
import { runDemo } from './demo/run.js';

try {
  const options = parseArgs(process.argv.slice(2));
  const report = await runDemo(options, options.json ? undefined : (line) => process.stderr.write(`${line}\n`));
  if (options.json) console.log(JSON.stringify(report, null, 2));
  else console.log(`\n${formatText(report)}`);
  if (options.svg) writeFileSync(options.svg, formatSvg(report));
  if (options.markdown) writeFileSync(options.markdown, formatMarkdown(report, options.svg ? basename(options.svg) : undefined));
  if (!report.verify.ok || !report.streamed.bitIdentical) process.exitCode = 1;
} catch (err) {
  if (err instanceof UsageError) {
    if (err.message) console.error(`error: ${err.message}`);
    console.error(USAGE);
    process.exitCode = 2;
  } else if (err instanceof InferzipError) {
    console.error(`error (${err.code}): ${err.message}`);
    process.exitCode = 1;
  } else {
    throw err;
  }
}
