import { describe, expect, it } from "vitest";
import { promotedPerCall } from "../support/gc-trace.js";

describe("what an executed operation leaves for the collector", () => {
  // The limits plugin gives each operation's signal its own addEventListener and throwIfAborted.
  // Written as arrow functions there, they kept the operation's arguments and context through
  // every scavenge (2.3–2.7 kB promoted a request); as bound functions they do not.
  it("promotes under 1 kB per POST { __typename } with the response cache off", () => {
    const { scavenges, bytesPerCall } = promotedPerCall("test/support/graphql-gc-child.ts", 3000);
    expect(scavenges, "too few scavenges to tell").toBeGreaterThanOrEqual(5);
    expect(bytesPerCall).toBeLessThan(1024);
  }, 60_000);
});
