// The README screenshot of the metrics-collector's Web Vitals section fed by the SDK, for real:
// headless Chromium loads four shop pages (slow hero images, layout shifts, slow click
// handlers) through the built IIFE, a real browser-relay forwards the vitals, and the
// collector's web UI is captured into docs/screenshots/metrics-vitals-sdk.png.
//   (cd clients/browser && npm ci && npm run build) && cargo build -p error-tracker -p metrics-collector -p browser-relay
//   node clients/browser/test/e2e/screenshot.mjs
// Not part of the tests; run it again after a visible change.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, launchBrowser } from '../../../../tests/browser/harness.mjs';
import { PROJECT, sleep, startStack } from './stack.mjs';

const PAGES = [
  { path: '/', img: 350, shift: 0, inp: 40 },
  { path: '/products/42', img: 1300, shift: 40, inp: 150 },
  { path: '/cart', img: 2200, shift: 110, inp: 260 },
  { path: '/checkout', img: 4300, shift: 260, inp: 620 },
];

const page = (url) => `<h1>Shop</h1><div id="banner"></div>
<p>Mugs, scarves and gift cards.</p>
<button id="buy">Add to cart</button>
<img id="hero" src="/img/hero.svg?delay=${url.searchParams.get('img')}" width="800" height="400" alt="">
<script>
  setTimeout(() => { document.getElementById('banner').style.height = '${url.searchParams.get('shift')}px'; }, 200);
  document.getElementById('buy').addEventListener('click', () => {
    const end = performance.now() + ${url.searchParams.get('inp')};
    while (performance.now() < end) {}
  });
  fetch('/api/cart?session=abc');
</script>`;

const stack = await startStack({ pages: { '*': page } });
const browser = await launchBrowser();
try {
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const tab = await context.newPage();
  for (let round = 0; round < 3; round++) {
    for (const p of PAGES) {
      const k = 1 + (round - 1) * 0.15;
      const q = new URLSearchParams({ img: Math.round(p.img * k), shift: Math.round(p.shift * k), inp: Math.round(p.inp * k) });
      await tab.goto(`${stack.pageOrigin}${p.path}?${q}`);
      await tab.waitForFunction(() => document.getElementById('hero').complete);
      await sleep(300);
      await tab.click('#buy');
      await sleep(200);
      await tab.goto('about:blank'); // hidden: LCP, CLS, INP reported and beaconed
    }
  }
  await context.close();
  // Wait for every page's vitals in the dashboard.
  for (let i = 0; i < 100; i++) {
    const d = await stack.metrics.api('GET', `/api/dashboard?period=1h&project=${PROJECT}`);
    if ((d.web_vitals?.by_page || []).filter((r) => r.inp != null).length === PAGES.length) break;
    await sleep(200);
  }
  const out = join(REPO_ROOT, 'docs/screenshots');
  mkdirSync(out, { recursive: true });
  const ui = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    storageState: { cookies: [], origins: [{ origin: stack.metrics.url, localStorage: [{ name: 'api_key', value: stack.metrics.apiKey }] }] },
  });
  const view = await ui.newPage();
  view.on('pageerror', (e) => console.error('page error:', e));
  await view.goto(`${stack.metrics.url}/?project=${PROJECT}&period=1h`);
  await view.locator('#vitals-table tbody tr').first().waitFor();
  await sleep(400);
  const file = join(out, 'metrics-vitals-sdk.png');
  await view.locator('#vitals').screenshot({ path: file });
  console.log('written', file);
  await ui.close();
} finally {
  await browser.close();
  await stack.stop();
}
