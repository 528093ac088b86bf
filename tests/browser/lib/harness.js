// Browser test harness: Debian's Chromium (through playwright-core) against the release
// gateway, on loopback only.
//
//   import { chromiumSkip, startGateway, startFront, launchChromium } from './lib/harness.js';
//
//   test('…', { skip: chromiumSkip() }, async (t) => {
//     const gw = await startGateway(t);                  // stopped by PID when the test ends
//     const front = await startFront(t, { upstreamPort: gw.port, pages: { '/t.html': html } });
//     const chrome = await launchChromium(t);            // closed, profile removed, likewise
//     const page = await chrome.newPage();
//     await page.goto(front.httpUrl('/t.html'));         // then: new WebSocket(front.wsUrl(...))
//   });
//
// * Chromium: /usr/bin/chromium (override with CHROMIUM_BIN). When it is missing the tests are
//   skipped with a loud message, unless CI is set: then they fail.
// * Gateway: SWITCHBOARD_BIN (default ../../target/release/switchboard from this package),
//   `serve --listen 127.0.0.1:<free port>`; its output goes to target/browser-artifacts/.
//   `gw.restart()` stops it and starts it again on the same port (for reconnect tests).
// * Origin: the gateway accepts only same-origin pages by default (the Origin's host:port must
//   equal the Host header's), so `about:blank` (Origin: null) and a page from another port get
//   403. Chromium also blocks (Local Network Access) sockets from pages Playwright fulfils
//   itself with `page.route`, so the page must come from a real loopback server. `startFront`
//   is that server: it serves the test pages and relays WebSocket upgrades byte for byte to the
//   gateway, so page and socket share the front's origin; nothing on the gateway is relaxed.
//   Once the gateway serves its own demo page, tests can load it from `gw.httpUrl(...)`.
// * Processes: everything this module starts is stopped by PID: from the test's `after` hook,
//   and as a last resort from a process 'exit' handler (SIGKILL).

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, createWriteStream, accessSync, constants } from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The npm package's directory (tests/browser). */
export const PACKAGE_DIR = path.resolve(HERE, '..');
/** The repository root. */
export const REPO_ROOT = path.resolve(PACKAGE_DIR, '..', '..');
/** Where screenshots and logs go (target/ is gitignored). */
export const ARTIFACTS_DIR = process.env.SWITCHBOARD_BROWSER_ARTIFACTS
  ? path.resolve(process.env.SWITCHBOARD_BROWSER_ARTIFACTS)
  : path.join(REPO_ROOT, 'target', 'browser-artifacts');

export const CHROMIUM_PATH = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const GATEWAY_BIN = process.env.SWITCHBOARD_BIN
  ? path.resolve(process.env.SWITCHBOARD_BIN)
  : path.resolve(PACKAGE_DIR, '../../target/release/switchboard');

/** Chromium flags: without the background-networking ones, connections fail on our machines. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const inCI = () => Boolean(process.env.CI);

function isExecutable(p) {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

let skipAnnounced = false;

/**
 * `false` when Chromium is there (or when CI is set: the test then runs and fails on the missing
 * browser), otherwise the skip reason, announced loudly once. Use as `test(name, { skip:
 * chromiumSkip() }, fn)`.
 */
export function chromiumSkip() {
  if (isExecutable(CHROMIUM_PATH)) return false;
  if (inCI()) return false;
  const reason = `Chromium not found at ${CHROMIUM_PATH} (apt-get install -y chromium): browser tests SKIPPED`;
  if (!skipAnnounced) {
    skipAnnounced = true;
    const bar = '!'.repeat(reason.length + 8);
    process.stderr.write(`\n${bar}\n!!! ${reason} !!!\n${bar}\n\n`);
  }
  return reason;
}

