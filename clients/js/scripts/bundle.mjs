#!/usr/bin/env node
// Bundles src/index.ts into ONE self-contained, minified ESM file: the copy of
// the client the gateway embeds and serves at /switchboard-client.js (its demo
// page imports it). Run `npm run bundle` after changing src/ and commit the
// result; `npm test` (test/bundle.test.ts) fails while the committed file is
// stale.
//
//   node scripts/bundle.mjs                   → ../../crates/switchboard-gateway/assets/switchboard-client.js
//   node scripts/bundle.mjs --outfile <path>  → <path> (the test bundles into a temp file)
//
// The output depends only on src/ and the pinned esbuild version: no
// timestamps, no absolute paths, no source map, LF line endings.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build, version as esbuildVersion } from "esbuild";

const PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const ASSET = resolve(PACKAGE_DIR, "../../crates/switchboard-gateway/assets/switchboard-client.js");

/** The bundle's text (what `npm run bundle` writes). */
export async function bundle() {
  const { name, version } = JSON.parse(readFileSync(join(PACKAGE_DIR, "package.json"), "utf8"));
  const banner = [
    `// GENERATED FILE: do not edit. ${name} ${version} (clients/js/src), bundled by esbuild ${esbuildVersion}.`,
    "// Regenerate with `cd clients/js && npm ci && npm run bundle`, then commit it;",
    "// clients/js's `npm test` fails while this file differs from a fresh bundle.",
    "// The switchboard gateway embeds it and serves it at /switchboard-client.js.",
  ].join("\n");
  const result = await build({
    absWorkingDir: PACKAGE_DIR,
    entryPoints: ["src/index.ts"],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    legalComments: "none",
    charset: "ascii",
    sourcemap: false,
    banner: { js: banner },
    write: false,
    logLevel: "warning",
  });
  const [file] = result.outputFiles;
  if (result.outputFiles.length !== 1 || file === undefined) {
    throw new Error(`esbuild produced ${result.outputFiles.length} files, expected 1`);
  }
  const text = file.text.replace(/\r\n/g, "\n");
  return text.endsWith("\n") ? text : `${text}\n`;
}

async function main() {
  const args = process.argv.slice(2);
  let out = ASSET;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--outfile" && args[i + 1] !== undefined) out = resolve(args[++i]);
    else throw new Error(`usage: node scripts/bundle.mjs [--outfile <path>] (got ${args[i]})`);
  }
  const text = await bundle();
  writeFileSync(out, text);
  process.stdout.write(`wrote ${out} (${Buffer.byteLength(text)} bytes)\n`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
