import { expect, it } from "vitest";
import { commandErrorWords, outputErrorWords } from "../../src/ops/command-errors.js";

it("a locked, full or read-only database is one sentence that says what to do, whatever wraps SQLite's error", () => {
  const busy = Object.assign(new Error("database is locked"), { code: "SQLITE_BUSY" });
  const prisma = new Error("\nInvalid `prisma.lease.create()` invocation:\n\n\ndatabase is locked", { cause: busy });
  expect(commandErrorWords(prisma)).toMatch(/^The database is locked: another process holds its write lock .* Nothing more was written/);
  expect(commandErrorWords(new Error("Invalid `prisma.lease.deleteMany()` invocation:\n\ndatabase or disk is full"))).toBe(
    "The disk that holds the database is full: nothing more was written. Free some space and run the command again.",
  );
  expect(commandErrorWords(Object.assign(new Error("attempt to write a readonly database"), { code: "SQLITE_READONLY" }))).toMatch(/cannot be written/);
});

it("an output that cannot be written names the reason; Prisma's invocation text is cut to the driver's words; other messages stay whole", () => {
  expect(outputErrorWords("ENOSPC")).toBe("Could not write the output: no space left on the device. What was written so far is incomplete.");
  expect(outputErrorWords("EFBIG")).toMatch(/ulimit -f/);
  expect(outputErrorWords("EWHATEVER")).toBe("Could not write the output: EWHATEVER. What was written so far is incomplete.");
  expect(commandErrorWords(new Error("\nInvalid `prisma.x.y()` invocation:\n\nsomething else broke"))).toBe("something else broke");
  const contract = "models/x does not match the SmolVLM ONNX contract:\n - embed_tokens: missing\n - decoder: wrong inputs";
  expect(commandErrorWords(new Error(contract))).toBe(contract);
  // A full disk elsewhere (a model download) is its own message, not the output's.
  expect(commandErrorWords(Object.assign(new Error("ENOSPC: no space left on device, write 'models/x.part'"), { code: "ENOSPC" }))).toBe("ENOSPC: no space left on device, write 'models/x.part'");
  expect(commandErrorWords("plain")).toBe("plain");
});
