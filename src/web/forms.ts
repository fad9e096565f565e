import type { IncomingMessage } from "node:http";
import { readBody, RequestRefusedError } from "../server.js";

/** Largest form body: the longest description (20,000 characters) percent-encoded, with room to spare. */
export const FORM_MAX_BYTES = 256 * 1024;
/** Most fields in one form; the workbench's largest has about fifteen. */
export const FORM_MAX_FIELDS = 64;

/** A form the server refuses to read: wrong type, too large, too many fields. */
export class FormError extends Error {
  override name = "FormError";
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Reads an application/x-www-form-urlencoded body of at most FORM_MAX_BYTES. Other types get 415
 * (a multipart or JSON body is never what these forms send); a repeated field keeps its first value.
 */
export async function readForm(req: IncomingMessage): Promise<Map<string, string>> {
  const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/x-www-form-urlencoded") {
    throw new FormError(415, "Forms are sent as application/x-www-form-urlencoded");
  }
  let body: Buffer;
  try {
    body = await readBody(req, FORM_MAX_BYTES);
  } catch (err) {
    if (err instanceof RequestRefusedError) throw new FormError(err.status, err.status === 413 ? `The form is larger than ${FORM_MAX_BYTES} bytes` : err.message);
    throw err;
  }
  return parseForm(body.toString("utf8"));
}

/** Pure: the fields of an urlencoded body; FormError past FORM_MAX_FIELDS. */
export function parseForm(text: string): Map<string, string> {
  const params = new URLSearchParams(text);
  const out = new Map<string, string>();
  let count = 0;
  for (const [k, v] of params) {
    if (++count > FORM_MAX_FIELDS) throw new FormError(413, `The form has more than ${FORM_MAX_FIELDS} fields`);
    if (!out.has(k)) out.set(k, v);
  }
  return out;
}
