#!/usr/bin/env node
// Runs the compiled tests (dist-test/test/*.test.js) with `node --test`.
// `unit` or `integration` as the argument selects one group; none runs both.
// Node 20 has no global WebSocket without --experimental-websocket: the
// integration tests use Node's own (undici) WebSocket, so add the flag when
// the running Node needs it.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const group = process.argv[2];
const dir = join("dist-test", "test");
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".test.js"))
  .filter((f) => (group === "integration" ? f.startsWith("integration") : group === "unit" ? !f.startsWith("integration") : true))
  .sort()
  .map((f) => join(dir, f));
const flags = typeof globalThis.WebSocket === "function" ? [] : ["--experimental-websocket"];
const result = spawnSync(process.execPath, [...flags, "--test", "--test-reporter=spec", ...files], { stdio: "inherit" });
process.exit(result.status ?? 1);
