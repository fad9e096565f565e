import { createHmac, timingSafeEqual } from "node:crypto";
import { checkText, TEXT_LIMITS } from "../jobs/input-limits.js";

/**
 * The workbench's session: a signed cookie that says "signed in with the API token, as <name>",
 * until it expires. Nothing is stored on the server. The MAC key is derived from SESSION_SECRET (or
 * API_TOKEN) together with API_TOKEN, so a new token ends every session. Pure.
 */

export const SESSION_COOKIE = "artdesc_session";
/** A session lasts this long (seconds); sign in again after. */
export const SESSION_MAX_AGE_S = 12 * 60 * 60;
/** The Name field: one line, as setDescription's author allows. */
export const NAME_MAX_CHARS = 200;

export interface Session {
  /** Recorded as author and requester; null when the person gave none. */
  name: string | null;
  /** Unix seconds. */
  expiresAt: number;
}

/** The MAC key, or null when no API_TOKEN is configured (then nobody can sign in). */
export function sessionKey(apiToken: string | undefined, sessionSecret: string | undefined): Buffer | null {
  if (!apiToken) return null;
  return createHmac("sha256", sessionSecret ?? apiToken).update(`artdesc-session\0${apiToken}`).digest();
}

/** Constant-time comparison of a typed token with the configured one. */
export function tokenMatches(given: string, apiToken: string | undefined): boolean {
  if (!apiToken) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(apiToken);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function signSession(session: Session, key: Buffer): string {
  const payload = Buffer.from(JSON.stringify({ n: session.name, e: session.expiresAt })).toString("base64url");
  return `${payload}.${mac(payload, key)}`;
}

/** The session in a cookie value, or null when it is malformed, forged or expired. */
export function verifySession(value: string | undefined, key: Buffer | null, nowS: number): Session | null {
  if (!value || !key || value.length > 2048) return null;
  const dot = value.indexOf(".");
  if (dot <= 0) return null;
  const payload = value.slice(0, dot);
  const given = Buffer.from(value.slice(dot + 1));
  const expected = Buffer.from(mac(payload, key));
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
  } catch {
    return null;
  }
  const { n, e } = (parsed ?? {}) as { n?: unknown; e?: unknown };
  if (typeof e !== "number" || e <= nowS) return null;
  if (n !== null && typeof n !== "string") return null;
  return { name: n, expiresAt: e };
}

function mac(payload: string, key: Buffer): string {
  return createHmac("sha256", key).update(payload).digest("base64url");
}

/**
 * The Name as typed: trimmed, one line, at most NAME_MAX_CHARS; empty means none. It is recorded as
 * the author of every write, so it must pass the author check those writes make (checkText: no
 * control characters, C1 and bidirectional overrides included, no lone surrogate): a Name that
 * signed in and then made every save fail would lock the person out for the session.
 */
export function cleanName(raw: string | undefined): { name: string | null } | { problem: string } {
  const name = (raw ?? "").trim();
  if (name === "") return { name: null };
  if (/[\u0000-\u001f\u007f]/.test(name)) return { problem: "Name must be one line of text" };
  if (name.length > NAME_MAX_CHARS) return { problem: `Name must be at most ${NAME_MAX_CHARS} characters` };
  const checked = checkText(name, TEXT_LIMITS.author);
  if (!checked.ok) return { problem: `Name ${checked.problem}` };
  return { name };
}

/** The value of one cookie in a Cookie header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Set-Cookie for a session (or, with null, one that clears it). HttpOnly, SameSite=Strict, Secure over HTTPS. */
export function sessionCookie(value: string | null, secure: boolean): string {
  const parts = [`${SESSION_COOKIE}=${value ?? ""}`, "Path=/", "HttpOnly", "SameSite=Strict", `Max-Age=${value ? SESSION_MAX_AGE_S : 0}`];
  if (secure) parts.push("Secure");
  return parts.join("; ");
}
