/**
 * The TypeScript lists against docs/protocol.md's tables: a drift on either
 * side (a type, code or close code added, removed or changed in one place
 * only) fails here.
 */

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { decodeGap, decodeMember, decodeServerMessage } from "../src/codec.js";
import {
  CLOSE_CODE_ADVICE,
  CLOSE_CODES,
  CONNECTION_STATES,
  ERROR_CODES,
  GAP_EVENT,
  JOIN_EVENT,
  LEAVE_EVENT,
  MAX_SUBSCRIPTIONS,
  MESSAGE_DIRECTIONS,
  MESSAGE_TYPES,
  NOT_RECOVERED_REASONS,
  PROTOCOL_VERSION,
  SESSION_EXPIRING_EVENT,
  SUBPROTOCOL,
  type CloseCode,
  type ErrorCode,
  type MessageType,
} from "../src/index.js";

/** docs/protocol.md, found by walking up from this file (src or dist-test). */
function protocolDoc(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, "docs", "protocol.md");
    if (existsSync(candidate)) return readFileSync(candidate, "utf8");
    const parent = dirname(dir);
    if (parent === dir) throw new Error("docs/protocol.md not found above " + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

const doc = protocolDoc();

/** The body of the section under `heading` (up to the next heading of the same or a higher level). */
function section(heading: string): string {
  const lines = doc.split("\n");
  const start = lines.findIndex((l) => l.trim() === heading);
  assert.notEqual(start, -1, `docs/protocol.md has no heading "${heading}"`);
  const level = heading.indexOf(" ");
  const end = lines.findIndex((l, i) => i > start && /^#+ /.test(l) && l.indexOf(" ") <= level);
  return lines.slice(start + 1, end === -1 ? undefined : end).join("\n");
}

/** The first Markdown table in `text`: header cells and rows of cells (`\|` is a literal bar). */
function firstTable(text: string): { header: string[]; rows: string[][] } {
  const lines = text.split("\n");
  const start = lines.findIndex((l) => l.trimStart().startsWith("|"));
  assert.notEqual(start, -1, "no table found");
  const tableLines: string[] = [];
  for (const line of lines.slice(start)) {
    if (!line.trimStart().startsWith("|")) break;
    tableLines.push(line.trim());
  }
  const cells = (line: string): string[] =>
    line
      .replace(/^\|/, "")
      .replace(/\|$/, "")
      .split(/(?<!\\)\|/)
      .map((c) => c.trim().replace(/\\\|/g, "|"));
  const [header, separator, ...rows] = tableLines.map(cells);
  assert.ok(header !== undefined && separator !== undefined, "table without header");
  assert.ok(separator.every((c) => /^:?-+:?$/.test(c)), "second table line is not a separator");
  return { header, rows };
}

/** `CODE` from a cell like "`CODE`". */
function code(cell: string | undefined): string {
  const match = /^`([^`]+)`$/.exec(cell ?? "");
  assert.ok(match?.[1] !== undefined, `expected a single \`code\` cell, got ${JSON.stringify(cell)}`);
  return match[1];
}

