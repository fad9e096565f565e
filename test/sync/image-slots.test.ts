import { expect, it } from "vitest";
import sharp from "sharp";
import { IMAGE_SLOTS, normalizeImage, Slots } from "../../src/sync/images.js";

it("runs at most `size` tasks at once, first come first served, and frees the slot of one that fails", async () => {
  const slots = new Slots(2);
  let running = 0;
  let most = 0;
  const order: number[] = [];
  const task = (n: number, fail = false) =>
    slots.run(async () => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      order.push(n);
      if (fail) throw new Error(`task ${n} failed`);
      return n;
    });
  const results = await Promise.allSettled([task(1), task(2, true), task(3), task(4), task(5)]);
  expect(most).toBe(2);
  expect(order).toEqual([1, 2, 3, 4, 5]);
  expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled", "fulfilled", "fulfilled"]);
  expect(slots.waiting).toBe(0);
});

it("image work is bounded: libvips one thread per image, at most cores - 1 images at once (at least 1)", async () => {
  expect(sharp.concurrency()).toBe(1);
  expect(IMAGE_SLOTS).toBeGreaterThanOrEqual(1);
  // Many images at once still all come out right.
  const input = await sharp({ create: { width: 800, height: 600, channels: 3, background: "#806040" } }).jpeg().toBuffer();
  const out = await Promise.all(Array.from({ length: 6 }, () => normalizeImage(input, 256)));
  expect(out.map((o) => [o.width, o.height])).toEqual(Array(6).fill([256, 192]));
});
