/**
 * Authentication: the token provider, what CONNECT_ACK says about the
 * session, AUTHENTICATE and its replies, refreshing the session before it
 * expires (and on the server's `switchboard.session_expiring` warning).
 */

import type { Connection, TokenResult } from "./connection.js";
import type { Emitter } from "./emitter.js";
import type { Timers } from "./env.js";
import {
  AuthenticationError,
  NotConnectedError,
  SwitchboardError,
  TokenProviderError,
  type ServerError,
} from "./errors.js";
import type { Lifecycle } from "./lifecycle.js";
import type { ClientEvents, Session, TokenProvider, TokenReason } from "./options.js";
import { AUTH_UNAVAILABLE_REASON, CloseCode, type Message } from "./protocol.js";
import type { Settings } from "./settings.js";

/** Asks `source` for a token; never rejects (a failure is a `TokenResult`). */
export function fetchToken(source: string | TokenProvider, reason: TokenReason): Promise<TokenResult> {
  const fail = (cause: unknown): TokenResult => ({ ok: false, error: new TokenProviderError(cause) });
  const check = (token: unknown): TokenResult =>
    typeof token === "string" && token !== ""
      ? { ok: true, token }
      : fail(new TypeError(`expected a non-empty string, got ${typeof token}`));
  if (typeof source !== "function") return Promise.resolve(check(source));
  try {
    return Promise.resolve(source({ reason })).then(check, fail);
  } catch (cause) {
    return Promise.resolve(fail(cause));
  }
}

export class Auth {
  readonly #s: Settings;
  readonly #timers: Timers;
  readonly #lifecycle: Lifecycle;
  readonly #events: Emitter<ClientEvents>;
  #session: Session | null = null;

  constructor(s: Settings, lifecycle: Lifecycle, events: Emitter<ClientEvents>) {
    this.#s = s;
    this.#timers = s.timers;
    this.#lifecycle = lifecycle;
    this.#events = events;
  }

  /** The current session, once authenticated. */
  get session(): Session | null {
    return this.#session;
  }

  /** Starts fetching the token for a new connection; null without a token. */
  token(reason: TokenReason): Promise<TokenResult> | null {
    return this.#s.token === null ? null : fetchToken(this.#s.token, reason);
  }

  /** CONNECT_ACK (the first on `conn`): authenticated already, authenticate, give up, or ready as anonymous. */
  acked(conn: Connection, message: Message<"CONNECT_ACK">): void {
    const ack = message.payload;
    if (ack.authenticated) {
      // The handshake carried a valid credential; its expiry is refreshed
      // like one from AUTHENTICATE_SUCCESS.
      const expiresAt = ack.expires_at ?? null;
      this.#session = { userId: ack.user_id, expiresAt, permissions: [] };
      this.#scheduleRefresh(conn, expiresAt, message.timestamp);
      this.#lifecycle.setState("authenticated");
      this.#events.emit("authenticated", { ...this.#session, refreshed: false });
      this.#lifecycle.markReady(conn);
    } else if (conn.token !== null) {
      this.#lifecycle.setState("authenticating");
      void this.#authenticate(conn, conn.token);
    } else if (ack.requires_auth) {
      const error = new AuthenticationError("the server requires authentication and no token is configured");
      conn.drop(CloseCode.Normal, error.reason, { reconnect: false, error });
    } else {
      this.#lifecycle.markReady(conn);
    }
  }

