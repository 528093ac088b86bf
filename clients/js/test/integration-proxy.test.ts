/**
 * The gateway's connect proxy (docs/proxy.md) as the client sees it: a
 * backend that refuses a connection reaches the client as an error it can
 * show (close 1008 with the backend's message, no reconnect), and one that
 * accepts gives the user it chose.
 *
 * Runs the real `switchboard` binary ($SWITCHBOARD_BIN, or
 * ../../target/release/switchboard) with `[proxy] connect` pointed at a
 * backend served here with node:http. Missing binary: skipped locally
 * (loudly), a failure under CI.
 */

import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { ConnectionClosedError, SwitchboardClient, type WebSocketConstructor } from "../src/index.js";

const CI = process.env["CI"] !== undefined && process.env["CI"] !== "" && process.env["CI"] !== "false";

function packageDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("package.json not found");
    dir = parent;
  }
  return dir;
}

const BIN = process.env["SWITCHBOARD_BIN"] ?? resolve(packageDir(), "../../target/release/switchboard");

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitForPort(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((r) => {
      const socket = createConnection({ host: "127.0.0.1", port });
      socket.once("connect", () => {
        socket.destroy();
        r(true);
      });
      socket.once("error", () => r(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`switchboard did not listen on ${port}`);
}

/** The backend: POST /connect refuses the token `banned`, accepts any other as that user. */
async function startBackend(): Promise<{ server: Server; port: number }> {
  const server = createHttpServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (body += chunk));
    req.on("end", () => {
      const call = JSON.parse(body) as { token: string | null };
      const answer =
        call.token === "banned"
          ? { error: { message: "Your account is suspended" } }
          : { result: { user: call.token } };
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return { server, port };
}

describe("integration: a connect-proxy refusal reaches the client", { timeout: 60_000 }, () => {
  let gateway: ChildProcess | null = null;
  let backend: Server | null = null;
  let port = 0;
  let skip: string | null = null;
  const output: string[] = [];

  before(async () => {
    if (!existsSync(BIN)) {
      const message = `switchboard binary not found at ${BIN} (cargo build --release -p switchboard-gateway, or set SWITCHBOARD_BIN)`;
      if (CI) throw new Error(message);
      skip = message;
      process.stderr.write(`\n!! SKIPPED connect-proxy integration test: ${message}\n\n`);
      return;
    }
    const started = await startBackend();
    backend = started.server;
    port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), "switchboard-proxy-"));
    const config = join(dir, "switchboard.toml");
    writeFileSync(
      config,
      [
        "[security]",
        'token_sources = ["protocol:bearer."]',
        "",
        "[proxy]",
        `connect = { url = "http://127.0.0.1:${started.port}/connect", timeout = "2s" }`,
        "",
      ].join("\n"),
    );
    gateway = spawn(BIN, ["serve", "--listen", `127.0.0.1:${port}`, "--config", config], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    gateway.stdout?.on("data", (c: Buffer) => output.push(c.toString()));
    gateway.stderr?.on("data", (c: Buffer) => output.push(c.toString()));
    await waitForPort(port);
  });

  after(async () => {
    gateway?.kill("SIGKILL");
    await new Promise<void>((r) => (backend === null ? r() : backend.close(() => r())));
  });

  function client(token: string): SwitchboardClient {
    const Native = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    assert.ok(Native !== undefined, "no global WebSocket");
    return new SwitchboardClient({
      url: `ws://127.0.0.1:${port}/ws`,
      WebSocket: Native,
      protocols: ["switchboard.v1", `bearer.${token}`],
      reconnect: { initialDelay: 100, maxDelay: 500 },
    });
  }

  test("a refused connection fails with the backend's message and does not reconnect", async (t) => {
    if (skip !== null) return t.skip(skip);
    const c = client("banned");
    const errors: unknown[] = [];
    c.on("error", (e) => errors.push(e));
    await assert.rejects(c.connect(), (error: unknown) => {
      assert.ok(error instanceof ConnectionClosedError, `${String(error)}\n${output.join("")}`);
      assert.equal(error.code, 1008);
      assert.equal(error.reason, "Your account is suspended");
      assert.match(error.message, /Your account is suspended/);
      return true;
    });
    assert.equal(c.state, "error");
    assert.equal(errors.length, 1);
    await c.disconnect();
  });

  test("an accepted connection is the user the backend chose", async (t) => {
    if (skip !== null) return t.skip(skip);
    const c = client("alice");
    const acks: { user_id: string | null }[] = [];
    c.on("connected", (ack) => acks.push(ack));
    await c.connect();
    assert.equal(acks[0]?.user_id, "alice");
    await c.disconnect();
  });
});
