import type { ServerResponse } from "node:http";
import { fileURLToPath } from "node:url";
import { Eta } from "eta";

/**
 * Templates live in src/web/views and plain browser files in src/web/static. Both are found from
 * the package root, which is two folders up from this module whether it runs from src/web (tsx)
 * or from dist/web (the build), so the build copies nothing.
 */
export const VIEWS_DIR = fileURLToPath(new URL("../../src/web/views/", import.meta.url));
export const STATIC_DIR = fileURLToPath(new URL("../../src/web/static/", import.meta.url));

/** No inline script or style, nothing from another origin, forms post only here, never framed. */
export const WORKBENCH_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** Headers every workbench page carries. */
export const PAGE_HEADERS: Record<string, string> = {
  "content-type": "text/html; charset=utf-8",
  "content-security-policy": WORKBENCH_CSP,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  // Same-origin requests keep their Referer (the form check's fallback); other sites get none.
  "referrer-policy": "same-origin",
  // Pages differ by session and change with every job: never cached.
  "cache-control": "no-store",
};

const HTML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/**
 * Bidirectional embeddings, overrides and isolates (U+202A–202E, U+2066–2069). People's texts refuse
 * them (jobs/input-limits.ts), but names and titles come from Wikidata as they are, and one override
 * can show "Retrato \u202Egnp.exe" as "Retrato exe.png": pages leave them out. Direction marks
 * (U+200E, U+200F) stay.
 */
const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/g;

/** Every value a template writes: HTML-escaped, without bidirectional controls. */
export function escapeForPage(value: unknown): string {
  return String(value).replace(BIDI_CONTROLS, "").replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

// autoEscape is Eta's default; said here so no one turns it off by accident.
const eta = new Eta({ views: VIEWS_DIR, autoEscape: true, escapeFunction: escapeForPage, cache: true, defaultExtension: ".eta" });

export function renderPage(template: string, data: Record<string, unknown>): string {
  return eta.render(`./${template}`, data);
}

export function sendPage(res: ServerResponse, status: number, html: string, extra: Record<string, string | string[]> = {}, headOnly = false): void {
  const body = Buffer.from(html);
  res.writeHead(status, { ...PAGE_HEADERS, ...extra, "content-length": body.length });
  res.end(headOnly ? undefined : body);
}

/** POST/redirect/GET: 303 sends the browser to `location` with a GET. */
export function redirect(res: ServerResponse, location: string, extra: Record<string, string | string[]> = {}): void {
  res.writeHead(303, { location, "cache-control": "no-store", "x-content-type-options": "nosniff", ...extra }).end();
}
