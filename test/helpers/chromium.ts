// Launch the system's Chromium (Debian package, installed by scripts/ensure-peers.sh) headless through
// puppeteer-core, with a fresh profile removed on close. No browser is ever downloaded.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import puppeteer, { type Browser } from 'puppeteer-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Throws with the fix when Chromium is missing (tests must fail loudly, never skip). */
export function assertChromium(): void {
  try {
    execFileSync(CHROMIUM_PATH, ['--version'], { stdio: 'pipe', timeout: 20_000 });
  } catch (err) {
    throw new Error(`Chromium is missing at ${CHROMIUM_PATH} (${(err as Error).message}): run scripts/ensure-peers.sh (Debian package "chromium")`);
  }
}

export async function launchChromium(): Promise<{ browser: Browser; close: () => Promise<void> }> {
  assertChromium();
  const profile = mkdtempSync(join(tmpdir(), 'meshmedic-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    userDataDir: profile,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage', `--user-data-dir=${profile}`],
  });
  return {
    browser,
    close: async () => {
      await browser.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
