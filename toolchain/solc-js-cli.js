#!/usr/bin/env node
// Answers the two calls py-solc-x makes of a native solc (`--version` and
// `--standard-json` on stdin) with the official compiler from npm (solc-js),
// because no native solc can be fetched here and py-solc-x's installer needs the internet.
'use strict';
const fs = require('fs');
const path = require('path');

const projectRoot = path.resolve(__dirname, '..');
const solc = require(path.join(projectRoot, 'node_modules', 'solc'));

const args = process.argv.slice(2);

if (args.includes('--version')) {
  // py-solc-x parses "Version: x.y.z+commit.<hash>"; solc-js adds a platform suffix we drop.
  const full = solc.version().replace(/\.Emscripten\.clang$/, '');
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${full}.Linux.g++\n`);
  process.exitCode = 0;
  return;
}

if (!args.includes('--standard-json')) {
  process.stderr.write('solc-js-cli: only --version and --standard-json are supported\n');
  process.exitCode = 2;
  return;
}

const allowed = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--allow-paths' && args[i + 1]) {
    for (const p of args[i + 1].split(',')) if (p) allowed.push(path.resolve(p));
  }
}
allowed.push(projectRoot);

function findImports(importPath) {
  const candidates = path.isAbsolute(importPath)
    ? [importPath]
    : [path.resolve(process.cwd(), importPath), ...allowed.map((base) => path.resolve(base, importPath))];
  for (const candidate of candidates) {
    if (!allowed.some((base) => candidate.startsWith(base))) continue;
    if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, 'utf8') };
  }
  return { error: `File not found inside allowed paths: ${importPath}` };
}

const input = fs.readFileSync(0, 'utf8');
const output = solc.compile(input, { import: findImports });
// Writing then letting node exit by itself: process.exit() here would truncate stdout at 64 KiB.
process.stdout.write(output);
process.exitCode = 0;
