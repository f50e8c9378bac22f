import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { expect, onTestFinished } from 'vitest';

/** Debian's Chromium (`apt-get install chromium`); playwright-core brings no browser of its own. */
const CHROMIUM = '/usr/bin/chromium';
/** Headless, and nothing that reaches for the network: this machine's network is closed. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const chromiumMissing = !existsSync(CHROMIUM);

/**
 * Whether `file`'s browser tests are skipped here: a developer machine without Chromium still
 * passes `npm test` (with a warning saying what to install); CI sets REQUIRE_BROWSER_TESTS=1 so a
 * missing browser fails the run instead of silently skipping the pages.
 */
export function browserTestsSkipped(file: string): boolean {
  const skipped = chromiumMissing && process.env.REQUIRE_BROWSER_TESTS !== '1';
  if (skipped) console.warn(`${file} skipped: ${CHROMIUM} is missing (apt-get install chromium to run it)`);
  return skipped;
}

export async function launchChromium(): Promise<Browser> {
  if (chromiumMissing) throw new Error(`REQUIRE_BROWSER_TESTS=1 but ${CHROMIUM} is missing: apt-get install chromium`);
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/** The PNG signature every PNG file starts with. */
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * Takes a full-page screenshot and checks that it is a PNG of at least `minBytes`: a blank or
 * unstyled page compresses far below what a rendered one takes.
 */
export async function expectRenderedScreenshot(page: Page, minBytes: number): Promise<void> {
  const png = await page.screenshot({ fullPage: true, type: 'png' });
  expect(png.subarray(0, PNG_SIGNATURE.length)).toEqual(PNG_SIGNATURE);
  expect(png.length).toBeGreaterThan(minBytes);
}

/**
 * A page in a browser context of its own, closed when the current test finishes. Script errors
 * and Content-Security-Policy refusals (which the browser reports on its console) land in `errors`.
 */
export async function openTestPage(browser: Browser, viewport: { width: number; height: number }): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport });
  onTestFinished(() => context.close());
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (message) => {
    if (message.type() === 'error' && message.text().includes('Content Security Policy')) errors.push(message.text());
  });
  return { page, errors };
}
