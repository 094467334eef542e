// Lists the .cpp files under the given folders for binding.gyp (gyp has no glob).
const fs = require('node:fs');
const path = require('node:path');

function walk(dir, out) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(p, out);
    else if (entry.name.endsWith('.cpp')) out.push(p.split(path.sep).join('/'));
  }
  return out;
}

const files = process.argv.slice(2).flatMap((d) => walk(d, []));
process.stdout.write(files.sort().join('\n'));
