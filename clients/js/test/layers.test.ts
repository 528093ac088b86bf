/**
 * The modules of src/ import each other in one direction: `client.ts`
 * composes the parts (lifecycle, auth, heartbeat, requests, subscriptions)
 * and only the entry point imports it; no import cycle anywhere. Reads the
 * sources' relative imports (type-only ones too).
 */

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

function sources(): Map<string, string[]> {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!readdirSync(dir).includes("package.json")) dir = dirname(dir);
  const src = join(dir, "src");
  const graph = new Map<string, string[]>();
  for (const file of readdirSync(src).filter((f) => f.endsWith(".ts"))) {
    const code = readFileSync(join(src, file), "utf8");
    const imports = [...code.matchAll(/\bfrom\s+"\.\/([^"]+)\.js"/g)].map((m) => `${m[1] ?? ""}.ts`);
    graph.set(file, imports);
  }
  return graph;
}

test("only the entry point imports client.ts", () => {
  const graph = sources();
  assert.ok(graph.has("client.ts") && graph.has("index.ts"));
  const importers = [...graph].filter(([, imports]) => imports.includes("client.ts")).map(([file]) => file);
  assert.deepEqual(importers, ["index.ts"]);
});

test("src/ has no import cycle", () => {
  const graph = sources();
  const done = new Set<string>();
  const visit = (file: string, path: string[]): void => {
    if (path.includes(file)) assert.fail(`import cycle: ${[...path.slice(path.indexOf(file)), file].join(" → ")}`);
    if (done.has(file)) return;
    for (const next of graph.get(file) ?? []) {
      assert.ok(graph.has(next), `${file} imports ./${next}, which is not in src/`);
      visit(next, [...path, file]);
    }
    done.add(file);
  };
  for (const file of graph.keys()) visit(file, []);
});
