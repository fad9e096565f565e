/**
 * What a one-shot command prints when it fails for a reason outside it (a locked or full database,
 * an output it cannot write): one sentence that says what happened and what to do, instead of
 * Prisma's "Invalid `prisma.lease.create()` invocation" or a stack. Pure.
 */
import { errorChain } from "../error-chain.js";

const codeOf = (e: unknown) => (typeof e === "object" && e !== null && "code" in e ? String((e as { code: unknown }).code) : "");
const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * Prisma's "Invalid `prisma.lease.create()` invocation:" text, then the driver's own words: those
 * words alone. Any other message is kept whole (a model's contract lists its problems on lines).
 */
const withoutInvocation = (text: string) =>
  /Invalid `prisma\.[^`]*` invocation/.test(text) ? (text.trim().split("\n").filter((l) => l.trim()).at(-1)?.trim() ?? text) : text;

export function commandErrorWords(err: unknown): string {
  const all = errorChain(err);
  const text = all.map((e) => `${codeOf(e)} ${messageOf(e)}`).join("\n");
  if (/SQLITE_BUSY|database is locked/i.test(text)) {
    return (
      "The database is locked: another process holds its write lock and has not let go (a paused or hung artdesc process? " +
      "`fuser` on the database file names it). Nothing more was written; run the command again once that process ends or resumes."
    );
  }
  if (/SQLITE_FULL|database or disk is full/i.test(text)) {
    return "The disk that holds the database is full: nothing more was written. Free some space and run the command again.";
  }
  if (/SQLITE_READONLY|attempt to write a readonly database/i.test(text)) {
    return "The database cannot be written (a read-only file, folder or file system): nothing more was written.";
  }
  return withoutInvocation(messageOf(err));
}

const OUTPUT_WORDS: Record<string, string> = {
  ENOSPC: "no space left on the device",
  EDQUOT: "the disk quota is used up",
  EFBIG: "the file grew past the size allowed (ulimit -f)",
  EIO: "the device reported an input/output error",
};

/** A write to the command's output (a file, or the file stdout was sent to) that failed. */
export function outputErrorWords(code: string): string {
  return `Could not write the output: ${OUTPUT_WORDS[code] ?? code}. What was written so far is incomplete.`;
}
