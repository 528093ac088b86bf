/**
 * Decoding of server messages: one JSON object per text frame. The decoder
 * checks what the client relies on (the envelope and the required payload
 * fields of each type) and ignores unknown fields, as the protocol asks.
 */

import {
  MESSAGE_DIRECTIONS,
  type GapData,
  type MessageType,
  type PresenceInfo,
  type PresenceMember,
  type ServerMessage,
} from "./protocol.js";

export type Decoded =
  | { readonly ok: true; readonly message: ServerMessage }
  | { readonly ok: false; readonly reason: string };

type Obj = Readonly<Record<string, unknown>>;

function isObject(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const str = (v: unknown): boolean => typeof v === "string";
const num = (v: unknown): boolean => typeof v === "number" && Number.isFinite(v);
const bool = (v: unknown): boolean => typeof v === "boolean";
const strOrNull = (v: unknown): boolean => v === null || typeof v === "string";
const numOrNull = (v: unknown): boolean => v === null || num(v);
const strList = (v: unknown): boolean => Array.isArray(v) && v.every(str);
const optStr = (v: unknown): boolean => v === undefined || str(v);
/** A stream offset: a whole number ≥ 0. */
const offset = (v: unknown): boolean => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const optOffset = (v: unknown): boolean => v === undefined || offset(v);
/** A count: a whole number ≥ 0. */
const count = offset;
const optBool = (v: unknown): boolean => v === undefined || bool(v);
/** A presence member: `{connection: string, user: string | null, info?: object}`. */
const member = (v: unknown): boolean =>
  isObject(v) && str(v["connection"]) && strOrNull(v["user"]) && (v["info"] === undefined || isObject(v["info"]));

/** Required payload fields per server message type, with their checks. */
const SCHEMAS: Readonly<Partial<Record<MessageType, Readonly<Record<string, (v: unknown) => boolean>>>>> = {
  CONNECT_ACK: {
    connection_id: str,
    requires_auth: bool,
    authenticated: bool,
    user_id: strOrNull,
    expires_at: (v) => v === undefined || numOrNull(v),
    heartbeat_interval: num,
    server_version: str,
    protocol_version: num,
  },
  DISCONNECT: { code: (v) => v === undefined || num(v), reason: optStr },
  AUTHENTICATE_SUCCESS: { user_id: str, expires_at: numOrNull, permissions: strList },
  AUTHENTICATE_FAILURE: { code: (v) => v === undefined || str(v), reason: str, attempts_left: num },
  SUBSCRIBE_SUCCESS: {
    channel: str,
    epoch: optStr,
    offset: optOffset,
    recovered: optBool,
    reason: optStr,
    last: optOffset,
    join_leave: optBool,
  },
  SUBSCRIBE_FAILURE: { channel: str, code: str, reason: str },
  UNSUBSCRIBE_ACK: { subscriptions: strList },
  EVENT: { event: str, channel: optStr },
  DATA: { resource: str, channel: optStr },
  NOTIFICATION: {
    title: str,
    message: str,
    level: (v) => v === "info" || v === "success" || v === "warning" || v === "error",
    actions: (v) =>
      Array.isArray(v) && v.every((a) => isObject(a) && str(a["label"]) && str(a["action"])),
    channel: optStr,
  },
  ACTION_RESULT: { action: str },
  PRESENCE_RESULT: {
    channel: str,
    connections: count,
    users: count,
    members: (v) => v === undefined || (Array.isArray(v) && v.every(member)),
  },
  ERROR: { code: str, message: str },
};

/** Decodes one text frame from the server. */
export function decodeServerMessage(text: string): Decoded {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: "not JSON" };
  }
  if (!isObject(value)) return { ok: false, reason: "not a JSON object" };
  const type = value["type"];
  if (typeof type !== "string" || !Object.hasOwn(MESSAGE_DIRECTIONS, type)) {
    return { ok: false, reason: `unknown message type ${JSON.stringify(type)}` };
  }
  const messageType = type as MessageType;
  if (MESSAGE_DIRECTIONS[messageType] === "client→server") {
    return { ok: false, reason: `${messageType} is not sent by servers` };
  }
  const id = value["id"];
  if (typeof id !== "string") return { ok: false, reason: `${messageType} without a string id` };
  const correlation = value["correlation_id"];
  if (correlation !== undefined && !strOrNull(correlation)) {
    return { ok: false, reason: `${messageType}: correlation_id is not a string` };
  }
  const timestamp = value["timestamp"];
  if (timestamp !== undefined && !num(timestamp)) {
    return { ok: false, reason: `${messageType}: timestamp is not a number` };
  }
  if (!optOffset(value["offset"])) {
    return { ok: false, reason: `${messageType}: offset is not a whole number ≥ 0` };
  }
  const rawPayload = value["payload"] ?? {};
  if (!isObject(rawPayload)) return { ok: false, reason: `${messageType}: payload is not an object` };
  const schema = SCHEMAS[messageType];
  if (schema !== undefined) {
    for (const [field, check] of Object.entries(schema)) {
      if (!check(rawPayload[field])) {
        return { ok: false, reason: `${messageType}: payload field ${field} is missing or invalid` };
      }
    }
  }
  // Defaults the client relies on, for servers that leave them out.
  const payload =
    messageType === "AUTHENTICATE_FAILURE" && rawPayload["code"] === undefined
      ? { ...rawPayload, code: "auth_failed" }
      : rawPayload;
  // Checked above field by field; the cast names the result.
  return { ok: true, message: { ...value, payload } as unknown as ServerMessage };
}

/** The `data` of a `switchboard.gap` event, checked; null when it is not one. */
export function decodeGap(data: unknown): GapData | null {
  if (!isObject(data)) return null;
  const resume = data["resume"];
  if (!str(data["epoch"]) || !offset(data["from"]) || !(data["to"] === null || offset(data["to"]))) return null;
  if (!isObject(resume) || !str(resume["epoch"]) || !offset(resume["offset"])) return null;
  return {
    epoch: data["epoch"] as string,
    from: data["from"] as number,
    to: data["to"] as number | null,
    resume: { epoch: resume["epoch"] as string, offset: resume["offset"] as number },
  };
}

/**
 * The `data` of a `switchboard.join` / `switchboard.leave` event (a presence
 * member), checked; null when it is not one. Unknown fields are dropped.
 */
export function decodeMember(data: unknown): PresenceMember | null {
  if (!member(data)) return null;
  const m = data as Obj;
  const base = { connection: m["connection"] as string, user: m["user"] as string | null };
  return m["info"] === undefined ? base : { ...base, info: m["info"] as PresenceInfo };
}
