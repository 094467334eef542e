/**
 * Time-bounded run of the JS-level mutation fuzzer (test/fuzz/mutation.ts), for CI:
 *   node --import tsx scripts/mutation-fuzz.ts [seconds=60] [seed]
 * Prints the counts; exits 1 on any silent difference (different output without a typed error).
 */
import { createFuzzer } from '../test/fuzz/mutation.js';

const seconds = Number(process.argv[2] ?? 60);
const seed = Number(process.argv[3] ?? Date.now() % 2 ** 31);
const fuzzer = await createFuzzer(seed);
try {
  const c = await fuzzer.run(Number.MAX_SAFE_INTEGER, Date.now() + seconds * 1000);
  console.log(
    `mutation fuzzer (seed ${seed}, ${seconds} s): ${c.cases} cases, ${c.checks} entry-point checks, ${c.typedErrors} typed errors, ${c.identical} identical outputs, ${c.silentDifferences} silent differences`,
  );
  console.log(`by mutation: ${JSON.stringify(c.byMutation)}`);
  for (const f of c.failures) console.error(`SILENT: ${f}`);
  if (c.silentDifferences > 0) process.exitCode = 1;
} finally {
  fuzzer.dispose();
}
