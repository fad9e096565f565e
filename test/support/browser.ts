import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { onTestFailed } from "vitest";
import { ROOT } from "./cli.js";

/** Debian's Chromium (`apt-get install chromium`; .ci/run does it). Browsers are never downloaded. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Where a failed browser test leaves its screenshot and page HTML. */
export const BROWSER_ARTIFACTS = join(ROOT, "test-results", "browser");

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`No Chromium at ${CHROMIUM}: install Debian's package (apt-get install chromium) or set CHROMIUM_PATH`);
  }
  return chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
}

export interface OfflinePage {
  page: Page;
  context: BrowserContext;
  /** Requests the page tried to make to any other origin (all were refused). */
  foreignRequests: string[];
  /** Console errors and Content-Security-Policy violations reported by the page. */
  errors: string[];
}

/**
 * A page that may reach `origin` and nothing else, as on a machine without internet. When the
 * running test fails, a screenshot and the page's HTML are saved under BROWSER_ARTIFACTS.
 */
export async function openOfflinePage(browser: Browser, origin: string, name: string): Promise<OfflinePage> {
  const context = await browser.newContext();
  const foreignRequests: string[] = [];
  const errors: string[] = [];
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(`${origin}/`) || url.startsWith("blob:") || url.startsWith("data:")) return route.continue();
    foreignRequests.push(url);
    return route.abort("internetdisconnected");
  });
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(String(e)));
  onTestFailed(async () => {
    mkdirSync(BROWSER_ARTIFACTS, { recursive: true });
    const file = join(BROWSER_ARTIFACTS, name.replace(/[^\w.-]+/g, "-"));
    await page.screenshot({ path: `${file}.png`, fullPage: true }).catch(() => undefined);
    writeFileSync(`${file}.html`, await page.content().catch((e: unknown) => `could not read the page: ${String(e)}`));
  });
  return { page, context, foreignRequests, errors };
}