/** Fails (throws) unless Chromium can be started; the message says what to install. */
export function requireChromium() {
  if (!isExecutable(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM_PATH}${inCI() ? ' and CI is set, so this is a failure' : ''}: ` +
        'install it with `apt-get install -y chromium` (or set CHROMIUM_BIN)',
    );
  }
  return CHROMIUM_PATH;
}

export function ensureArtifactsDir() {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  return ARTIFACTS_DIR;
}

/** A file name safe for the artifacts directory. */
export function artifactPath(name) {
  ensureArtifactsDir();
  return path.join(ARTIFACTS_DIR, name.replace(/[^A-Za-z0-9._-]+/g, '-'));
}

// ------------------------------------------------------------------ process bookkeeping

/** PIDs this process started and has not seen exit. */
const livePids = new Set();
let exitHookInstalled = false;

function trackPid(pid) {
  livePids.add(pid);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // Last resort (an exception escaped every hook): SIGKILL what we started, by PID.
    process.on('exit', () => {
      for (const p of livePids) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    });
  }
}

const cleanupStacks = new WeakMap();

/**
 * Registers `fn` to run when the test ends, pass or fail; the functions run last-registered
 * first (the browser closes before the front, the front before the gateway). `t` is a node:test
 * TestContext, or anything with an `after(fn)` method; `null` leaves the cleanup to the caller.
 */
export function onEnd(t, fn) {
  if (!t || typeof t.after !== 'function') return;
  let stack = cleanupStacks.get(t);
  if (!stack) {
    stack = [];
    cleanupStacks.set(t, stack);
    t.after(async () => {
      const errors = [];
      while (stack.length) {
        try {
          await stack.pop()();
        } catch (e) {
          errors.push(e);
        }
      }
      if (errors.length) throw errors[0];
    });
  }
  stack.push(fn);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Stops a child we spawned: SIGTERM, then SIGKILL after `graceMs`. Resolves with its exit. */
export async function stopChild(child, graceMs = 3000) {
  if (child.exitCode !== null || child.signalCode !== null) {
    livePids.delete(child.pid);
    return { code: child.exitCode, signal: child.signalCode };
  }
  const exited = new Promise((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  try {
    process.kill(child.pid, 'SIGTERM');
  } catch {
    // raced with its exit
  }
  let timer;
  const result = await Promise.race([
    exited,
    new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), graceMs);
    }),
  ]);
  clearTimeout(timer);
  if (result) {
    livePids.delete(child.pid);
    return result;
  }
  try {
    process.kill(child.pid, 'SIGKILL');
  } catch {
    // gone
  }
  const r = await exited;
  livePids.delete(child.pid);
  return r;
}

// ------------------------------------------------------------------ ports

/** A port that was free on 127.0.0.1 a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves true once a TCP connection to 127.0.0.1:port succeeds. */
function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.setTimeout(1000, () => {
      s.destroy();
      resolve(false);
    });
  });
}

// ------------------------------------------------------------------ gateway

/**
 * A running gateway (`switchboard serve --listen 127.0.0.1:PORT ...`).
 */
export class Gateway {
  constructor({ bin, port, extraArgs, env, startTimeoutMs, name }) {
    this.bin = bin;
    this.port = port;
    this.extraArgs = extraArgs;
    this.env = env;
    this.startTimeoutMs = startTimeoutMs;
    this.name = name;
    this.child = null;
    this.starts = 0;
    this.output = '';
    this.logPath = artifactPath(`${name}-${port}.log`);
  }

  /** `ws://127.0.0.1:PORT<path>` */
  wsUrl(p = '/ws/echo') {
    return `ws://127.0.0.1:${this.port}${p}`;
  }

  /** `http://127.0.0.1:PORT<path>`: the gateway's own origin. */
  httpUrl(p = '/') {
    return `http://127.0.0.1:${this.port}${p}`;
  }

  /** The page origin the gateway accepts by default. */
  get origin() {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid() {
    return this.child?.pid;
  }

  /** The last few KiB of the gateway's stdout/stderr. */
  tail(bytes = 4000) {
    return this.output.slice(-bytes);
  }

  /** Starts the process and waits until it accepts TCP connections. */
  async start() {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      throw new Error(`gateway already running (pid ${this.child.pid})`);
    }
    this.starts += 1;
    const args = ['serve', '--listen', `127.0.0.1:${this.port}`, ...this.extraArgs];
    const log = createWriteStream(this.logPath, { flags: 'a' });
    log.write(`\n=== start #${this.starts}: ${this.bin} ${args.join(' ')}\n`);
    const child = spawn(this.bin, args, {
      cwd: REPO_ROOT,
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    trackPid(child.pid);
    const collect = (chunk) => {
      log.write(chunk);
      this.output = (this.output + chunk.toString('utf8')).slice(-64 * 1024);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    let spawnError = null;
    child.once('error', (e) => {
      spawnError = e;
    });
    child.once('exit', (code, signal) => {
      livePids.delete(child.pid);
      log.end(`=== exited: code ${code} signal ${signal}\n`);
    });
    const deadline = Date.now() + this.startTimeoutMs;
    for (;;) {
      if (spawnError) throw new Error(`cannot start ${this.bin}: ${spawnError.message}`);
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `gateway exited during start-up (code ${child.exitCode}, signal ${child.signalCode}):\n${this.tail()}`,
        );
      }
      if (await canConnect(this.port)) return this;
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(
          `gateway did not accept connections on 127.0.0.1:${this.port} within ${this.startTimeoutMs} ms:\n${this.tail()}`,
        );
      }
      await sleep(50);
    }
  }

  /** Stops the process by PID (SIGTERM, SIGKILL after `graceMs`). */
  async stop(graceMs = 3000) {
    if (!this.child) return null;
    const r = await stopChild(this.child, graceMs);
    return r;
  }

  /** Stops it and starts it again on the same port (clients see their connections drop). */
  async restart({ downMs = 0 } = {}) {
    await this.stop();
    if (downMs > 0) await sleep(downMs);
    await this.start();
    return this;
  }
}

/**
 * Starts the release gateway on a free loopback port and stops it (by PID) when `t` ends.
 * Options: `args` (extra `serve` arguments), `env`, `bin`, `startTimeoutMs` (default 15 s).
 * A failed bind (port taken in between) is retried on another port.
 */
export async function startGateway(t, opts = {}) {
  const bin = opts.bin ?? GATEWAY_BIN;
  if (!existsSync(bin)) {
    throw new Error(
      `gateway binary ${bin} not found: run \`cargo build --release -p switchboard-gateway\` or set SWITCHBOARD_BIN`,
    );
  }
  let lastError;
  for (let attempt = 0; attempt < 3; attempt++) {
    const gw = new Gateway({
      bin,
      port: opts.port ?? (await freePort()),
      extraArgs: opts.args ?? [],
      env: opts.env ?? {},
      startTimeoutMs: opts.startTimeoutMs ?? 15000,
      name: opts.name ?? 'gateway',
    });
    onEnd(t, () => gw.stop());
    try {
      return await gw.start();
    } catch (e) {
      lastError = e;
      if (opts.port !== undefined || !/exited during start-up/.test(e.message)) break;
    }
  }
  throw lastError;
}

// ------------------------------------------------------------------ Chromium

/**
 * Launches Chromium with CHROMIUM_ARGS and a fresh user-data directory (removed at the end).
 * Returns { context, newPage(), close(), userDataDir }; closed automatically when `t` ends.
 * Each call is its own browser process with its own profile (separate cookies/storage).
 */
export async function launchChromium(t, opts = {}) {
  const executablePath = requireChromium();
  const { chromium } = await import('playwright-core');
  const userDataDir = mkdtempSync(path.join(os.tmpdir(), 'switchboard-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      args: [...CHROMIUM_ARGS, ...(opts.args ?? [])],
      viewport: opts.viewport ?? { width: 800, height: 600 },
      timeout: opts.timeoutMs ?? 30000,
    });
  } catch (e) {
    rmSync(userDataDir, { recursive: true, force: true });
    throw e;
  }
  let closed = false;
  const handle = {
    context,
    userDataDir,
    /** A new tab; its console errors and page errors are collected in `page.consoleErrors`. */
    async newPage() {
      const page = await context.newPage();
      page.consoleErrors = [];
      page.on('console', (m) => {
        if (m.type() === 'error') page.consoleErrors.push(m.text());
      });
      page.on('pageerror', (e) => page.consoleErrors.push(String(e)));
      return page;
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await context.close();
      } finally {
        rmSync(userDataDir, { recursive: true, force: true });
      }
    },
  };
  onEnd(t, () => handle.close());
  return handle;
}

