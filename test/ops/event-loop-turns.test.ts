import { describe, expect, it } from "vitest";
import { TurnLane } from "../../src/ops/event-loop-turns.js";

const busy = (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};

describe("TurnLane", () => {
  it("runs one piece at a time, in order, with what the loop had pending run between two pieces", async () => {
    const lane = new TurnLane();
    const order: string[] = [];
    // Each piece leaves work for the loop (as a request arriving meanwhile would): it runs before the next piece.
    const pieces = ["a", "b", "c"].map((name) =>
      lane.run(() => {
        order.push(name);
        setImmediate(() => order.push(`${name}'s I/O`));
        busy(2);
        return name;
      }),
    );
    expect(await Promise.all(pieces)).toEqual(["a", "b", "c"]);
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(["a", "a's I/O", "b", "b's I/O", "c", "c's I/O"]);
  });

  it("is held for the synchronous part only: a piece that returns a promise lets the next one start, and its value is awaited", async () => {
    const lane = new TurnLane();
    let release = () => {};
    const slow = lane.run(() => new Promise<string>((resolve) => (release = () => resolve("slow"))));
    expect(await lane.run(() => "quick")).toBe("quick");
    release();
    expect(await slow).toBe("slow");
  });

  it("a piece that throws fails its own caller only", async () => {
    const lane = new TurnLane();
    const failed = lane.run(() => {
      throw new Error("bad query");
    });
    await expect(failed).rejects.toThrow("bad query");
    expect(await lane.run(() => 1)).toBe(1);
  });
});
