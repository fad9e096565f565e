import type { PullProgress } from "./pull.js";

/**
 * Progress output for `models pull`: a redrawn bar on a terminal, plain lines (start, every 10%,
 * done) otherwise, so logs from CI or Docker stay readable.
 */

export function formatBytes(n: number): string {
  const units = ["B", "kB", "MB", "GB"];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function progressPrinter(stream: { write(s: string): unknown; isTTY?: boolean; columns?: number }): (e: PullProgress) => void {
  const tty = Boolean(stream.isTTY);
  let lastDecile = -1;
  let lastDraw = 0;
  return (e) => {
    switch (e.kind) {
      case "retry":
        stream.write(`${tty ? "\r\x1b[K" : ""}${e.reason}; retrying (${e.attempt})\n`);
        return;
      case "absent":
        if (!tty) stream.write(`${e.file}: not in the repository (optional)\n`);
        return;
      case "start":
        lastDecile = -1;
        if (!tty) {
          const from = e.resumedFrom > 0 ? `, resuming at ${formatBytes(e.resumedFrom)}` : "";
          stream.write(`${e.file}: downloading ${e.total === null ? "(size unknown)" : formatBytes(e.total)}${from}\n`);
        }
        return;
      case "data": {
        if (e.total === null || e.total === 0) return;
        const fraction = e.received / e.total;
        if (tty) {
          const now = Date.now();
          if (now - lastDraw < 100 && e.received < e.total) return;
          lastDraw = now;
          const width = Math.max(10, Math.min(40, (stream.columns ?? 80) - e.file.length - 30));
          const filled = Math.round(fraction * width);
          stream.write(`\r${e.file} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${formatBytes(e.received)}\x1b[K`);
        } else {
          const decile = Math.floor(fraction * 10);
          if (decile > lastDecile && decile < 10) {
            lastDecile = decile;
            if (decile > 0) stream.write(`${e.file}: ${decile * 10}% (${formatBytes(e.received)})\n`);
          }
        }
        return;
      }
      case "done":
        stream.write(`${tty ? "\r\x1b[K" : ""}${e.file}: ${e.skipped ? "already complete" : "done"}, ${formatBytes(e.bytes)}\n`);
        return;
    }
  };
}
