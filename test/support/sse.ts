/** Reads a GraphQL-over-SSE stream (graphql-yoga's format) until it completes; calls onEvent per event. */
export async function readEvents(res: Response, onEvent: (e: any) => void = () => {}): Promise<any[]> {
  const events: any[] = [];
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let cut: number;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      if (block.startsWith("event: complete")) return events;
      const data = block
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trim())
        .join("");
      if (data) {
        events.push(JSON.parse(data));
        onEvent(events.at(-1));
      }
    }
  }
  return events;
}
