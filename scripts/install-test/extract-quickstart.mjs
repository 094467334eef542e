// Writes the README's quick start (the first ts block under "## Quick start") to a file, to run
// it in the scratch app exactly as a user would paste it. Usage: node extract-quickstart.mjs README OUT
import { readFileSync, writeFileSync } from 'node:fs';

const [readme, out] = process.argv.slice(2);
const m = /^## Quick start\n[\s\S]*?```ts\n([\s\S]*?)```/m.exec(readFileSync(readme, 'utf8'));
if (!m) {
  console.error(`no "## Quick start" ts block in ${readme}`);
  process.exit(1);
}
writeFileSync(out, m[1]);