describe("docs/protocol.md ↔ TypeScript", () => {
  test("message types: the same list, in the same order, with the same directions", () => {
    const { header, rows } = firstTable(section("## Message types"));
    assert.deepEqual(header.slice(0, 2), ["type", "direction"]);
    const documented = rows.map((r) => code(r[0]));
    assert.deepEqual([...MESSAGE_TYPES], documented);
    for (const row of rows) {
      const type = code(row[0]) as MessageType;
      const direction = (row[1] ?? "").replace(/\s+/g, "").replace("->", "→");
      assert.equal(MESSAGE_DIRECTIONS[type], direction, `direction of ${type}`);
    }
  });

  test("error codes: the same list, in the same order", () => {
    const { header, rows } = firstTable(section("## Errors"));
    assert.equal(header[0], "code");
    assert.deepEqual([...ERROR_CODES], rows.map((r) => code(r[0])));
  });

  test("close codes: the same list, and the same reconnect advice", () => {
    const { header, rows } = firstTable(section("## Close codes"));
    assert.equal(header[0], "code");
    assert.match(header[2] ?? "", /reconnect/);
    const documented = rows.map((r) => Number(r[0]));
    assert.ok(documented.every(Number.isInteger), `close codes: ${rows.map((r) => r[0]).join(", ")}`);
    assert.deepEqual([...CLOSE_CODES], documented);
    for (const row of rows) {
      const closeCode = Number(row[0]) as CloseCode;
      const column = (row[2] ?? "").toLowerCase();
      const expected = column.startsWith("no")
        ? "no"
        : column.includes("token")
          ? "after_new_token"
          : column.startsWith("yes")
            ? "yes"
            : `unparsed: ${column}`;
      assert.equal(CLOSE_CODE_ADVICE[closeCode], expected, `reconnect advice for ${closeCode} ("${row[2]}")`);
    }
  });

  test("the terminal close codes are the ones the issue lists", () => {
    const terminal = CLOSE_CODES.filter((c) => CLOSE_CODE_ADVICE[c] === "no");
    assert.deepEqual(terminal, [1000, 1002, 1003, 1007, 1008, 1009, 4004, 4005, 4007]);
    assert.equal(CLOSE_CODE_ADVICE[4003], "after_new_token");
  });

  test("connection states: the same list, in the document's order", () => {
    const text = section("### Connection states");
    const states = [...text.matchAll(/`([a-z]+)`/g)].map((m) => m[1]);
    assert.deepEqual([...CONNECTION_STATES], states);
  });

  test("constants: subprotocol, version, session_expiring event, subscription limit", () => {
    assert.ok(section("## Transport").includes(`\`${SUBPROTOCOL}\``), "subprotocol");
    assert.ok(doc.includes(`"protocol_version": ${PROTOCOL_VERSION}`) || doc.includes(`"protocol_version":${PROTOCOL_VERSION}`));
    assert.ok(doc.includes(`"event": "${SESSION_EXPIRING_EVENT}"`), "session_expiring event name");
    assert.ok(section("## Channels").includes(`**${MAX_SUBSCRIPTIONS}**`), "subscription limit");
  });

  test("every example is a known type, and every server example decodes", () => {
    const block = /## Examples[\s\S]*?```json\n([\s\S]*?)```/.exec(doc)?.[1];
    assert.ok(block !== undefined, "no Examples block");
    const examples = block
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as { type: MessageType });
    const seen = new Set(examples.map((e) => e.type));
    assert.deepEqual([...MESSAGE_TYPES].filter((t) => !seen.has(t)), [], "message types without an example");
    for (const example of examples) {
      if (MESSAGE_DIRECTIONS[example.type] === "client→server") continue;
      const decoded = decodeServerMessage(JSON.stringify(example));
      assert.ok(decoded.ok, `${example.type}: ${decoded.ok ? "" : decoded.reason}`);
    }
  });

  test("recovery reasons: the `reason` | when table of Streams and recovery, in order", () => {
    const text = section("## Streams and recovery");
    const start = text.search(/^\|\s*`reason`\s*\|\s*when\s*\|/m);
    assert.notEqual(start, -1, "no | `reason` | when | table under Streams and recovery");
    const { header, rows } = firstTable(text.slice(start));
    assert.deepEqual(header, ["`reason`", "when"]);
    assert.deepEqual([...NOT_RECOVERED_REASONS], rows.map((r) => code(r[0])));
  });

  test("streams: the gap event's name, and the section's examples decode", () => {
    const text = section("## Streams and recovery");
    assert.ok(text.includes(`\`${GAP_EVENT}\``), "gap event name");
    const blocks = [...text.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1] ?? "");
    const messages = blocks.flatMap((b) => b.split("\n").filter((l) => l.trim() !== ""));
    assert.ok(messages.length >= 2, "a publication and a gap event");
    let gaps = 0;
    for (const line of messages) {
      const decoded = decodeServerMessage(line);
      assert.ok(decoded.ok, `${line}: ${decoded.ok ? "" : decoded.reason}`);
      const message = decoded.message;
      if (message.type === "EVENT" && message.payload.event === GAP_EVENT) {
        gaps += 1;
        assert.notEqual(decodeGap(message.payload.data), null, `gap data: ${line}`);
      } else {
        assert.equal(typeof message.offset, "number", `a publication with its offset: ${line}`);
      }
    }
    assert.equal(gaps, 1);
  });

  test("presence: the request table's types, the refusals' codes, join_leave in SUBSCRIBE and SUBSCRIBE_SUCCESS", () => {
    const text = section("## Presence");
    // | `PRESENCE {"channel"}` | `PRESENCE_RESULT {…}` |: requests the client sends, the answer it reads.
    const requests = firstTable(text);
    assert.deepEqual(requests.header, ["request", "answer"]);
    const types = requests.rows.map((r) => [/^`([A-Z_]+)[ `]/.exec(r[0] ?? "")?.[1], /^`([A-Z_]+)[ `]/.exec(r[1] ?? "")?.[1]]);
    assert.deepEqual(types, [
      ["PRESENCE", "PRESENCE_RESULT"],
      ["PRESENCE_STATS", "PRESENCE_RESULT"],
    ]);
    assert.equal(MESSAGE_DIRECTIONS.PRESENCE, "client→server");
    assert.equal(MESSAGE_DIRECTIONS.PRESENCE_STATS, "client→server");
    assert.equal(MESSAGE_DIRECTIONS.PRESENCE_RESULT, "server→client");
    // | the request | answer |: every `ERROR` `code` there is one of the client's codes.
    const start = text.search(/^\|\s*the request\s*\|\s*answer\s*\|/m);
    assert.notEqual(start, -1, "no | the request | answer | table under Presence");
    const refusals = firstTable(text.slice(start));
    const codes = refusals.rows.flatMap((r) => [...(r[1] ?? "").matchAll(/`ERROR` `([a-z_]+)`/g)].map((m) => m[1]));
    assert.deepEqual(codes, ["forbidden", "no_presence", "unavailable", "invalid_message"]);
    for (const c of codes) assert.ok(ERROR_CODES.includes(c as ErrorCode), `${c} is in ERROR_CODES`);
    // The SUBSCRIBE option and its confirmation, in the message table.
    const messages = firstTable(section("## Message types")).rows;
    const payload = (type: string): string => messages.find((r) => code(r[0]) === type)?.[2] ?? "";
    assert.match(payload("SUBSCRIBE"), /"join_leave"\?: bool/);
    assert.match(payload("SUBSCRIBE_SUCCESS"), /"join_leave"\?: true/);
    assert.ok(text.includes('"join_leave": true'), "the option in the section's prose");
  });

  test("presence: the join and leave events' names, and the section's example decodes to a member", () => {
    const text = section("## Presence");
    // The join event is named in the example, the leave event in the prose.
    assert.ok(text.includes(`"event": "${JOIN_EVENT}"`), "join event name");
    assert.ok(text.includes(`\`${LEAVE_EVENT}\``), "leave event name");
    const blocks = [...text.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1] ?? "");
    assert.equal(blocks.length, 1, "one example");
    // Written over several lines: one JSON object.
    const decoded = decodeServerMessage(blocks[0] ?? "");
    assert.ok(decoded.ok, decoded.ok ? "" : decoded.reason);
    const message = decoded.message;
    assert.ok(message.type === "EVENT");
    assert.equal(message.payload.event, JOIN_EVENT);
    assert.equal(message.payload.channel, "public:lobby");
    assert.deepEqual(decodeMember(message.payload.data), {
      connection: "gw-1/42",
      user: "alice",
      info: { client: { name: "switchboard-js", version: "0.1.0" } },
    });
  });
});
