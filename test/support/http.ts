import type { Server } from "node:http";
import { listen } from "../../src/server.js";

/** Starts `server` on a free port of 127.0.0.1: its base URL, and how to close it. */
export async function serveOnFreePort(server: Server): Promise<{ base: string; close: () => void }> {
  const { port } = await listen(server, 0, "127.0.0.1");
  return { base: `http://127.0.0.1:${port}`, close: () => server.close() };
}
