/**
 * The gateway embeds a bundle of this client
 * (crates/switchboard-gateway/assets/switchboard-client.js, made by
 * `npm run bundle`) and its demo page imports it. This test bundles src/
 * again into a temp file and fails when the committed copy differs: run
 * `npm run bundle` and commit the file.
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

/** clients/js, found from this file (dist-test/test/ after the build). */
function packageDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("package.json not found");
    dir = parent;
  }
  return dir;
}

const PACKAGE = packageDir();
const ASSET = resolve(PACKAGE, "../../crates/switchboard-gateway/assets/switchboard-client.js");

/** Runs scripts/bundle.mjs into a temp file and returns the text. */
function freshBundle(): string {
  const dir = mkdtempSync(join(tmpdir(), "switchboard-bundle-"));
  try {
    const out = join(dir, "switchboard-client.js");
    const run = spawnSync(process.execPath, ["scripts/bundle.mjs", "--outfile", out], {
      cwd: PACKAGE,
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(run.status, 0, `scripts/bundle.mjs failed (is esbuild installed? npm ci):\n${run.stderr}${run.stdout}`);
    return readFileSync(out, "utf8");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("the gateway's embedded client bundle is up to date with src/ (else: npm run bundle)", () => {
  assert.ok(existsSync(ASSET), `${ASSET} is missing: run \`npm run bundle\` in clients/js and commit it`);
  const committed = readFileSync(ASSET, "utf8");
  const fresh = freshBundle();
  // Bundling twice gives the same bytes, or this check could never pass.
  assert.equal(freshBundle(), fresh, "esbuild's output is not deterministic");
  if (committed !== fresh) {
    let at = 0;
    while (at < committed.length && committed[at] === fresh[at]) at++;
    assert.fail(
      `${ASSET} is stale (${committed.length} bytes committed, ${fresh.length} bundled; first difference at ` +
        `character ${at}): run \`npm run bundle\` in clients/js and commit the file`,
    );
  }
  // It is one self-contained ES module: no imports left, the client exported.
  assert.match(fresh, /^\/\/ GENERATED FILE: do not edit\./);
  assert.doesNotMatch(fresh, /^\s*import[\s{*]/m, "the bundle must not import anything");
  assert.match(fresh, /export\s*\{[^}]*\bSwitchboardClient\b/, "the bundle exports SwitchboardClient");
});
