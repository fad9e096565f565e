import { BlockList, isIP, isIPv4 } from "node:net";

/**
 * Who a request comes from. The socket's address, unless that is a proxy named in TRUSTED_PROXIES:
 * then X-Forwarded-For is read from the right (the entry the nearest proxy appended) past every
 * trusted address, and the first other address is the client. Entries left of it were written by
 * the client (or proxies it chose) and are never believed; without trusted proxies the header is
 * ignored, since any client can write it.
 */

/** The proxies whose X-Forwarded-For is believed: addresses and CIDR ranges, IPv4 or IPv6. */
export class TrustedProxies {
  readonly #list = new BlockList();
  readonly size: number;

  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const parsed = parseProxyEntry(entry);
      if (!parsed) throw new Error(`not an IP address or CIDR range: ${JSON.stringify(entry)}`);
      if (parsed.prefix === null) this.#list.addAddress(parsed.address, parsed.family);
      else this.#list.addSubnet(parsed.address, parsed.prefix, parsed.family);
    }
    this.size = entries.length;
  }

  has(address: string): boolean {
    const plain = unmapped(address);
    const family = isIP(plain);
    return family !== 0 && this.size > 0 && this.#list.check(plain, family === 4 ? "ipv4" : "ipv6");
  }
}

const built = new WeakMap<readonly string[], TrustedProxies>();

/** The TrustedProxies of a configuration's TRUSTED_PROXIES list, built once per list. */
export function trustedProxies(entries: readonly string[]): TrustedProxies {
  let proxies = built.get(entries);
  if (!proxies) built.set(entries, (proxies = new TrustedProxies(entries)));
  return proxies;
}

/** An address or CIDR range ("10.0.0.0/8", "fd00::/8"), or null when it is neither. */
export function parseProxyEntry(entry: string): { address: string; prefix: number | null; family: "ipv4" | "ipv6" } | null {
  const [address = "", prefixText, ...rest] = entry.trim().split("/");
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return null;
  const kind = family === 4 ? "ipv4" : "ipv6";
  if (prefixText === undefined) return { address, prefix: null, family: kind };
  if (!/^\d{1,3}$/.test(prefixText)) return null;
  const prefix = Number(prefixText);
  return prefix <= (family === 4 ? 32 : 128) ? { address, prefix, family: kind } : null;
}

/** What clientOf reads of a request (node's IncomingMessage has both). */
export interface ClientRequestLike {
  socket?: { remoteAddress?: string };
  headers?: Record<string, string | string[] | undefined>;
}

/** The client's key (see clientKey) for a request that reached this server through `proxies`. */
export function clientOf(req: ClientRequestLike, proxies: TrustedProxies): string {
  let address = req.socket?.remoteAddress;
  if (address && proxies.size > 0 && proxies.has(address)) {
    const header = req.headers?.["x-forwarded-for"];
    const hops = (Array.isArray(header) ? header.join(",") : (header ?? "")).split(",").map((h) => h.trim()).filter(Boolean);
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = unmapped(hops[i]!);
      // Garbage where an address belongs: the last proxy we believe is as far as we can see.
      if (isIP(hop) === 0) break;
      address = hop;
      if (!proxies.has(hop)) break;
    }
  }
  return clientKey(address);
}

/** IPv4-mapped IPv6 ("::ffff:10.0.0.1") as IPv4; a zone index dropped. */
function unmapped(address: string): string {
  const plain = address.split("%")[0]!.toLowerCase();
  return /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(plain)?.[1] ?? plain;
}

/**
 * The key a client is counted under (subscription streams, wrong tokens): its address, IPv4-mapped
 * IPv6 as IPv4, and IPv6 by its /64 prefix (one host usually holds a whole /64).
 */
export function clientKey(address: string | undefined): string {
  if (!address) return "unknown";
  const plain = address.split("%")[0]!.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(plain);
  if (mapped) return mapped[1]!;
  if (isIPv4(plain) || !plain.includes(":")) return plain;
  const groups = expandIPv6(plain);
  return groups ? `${groups.slice(0, 4).join(":")}::/64` : plain;
}

/** The eight 16-bit groups of an IPv6 address (no leading zeros), or null when it is not one. */
function expandIPv6(address: string): string[] | null {
  const halves = address.split("::");
  if (halves.length > 2) return null;
  const part = (s: string | undefined) => (s ? s.split(":") : []);
  const head = part(halves[0]);
  const tail = part(halves[1]);
  const fill = 8 - head.length - tail.length;
  if ((halves.length === 2 && fill < 1) || (halves.length === 1 && fill !== 0)) return null;
  const groups = [...head, ...Array<string>(halves.length === 2 ? fill : 0).fill("0"), ...tail];
  if (!groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return null;
  return groups.map((g) => g.replace(/^0+(?=.)/, ""));
}
