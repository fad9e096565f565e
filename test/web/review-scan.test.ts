import { describe, expect, it } from "vitest";
import { type Batch, scanConnection } from "../../src/web/review-scan.js";

/** scanConnection over a real list paged as a Relay connection is (cursor = index), both ways. */

function connection(values: number[], size: number) {
  const calls: (string | null)[] = [];
  const forward = async (cursor: string | null): Promise<Batch<number>> => {
    calls.push(cursor);
    const from = cursor === null ? 0 : Number(cursor) + 1;
    const items = values.slice(from, from + size).map((value, i) => ({ cursor: String(from + i), value }));
    return { items, more: from + size < values.length };
  };
  const backward = async (cursor: string | null): Promise<Batch<number>> => {
    calls.push(cursor);
    const to = cursor === null ? values.length : Number(cursor);
    const from = Math.max(0, to - size);
    return { items: values.slice(from, to).map((value, i) => ({ cursor: String(from + i), value })), more: from > 0 };
  };
  return { forward, backward, calls };
}

const even = (v: number) => v % 2 === 0;
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe("scanConnection", () => {
  it("fills a page from several batches and resumes after the last match", async () => {
    const c = connection(range(100), 10);
    const r = await scanConnection(c.forward, even, { start: null, backward: false, want: 12, maxBatches: 5 });
    expect(r.matches.map((m) => m.value)).toEqual(range(12).map((i) => i * 2));
    expect(r.resume).toBe("22");
    expect(r.bounded).toBe(false);
    const more = await scanConnection(c.forward, even, { start: r.resume, backward: false, want: 12, maxBatches: 5 });
    expect(more.matches[0]!.value).toBe(24);
  });

  it("says where it ended: null at the end of the connection, even when the page fills on the last item", async () => {
    const c = connection(range(10), 4);
    const all = await scanConnection(c.forward, even, { start: null, backward: false, want: 60, maxBatches: 5 });
    expect(all.matches).toHaveLength(5);
    expect(all.resume).toBeNull();
    const exact = await scanConnection(c.forward, (v) => v === 9, { start: null, backward: false, want: 1, maxBatches: 5 });
    expect(exact.resume).toBeNull();
  });

  it("stops after maxBatches, with the cursor of the last item looked at", async () => {
    const c = connection(range(1000), 10);
    const r = await scanConnection(c.forward, (v) => v === 999, { start: null, backward: false, want: 5, maxBatches: 3 });
    expect(r).toMatchObject({ matches: [], examined: 30, resume: "29", bounded: true });
    expect(c.calls).toEqual([null, "9", "19"]);
  });

  it("walks backward from a cursor, keeping the connection's order", async () => {
    const c = connection(range(100), 10);
    const r = await scanConnection(c.backward, even, { start: "50", backward: true, want: 8, maxBatches: 5 });
    expect(r.matches.map((m) => m.value)).toEqual([34, 36, 38, 40, 42, 44, 46, 48]);
    expect(r.resume).toBe("34");
    const start = await scanConnection(c.backward, even, { start: "6", backward: true, want: 8, maxBatches: 5 });
    expect(start.matches.map((m) => m.value)).toEqual([0, 2, 4]);
    expect(start.resume).toBeNull();
  });

  it("an empty connection is one call and no resume", async () => {
    const c = connection([], 10);
    expect(await scanConnection(c.forward, even, { start: null, backward: false, want: 5, maxBatches: 5 })).toEqual({ matches: [], examined: 0, resume: null, bounded: false });
    expect(c.calls).toHaveLength(1);
  });
});