// ------------------------------------------------------------------ same-origin front

/**
 * A tiny Node HTTP server on a free loopback port that serves test pages and relays WebSocket
 * upgrades, byte for byte, to the gateway: the shape of a deployment where one origin serves
 * the app and proxies its sockets. A page loaded from `front.httpUrl(path)` and a socket to
 * `front.wsUrl(path)` are same-origin (Host and Origin both carry the front's port), which is
 * what the gateway's default origin policy asks for; nothing on the gateway is relaxed.
 *
 * The relay also parses the WebSocket frames each way, so a test sees what is really on the
 * wire (RSV1 = compressed, and the compressed length).
 *
 * Options: `pages` ({ '/path': html }), `upstreamPort` (the gateway; `null` for a page server
 * that relays nothing). `front.upstreamPort` can be changed later (new upgrades go there).
 * Returns { port, origin, httpUrl(p), wsUrl(p), pages, connections, close() } where each
 * connection is { requestHead, responseHead, toServer: [frame], toClient: [frame], closed }
 * and frame = { fin, rsv1, opcode, masked, payloadLength, wireLength }.
 */
export async function startFront(t, { pages = {}, upstreamPort = null } = {}) {
  const connections = [];
  const sockets = new Set();
  const track = (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };
  const server = http.createServer((req, res) => {
    const pathname = new URL(req.url, 'http://x').pathname;
    const body = handle.pages[pathname];
    if (body === undefined && pathname === '/favicon.ico') {
      res.writeHead(204).end(); // keeps a 404 out of the pages' console errors
      return;
    }
    if (body === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(body);
  });
  server.on('connection', track);
  server.on('upgrade', (req, client, head) => {
    if (handle.upstreamPort === null) {
      client.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      return;
    }
    // Rebuild the request head exactly as received (rawHeaders keeps order and case).
    const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    }
    const requestHead = lines.join('\r\n');
    const conn = { requestHead, responseHead: null, toServer: [], toClient: [], closed: false };
    connections.push(conn);
    const upstream = net.connect({ host: '127.0.0.1', port: handle.upstreamPort });
    track(upstream);
    const up = frameParser(null, (f) => conn.toServer.push(f));
    const down = frameParser(
      (h) => {
        conn.responseHead = h;
        return /^HTTP\/1\.1 101 /.test(h);
      },
      (f) => conn.toClient.push(f),
    );
    upstream.write(`${requestHead}\r\n\r\n`);
    if (head.length) {
      up(head);
      upstream.write(head);
    }
    client.on('data', (d) => {
      up(d);
      upstream.write(d);
    });
    upstream.on('data', (d) => {
      down(d);
      client.write(d);
    });
    const end = () => {
      conn.closed = true;
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on('close', end);
      s.on('error', end);
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  const handle = {
    port,
    origin: `http://127.0.0.1:${port}`,
    pages,
    upstreamPort,
    connections,
    httpUrl: (p = '/') => `http://127.0.0.1:${port}${p}`,
    wsUrl: (p = '/ws/echo') => `ws://127.0.0.1:${port}${p}`,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  onEnd(t, () => handle.close());
  return handle;
}

/**
 * Incremental parser of one direction of a relayed connection: an HTTP head (when `onHead` is
 * given), then WebSocket frames.
 */
export function frameParser(onHead, onFrame) {
  let buf = Buffer.alloc(0);
  let inHead = onHead !== null;
  let ignoreRest = false;
  return (chunk) => {
    if (ignoreRest) return;
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    if (inHead) {
      const i = buf.indexOf('\r\n\r\n');
      if (i < 0) return;
      // `false` from onHead: no frames follow (a refused upgrade's body).
      ignoreRest = onHead(buf.subarray(0, i).toString('latin1')) === false;
      buf = buf.subarray(i + 4);
      inHead = false;
      if (ignoreRest) return;
    }
    for (;;) {
      if (buf.length < 2) return;
      const b0 = buf[0];
      const b1 = buf[1];
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        off = 10;
      }
      const masked = (b1 & 0x80) !== 0;
      if (masked) off += 4;
      if (buf.length < off + len) return;
      onFrame({
        fin: (b0 & 0x80) !== 0,
        rsv1: (b0 & 0x40) !== 0,
        opcode: b0 & 0x0f,
        masked,
        payloadLength: len,
        wireLength: off + len,
      });
      buf = buf.subarray(off + len);
    }
  };
}
