import { describe, expect, it } from "vitest";
import { clientKey, clientOf, parseProxyEntry, TrustedProxies } from "../../src/api/client-address.js";
import { loadConfig } from "../../src/config.js";

describe("clientKey", () => {
  it.each([
    ["127.0.0.1", "127.0.0.1"],
    ["::ffff:10.1.2.3", "10.1.2.3"],
    ["2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"],
    ["2001:db8:1:2::1", "2001:db8:1:2::/64"],
    ["2001:0DB8:0001:0002::ffff", "2001:db8:1:2::/64"],
    ["fe80::1%eth0", "fe80:0:0:0::/64"],
    ["::1", "0:0:0:0::/64"],
    [undefined, "unknown"],
    ["", "unknown"],
  ])("%s counts as %s", (address, key) => {
    expect(clientKey(address)).toBe(key);
  });
});

describe("clientOf", () => {
  const proxies = new TrustedProxies(["10.0.0.1", "172.16.0.0/12", "fd00::/8"]);
  const req = (address: string, forwarded?: string | string[]) => ({ socket: { remoteAddress: address }, headers: forwarded === undefined ? {} : { "x-forwarded-for": forwarded } });

  it.each([
    ["a client straight to the server: its socket, the header ignored", req("203.0.113.9", "198.51.100.1"), "203.0.113.9"],
    ["through a trusted proxy: the address it appended", req("10.0.0.1", "198.51.100.1"), "198.51.100.1"],
    ["IPv4-mapped socket of a trusted proxy", req("::ffff:10.0.0.1", "198.51.100.1"), "198.51.100.1"],
    ["a forged entry left of the proxy's is not believed", req("10.0.0.1", "1.2.3.4, 198.51.100.1"), "198.51.100.1"],
    ["two trusted proxies in a row are walked past", req("10.0.0.1", "198.51.100.1, 172.20.1.1"), "198.51.100.1"],
    ["several header lines are one list", req("10.0.0.1", ["1.2.3.4", "198.51.100.1, 172.20.1.1"]), "198.51.100.1"],
    ["garbage appended: the last believed proxy", req("10.0.0.1", "198.51.100.1, not-an-ip"), "10.0.0.1"],
    ["a trusted proxy without the header: the proxy", req("10.0.0.1"), "10.0.0.1"],
    ["only trusted hops: the leftmost of them", req("10.0.0.1", "172.16.5.5"), "172.16.5.5"],
    ["an IPv6 client through an IPv6 proxy: its /64", req("fd00::2", "2001:db8:1:2::99"), "2001:db8:1:2::/64"],
  ])("%s", (_what, r, key) => {
    expect(clientOf(r, proxies)).toBe(key);
  });

  it("believes nothing without trusted proxies", () => {
    expect(clientOf(req("10.0.0.1", "198.51.100.1"), new TrustedProxies([]))).toBe("10.0.0.1");
  });

  it("TRUSTED_PROXIES takes addresses and CIDR ranges and names each bad entry", () => {
    expect(loadConfig({ TRUSTED_PROXIES: " 10.0.0.1, fd00::/8 " }).TRUSTED_PROXIES).toEqual(["10.0.0.1", "fd00::/8"]);
    expect(() => loadConfig({ TRUSTED_PROXIES: "10.0.0.1, proxy.local, 10.0.0.0/33, ::1/129, 1.2.3.4/8/1" })).toThrow(/"proxy.local"[\s\S]*"10.0.0.0\/33"[\s\S]*"::1\/129"[\s\S]*"1.2.3.4\/8\/1"/);
    for (const bad of ["", "/8", "10.0.0.1/", "10.0.0.1/x", "10.0.0.256"]) expect(parseProxyEntry(bad), bad).toBeNull();
  });
});
