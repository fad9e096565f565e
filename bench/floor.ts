/**
 * The floor bench:api measures the API against: node:http and better-sqlite3, one prepared
 * statement per answer, JSON.stringify, nothing else (no GraphQL, no Prisma, no limits, no
 * logging). Each route answers exactly the JSON that the GraphQL operation of the same name in
 * bench/queries.ts answers; bench/api.ts checks the bodies are equal before it measures.
 *
 *   tsx bench/floor.ts <database file> <port> [processes]
 *
 * With more than one process (node:cluster, as API_WORKERS does for the API), each has its own
 * connection.
 */
import cluster from "node:cluster";
import { createServer } from "node:http";
import Database from "better-sqlite3";

const [file, port, processes = "1"] = process.argv.slice(2);
if (!file || !port) throw new Error("usage: tsx bench/floor.ts <database file> <port> [processes]");

if (cluster.isPrimary && Number(processes) > 1) {
  for (let i = 0; i < Number(processes); i++) cluster.fork();
} else {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  // artworks(creator: "Goya", limit: 100) { title description }: active works by a creator one of
  // whose labels holds the word, in the API's order (inception, nulls last, then QID).
  const artworks = db.prepare(`
    SELECT a.title, d.text AS description FROM Artwork a LEFT JOIN Description d ON d.id = a.currentDescriptionId
    WHERE a.state = 'ACTIVE' AND a.id IN (
      SELECT ac.artworkId FROM ArtworkCreator ac JOIN CreatorLabel cl ON cl.creatorId = ac.creatorId WHERE cl.normalized LIKE '% ' || ? || ' %')
    ORDER BY a.inception IS NULL, a.inception, a.qidNumber LIMIT ?`);
  // artworksConnection(first: n) { edges { node { title description } } }: active works in id order.
  const connection = db.prepare(`
    SELECT a.title, d.text AS description FROM Artwork a LEFT JOIN Description d ON d.id = a.currentDescriptionId
    WHERE a.state = 'ACTIVE' ORDER BY a.id LIMIT ?`);
  // artwork(id: qid) { ... on Artwork { title description descriptions { text } } }: the history newest first.
  const artwork = db.prepare(`
    SELECT a.title, d.text AS description,
           (SELECT json_group_array(json_object('text', h.text)) FROM
              (SELECT text FROM Description WHERE artworkId = a.id ORDER BY id DESC LIMIT ?) h) AS history
    FROM Artwork a LEFT JOIN Description d ON d.id = a.currentDescriptionId WHERE a.qid = ?`);

  const answer = (url: URL): unknown => {
    const q = url.searchParams;
    switch (url.pathname) {
      case "/artworks":
        return { artworks: artworks.all(q.get("creator"), Number(q.get("limit"))) };
      case "/connection":
        return { artworksConnection: { edges: connection.all(Number(q.get("first"))).map((node) => ({ node })) } };
      case "/artwork": {
        const row = artwork.get(Number(q.get("history")), q.get("id")) as { title: string; description: string | null; history: string } | undefined;
        return { artwork: row ? { title: row.title, description: row.description, descriptions: JSON.parse(row.history) } : null };
      }
      default:
        return null;
    }
  };

  createServer((req, res) => {
    const data = answer(new URL(req.url ?? "/", "http://floor"));
    if (!data) {
      res.writeHead(404).end();
      return;
    }
    const body = JSON.stringify({ data });
    res.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body) });
    res.end(body);
  }).listen(Number(port), "127.0.0.1");
}
