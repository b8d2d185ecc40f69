// Debian's Chromium, headless, through playwright-core: the one way the browser tests start a browser.
// (Not a test file itself: `node --test` runs only the *.test.mjs files of this folder.)

import { createRequire } from 'node:module';

// ESM imports ignore NODE_PATH; require() honours it, which is how the harness points at playwright-core.
const require = createRequire(import.meta.url);

const CHROMIUM = process.env.LAKEHOUSE_CHROMIUM || '/usr/bin/chromium';

// As root, without a sandbox; without the background-networking flags Chromium's own connections are
// refused by a closed network, many at a time.
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

// Launches the browser with `extraArgs` after the common ones.
export async function launchChromium(extraArgs = []) {
  let chromium;
  try {
    ({ chromium } = require('playwright-core'));
  } catch (e) {
    throw new Error(`playwright-core is not importable (${e.message}); install it and set NODE_PATH, see docs/page.md`);
  }
  return chromium.launch({ executablePath: CHROMIUM, args: [...ARGS, ...extraArgs] });
}
