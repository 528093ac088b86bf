/**
 * Public types: the WebSocket constructors of browsers, Node (undici) and
 * fakes fit `WebSocketConstructor`; the event map is typed per event; the
 * emitted declarations contain no `any`. Most checks here are compile-time
 * (tsc fails the build); the runtime part scans dist/*.d.ts.
 */

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import type { WebSocket as UndiciWebSocket } from "undici-types";

import { SwitchboardClient, type ClientEvents, type Message, type WebSocketConstructor } from "../src/index.js";
import { FakeSocket } from "./fake-socket.js";

// The browser's WebSocket (lib.dom), Node's (undici) and the test fake all fit.
export const browser: WebSocketConstructor = WebSocket;
export const node: WebSocketConstructor = null as unknown as typeof UndiciWebSocket;
export const fake: WebSocketConstructor = FakeSocket;

export function typedEvents(client: SwitchboardClient): void {
  client.on("EVENT", (m: Message<"EVENT">) => m.payload.event.toUpperCase());
  client.on("ERROR", (m) => m.payload.code satisfies string);
  client.on("disconnected", (e) => e.code.toFixed() + e.reason + String(e.willReconnect));
  client.on("state", (e) => e.to satisfies "connecting" | "connected" | "authenticating" | "authenticated" | "disconnecting" | "disconnected" | "error" | "initializing");
  // @ts-expect-error: not an event
  client.on("nope", () => undefined);
  // @ts-expect-error: CONNECT is sent by clients only, never received
  client.on("CONNECT", () => undefined);
  // @ts-expect-error: an EVENT listener does not get ACTION_RESULT
  client.on("EVENT", (m: Message<"ACTION_RESULT">) => m);
  void client.request("x").then((data) => {
    // @ts-expect-error: results are unknown until narrowed
    data.foo;
  });
  void client.request<{ delivered: number }>("chat.send").then((r) => r.delivered.toFixed());
  // Streams: the confirmation, the gap event, the position.
  void client.subscribe("public:news", undefined, { last: 10 }).then((e) => (e.recovered === false ? e.reason : e.offset));
  client.on("gap", (e) => e.resume.offset.toFixed() + e.epoch + String(e.to ?? "?"));
  client.on("subscribed", (e) => e.recover?.offset);
  const position = client.position("public:news");
  if (position !== null) void client.subscribe("public:news", undefined, { recover: position });
  // @ts-expect-error: a position is { epoch, offset }
  void client.subscribe("public:news", undefined, { recover: { offset: 1 } });
  // Presence: typed answers and events.
  void client.presence("public:lobby").then((p) => p.members.map((m) => (m.user ?? "anonymous") + m.info?.client?.name));
  void client.presenceStats("public:lobby").then((s) => s.connections + s.users);
  void client.presenceStats("public:lobby").then((s) => {
    // @ts-expect-error: stats carry no members
    s.members;
  });
  void client.subscribe("public:lobby", undefined, {
    joinLeave: true,
    onJoin: (e) => e.member.connection,
    onLeave: (e) => e.member.user satisfies string | null,
  });
  client.on("join", (e) => e.channel + e.member.connection);
  client.on("leave", (e) => e.member.info?.client?.version);
  client.on("PRESENCE_RESULT", (m) => m.payload.members?.length);
  // @ts-expect-error: PRESENCE is sent by clients only, never received
  client.on("PRESENCE", () => undefined);
}

type Keys = keyof ClientEvents;
export const everyServerType: Keys[] = [
  "CONNECT_ACK",
  "DISCONNECT",
  "AUTHENTICATE_SUCCESS",
  "AUTHENTICATE_FAILURE",
  "SUBSCRIBE_SUCCESS",
  "SUBSCRIBE_FAILURE",
  "UNSUBSCRIBE_ACK",
  "EVENT",
  "DATA",
  "NOTIFICATION",
  "ACTION_RESULT",
  "PRESENCE_RESULT",
  "PING",
  "PONG",
  "ERROR",
];

test("the published declarations (dist/*.d.ts) contain no `any`", () => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!readdirSync(dir).includes("package.json")) dir = dirname(dir);
  const dist = join(dir, "dist");
  const files = readdirSync(dist).filter((f) => f.endsWith(".d.ts"));
  assert.ok(files.includes("index.d.ts"), "run `npm run build` first");
  for (const file of files) {
    const code = readFileSync(join(dist, file), "utf8")
      .replace(/\/\*[\s\S]*?\*\//g, "")
      .replace(/\/\/.*$/gm, "");
    assert.doesNotMatch(code, /\bany\b/, `${file} uses any`);
  }
});

test("the package has no runtime dependencies", () => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!readdirSync(dir).includes("package.json")) dir = dirname(dir);
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as Record<string, unknown>;
  assert.equal(pkg["dependencies"], undefined);
  assert.equal(pkg["peerDependencies"], undefined);
  const lock = readFileSync(join(dir, "package-lock.json"), "utf8");
  assert.doesNotMatch(lock, /https?:\/\//, "package-lock.json holds no registry URLs");
});
