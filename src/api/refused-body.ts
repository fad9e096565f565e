import type { IncomingMessage, ServerResponse } from "node:http";

/**
 * A refused request's body still on its way is read and dropped after the answer, at most this many
 * bytes and for at most this long (ms), before the connection is closed: closing a connection with
 * bytes unread makes the kernel answer them with a reset, which can reach the client before it
 * reads the answer (it then sees EPIPE or ECONNRESET instead of the 413: one in four 1.4 MB bodies
 * sent in one write did). A "lingering close", as web servers do it.
 */
export const REFUSED_BODY_DRAIN = { bytes: 16 * 1024 * 1024, ms: 5_000 };

/**
 * Call before answering a refused request (GraphQL's and the workbench forms'): a body still on
 * its way is drained once the answer is out (drainRefused); a request read whole gets
 * `Connection: close`.
 */
export function refusedConnection(res: ServerResponse): void {
  const req = res.req;
  if (!req.complete && !req.destroyed) res.once("finish", () => drainRefused(req));
  else res.setHeader("connection", "close");
}

/**
 * Reads and drops the rest of a refused request's body; past REFUSED_BODY_DRAIN's bytes or time the
 * connection is closed (the client then may see a reset, as before). Once the body has ended, the
 * connection is an ordinary kept-alive one. The bytes are counted on the socket: Node's server
 * itself drops ("dumps") the body of a request nobody read, uncounted.
 */
function drainRefused(req: IncomingMessage): void {
  const socket = req.socket;
  let left = REFUSED_BODY_DRAIN.bytes;
  const cut = () => socket.destroy();
  const timer = setTimeout(cut, REFUSED_BODY_DRAIN.ms);
  timer.unref();
  const onData = (chunk: Buffer) => {
    left -= chunk.length;
    if (left < 0) cut();
  };
  const settled = () => {
    clearTimeout(timer);
    socket.off("data", onData);
  };
  socket.on("data", onData);
  req.once("end", settled);
  socket.once("close", settled);
  // A body read in part and paused (readBody): what is left flows, to no listener.
  req.resume();
  socket.resume();
}