  /** AUTHENTICATE_SUCCESS: the first authentication on `conn`, or a refresh. */
  succeeded(conn: Connection, message: Message<"AUTHENTICATE_SUCCESS">): void {
    conn.authId = null;
    // disconnect() was called while it was checked: nothing to go on with.
    if (!this.#lifecycle.live(conn)) return;
    const { user_id: userId, expires_at: expiresAt, permissions } = message.payload;
    this.#session = { userId, expiresAt, permissions };
    this.#scheduleRefresh(conn, expiresAt, message.timestamp);
    const refreshed = conn.ready;
    if (!refreshed) this.#lifecycle.setState("authenticated");
    this.#events.emit("authenticated", { ...this.#session, refreshed });
    if (conn.refreshing !== null) {
      conn.refreshing.resolve();
      conn.refreshing = null;
    }
    if (!refreshed) this.#lifecycle.markReady(conn);
  }

  /** AUTHENTICATE_FAILURE. */
  failed(conn: Connection, reason: string, attemptsLeft: number): void {
    conn.authId = null;
    const error = new AuthenticationError(reason, attemptsLeft);
    this.#events.emit("auth_failed", error);
    if (conn.refreshing !== null) {
      // The session keeps its old expiry; the server closes with 4003 at that
      // time and the reconnect fetches a new token.
      conn.refreshing.reject(error);
      conn.refreshing = null;
      return;
    }
    if (reason === AUTH_UNAVAILABLE_REASON) {
      // The server could not check the token (the attempt does not count):
      // retrying at once would spin, so try again on a new connection, with backoff.
      conn.drop(CloseCode.Abnormal, reason, { reconnect: true });
      return;
    }
    if (typeof this.#s.token === "function" && attemptsLeft > 0) {
      void this.#authenticate(conn, fetchToken(this.#s.token, "retry"));
      return;
    }
    // A fixed token will be refused again; do not burn the remaining attempts.
    conn.drop(CloseCode.Normal, "authentication failed", { reconnect: false, error });
  }

  /**
   * An ERROR: when it answers the AUTHENTICATE in flight, the server could not
   * take it (e.g. `internal`): not a refusal of the token. A refresh fails
   * (the session is kept); a first authentication is tried again on a new
   * connection, with backoff. Returns whether it answered the AUTHENTICATE.
   */
  error(conn: Connection, correlation: string, error: ServerError): boolean {
    if (correlation !== conn.authId) return false;
    conn.authId = null;
    this.#events.emit("error", error);
    if (conn.refreshing !== null) {
      conn.refreshing.reject(error);
      conn.refreshing = null;
      return true;
    }
    conn.drop(CloseCode.Abnormal, `AUTHENTICATE answered ${error.code}: ${error.message}`, { reconnect: true });
    return true;
  }

  /** The server's `switchboard.session_expiring` warning. */
  expiring(conn: Connection, data: unknown): void {
    const expiresAt =
      typeof data === "object" && data !== null && "expires_at" in data && typeof data.expires_at === "number"
        ? data.expires_at
        : (this.#session?.expiresAt ?? 0);
    this.#events.emit("session_expiring", { expiresAt });
    // A refresh still to come handles it: the server warns at once after every
    // refresh of a session shorter than its warning window, and answering each
    // warning with a refresh would loop.
    const scheduled = conn.refreshAt !== null && conn.refreshAt > this.#timers.now();
    if (typeof this.#s.token === "function" && conn.ready && conn.refreshing === null && !scheduled) {
      this.#refresh(conn).catch(() => {
        // Reported through `auth_failed` / `error`.
      });
    }
  }

  /** `SwitchboardClient.refreshToken()`. */
  refreshToken(): Promise<void> {
    const conn = this.#lifecycle.current;
    if (conn === null || this.#lifecycle.state !== "authenticated") return Promise.reject(new NotConnectedError());
    if (typeof this.#s.token !== "function") {
      return Promise.reject(new SwitchboardError("refreshToken() needs a token provider, not a fixed token"));
    }
    return this.#refresh(conn);
  }

  /** `conn` closed: the session is gone, a refresh in flight fails with `error`. */
  lost(conn: Connection, error: SwitchboardError): void {
    this.#session = null;
    conn.refreshing?.reject(error);
    conn.refreshing = null;
  }

  async #authenticate(conn: Connection, token: Promise<TokenResult>): Promise<void> {
    const result = await token;
    if (conn.closed) return;
    if (!result.ok) {
      this.#events.emit("error", result.error);
      if (conn.refreshing !== null) {
        conn.refreshing.reject(result.error);
        conn.refreshing = null;
      } else {
        conn.drop(CloseCode.Abnormal, result.error.message, { reconnect: true });
      }
      return;
    }
    conn.authId = conn.send("AUTHENTICATE", { auth: { token: result.token } });
  }

  #scheduleRefresh(conn: Connection, expiresAt: number | null, serverTime: number | undefined): void {
    this.#timers.clearTimeout(conn.timers.refresh);
    conn.refreshAt = null;
    if (expiresAt === null || typeof this.#s.token !== "function") return;
    // Measured against the server's clock (the message's timestamp), so a
    // skewed client clock does not matter.
    const lifetime = expiresAt * 1000 - (serverTime === undefined ? this.#timers.now() : serverTime * 1000);
    const delay = Math.max(0, lifetime - Math.min(this.#s.refreshMargin, lifetime / 2));
    conn.refreshAt = this.#timers.now() + delay;
    conn.timers.refresh = this.#timers.setTimeout(() => {
      conn.refreshAt = null;
      this.#refresh(conn).catch(() => {
        // Reported through `auth_failed` / `error`; the server's
        // session_expiring warning or 4003 brings another chance.
      });
    }, delay);
  }

  #refresh(conn: Connection): Promise<void> {
    const source = this.#s.token;
    if (conn.closed || !conn.ready) return Promise.reject(new NotConnectedError());
    if (source === null) return Promise.reject(new SwitchboardError("no token to refresh the session with"));
    if (conn.refreshing !== null) {
      const pending = conn.refreshing;
      return new Promise<void>((resolve, reject) => {
        conn.refreshing = {
          resolve: () => {
            pending.resolve();
            resolve();
          },
          reject: (error) => {
            pending.reject(error);
            reject(error);
          },
          timer: null,
        };
      });
    }
    return new Promise<void>((resolve, reject) => {
      conn.refreshing = { resolve, reject, timer: null };
      void this.#authenticate(conn, fetchToken(source, "refresh"));
    });
  }
}
