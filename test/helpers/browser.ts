// Debian's Chromium, headless, driven by playwright-core (which downloads no
// browser of its own). The flags keep it from reaching out to the internet
// at start (this machine's network is closed; each attempt would be refused
// and logged) and let it run as root.

import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
