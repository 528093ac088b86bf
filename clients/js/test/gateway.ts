/**
 * The real gateway for the integration tests: the `switchboard` binary
 * started on a free port (`switchboard serve --listen 127.0.0.1:PORT`, with a
 * configuration file when a test needs one), probed, published to over its
 * HTTP API, killed and restarted.
 *
 * The binary: $SWITCHBOARD_BIN, or ../../target/release/switchboard (build it
 * with `cargo build --release -p switchboard-gateway`).
 */

import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import type { WebSocketConstructor, WebSocketLike } from "../src/index.js";

export const CI = process.env["CI"] !== undefined && process.env["CI"] !== "" && process.env["CI"] !== "false";

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

export const BIN = process.env["SWITCHBOARD_BIN"] ?? resolve(packageDir(), "../../target/release/switchboard");

export function loud(message: string): void {
  const bar = "!".repeat(78);
  process.stderr.write(`\n${bar}\n!! ${message.split("\n").join("\n!! ")}\n${bar}\n\n`);
}

export async function freePort(): Promise<number> {
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

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves once something accepts TCP connections on `port`. */
export async function waitForPort(port: number, server: Gateway, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (server.exited !== null) throw new Error(`switchboard exited (${server.exited}) before listening:\n${server.log()}`);
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
  throw new Error(`switchboard did not listen on ${port} within ${timeoutMs} ms:\n${server.log()}`);
}

/** How to start the gateway besides its port. */
export interface GatewayOptions {
  /** A configuration file's text (TOML), written to a temporary file and passed with `--config`. */
  readonly config?: string;
}

/** The gateway process. */
export class Gateway {
  exited: string | null = null;
  readonly #output: string[] = [];
  readonly #child: ChildProcess;

  private constructor(
    readonly port: number,
    options: GatewayOptions,
  ) {
    const args = ["serve", "--listen", `127.0.0.1:${port}`];
    if (options.config !== undefined) {
      const file = join(mkdtempSync(join(tmpdir(), "switchboard-js-")), "switchboard.toml");
      writeFileSync(file, options.config);
      args.push("--config", file);
    }
    this.#child = spawn(BIN, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, RUST_LOG: process.env["RUST_LOG"] ?? "info" },
    });
    const keep = (chunk: Buffer): void => {
      this.#output.push(chunk.toString());
      if (this.#output.length > 200) this.#output.shift();
    };
    this.#child.stdout?.on("data", keep);
    this.#child.stderr?.on("data", keep);
    this.#child.once("exit", (code, signal) => {
      this.exited = signal ?? String(code);
    });
  }

  static async start(port: number, options: GatewayOptions = {}): Promise<Gateway> {
    // Right after a kill the port may still be held for a moment: retry.
    for (let attempt = 0; ; attempt++) {
      const gateway = new Gateway(port, options);
      try {
        await waitForPort(port, gateway);
        return gateway;
      } catch (error) {
        await gateway.kill();
        if (attempt >= 4) throw error;
        await sleep(200);
      }
    }
  }

  log(): string {
    return this.#output.join("");
  }

  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    if (this.exited !== null) return;
    const exited = new Promise<void>((r) => this.#child.once("exit", () => r()));
    this.#child.kill(signal);
    await exited;
  }
}

/**
 * An HS256 JWT for `user` signed with `secret` (the gateway's
 * `[security.jwt] keys = [{ algorithm = "HS256", secret = … }]`), valid for an hour.
 */
export function hs256Token(secret: string, user: string): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString("base64url");
  const head = `${part({ alg: "HS256", typ: "JWT" })}.${part({ sub: user, exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  return `${head}.${createHmac("sha256", secret).update(head).digest("base64url")}`;
}

/** The HTTP status /ws answers a WebSocket handshake with (101 when served). */
export async function probe(port: number): Promise<{ status: number; body: string; protocol: string | undefined }> {
  return new Promise((resolveProbe, reject) => {
    const req = httpRequest({
      host: "127.0.0.1",
      port,
      path: "/ws",
      headers: {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": randomBytes(16).toString("base64"),
        "Sec-WebSocket-Protocol": "switchboard.v1",
      },
    });
    req.once("upgrade", (res, socket) => {
      const protocol = res.headers["sec-websocket-protocol"];
      socket.destroy();
      resolveProbe({ status: 101, body: "", protocol: Array.isArray(protocol) ? protocol[0] : protocol });
    });
    req.once("response", (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolveProbe({ status: res.statusCode ?? 0, body, protocol: undefined }));
    });
    req.once("error", reject);
    req.setTimeout(5_000, () => req.destroy(new Error("probe timed out")));
    req.end();
  });
}

/** One request to the gateway's HTTP API: the status and the body (parsed when it is JSON). */
export async function api(
  port: number,
  method: string,
  path: string,
  json?: unknown,
): Promise<{ status: number; text: string; body: unknown }> {
  const payload = json === undefined ? undefined : JSON.stringify(json);
  const headers: Record<string, string | number> =
    payload === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) };
  const { status, text } = await new Promise<{ status: number; text: string }>((resolveReply, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, path, method, headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => resolveReply({ status: res.statusCode ?? 0, text }));
    });
    req.once("error", reject);
    req.end(payload);
  });
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status, text, body };
}

/** `POST /api/v1/publish`'s answer; `offset` and `epoch` on a channel with history. */
export interface Published {
  readonly delivered?: number;
  readonly offset?: number;
  readonly epoch?: string;
  readonly duplicate?: boolean;
}

/**
 * Publishes `message` to `room` through the gateway's HTTP API
 * (`POST /api/v1/publish`): its answer, or "absent" when the server has no
 * such route (404).
 */
export async function httpPublish(port: number, room: string, message: Record<string, unknown>): Promise<Published | "absent"> {
  const { status, text, body } = await api(port, "POST", "/api/v1/publish", { target: { room }, message });
  if (status === 404) return "absent";
  assert.equal(status, 200, `POST /api/v1/publish answered ${status}: ${text}`);
  return (body ?? {}) as Published;
}

/**
 * Closes one connection from the server side (`DELETE
 * /api/v1/connections/{id}?code=`), by the client's `connectionId` (its
 * address, `instance/42`, or the bare id).
 */
export async function kick(port: number, connectionId: string, code: number): Promise<void> {
  const id = connectionId.split("/").pop() ?? connectionId;
  const { status, text } = await api(port, "DELETE", `/api/v1/connections/${encodeURIComponent(id)}?code=${code}`);
  assert.equal(status, 200, `DELETE /api/v1/connections/${id} answered ${status}: ${text}`);
}

/** Node's WebSocket, recording the sockets it makes (to read the negotiated subprotocol). */
export function recordingWebSocket(): { ctor: WebSocketConstructor; sockets: WebSocketLike[] } {
  const Native = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  assert.ok(Native !== undefined, "no global WebSocket: run on Node 22+ or with --experimental-websocket");
  const sockets: WebSocketLike[] = [];
  const ctor = function (url: string, protocols?: string | string[]): WebSocketLike {
    const socket = new Native(url, protocols);
    sockets.push(socket);
    return socket;
  } as unknown as WebSocketConstructor;
  return { ctor, sockets };
}

/** Waits for `predicate` to hold, polling. */
export async function until(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

