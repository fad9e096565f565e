/**
 * IMAGE_SOURCE_URL: the API's /images/ base that a worker on another machine fetches stored images
 * from. A bare origin gets `/images/`, a path ending in `/images` gets its slash; anything else is
 * refused, so a typo cannot send every fetch to the wrong route. Pure.
 */
export function parseImageSourceUrl(raw: string): { url: string } | { problem: string } {
  let u: URL;
  try {
    u = new URL(raw.trim());
  } catch {
    return { problem: "not a URL like http://api:4000/images/" };
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") return { problem: `must be http or https, not ${u.protocol.replace(/:$/, "")}` };
  if (u.username || u.password) return { problem: "must not hold a user name or password (the /images/ route is public)" };
  if (u.search || u.hash || raw.includes("?") || raw.includes("#")) return { problem: "must have no query string or fragment" };
  let path = u.pathname;
  if (path === "/") path = "/images/";
  else if (path.endsWith("/images")) path += "/";
  if (!path.endsWith("/images/")) return { problem: "must be the API's /images/ base, like http://api:4000/images/ (its path ends in /images/)" };
  u.pathname = path;
  return { url: u.href };
}
