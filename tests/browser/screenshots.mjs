// Takes the README screenshots of the web UIs into docs/screenshots/:
//   error-tracker: errors-list(.png|-phone.png) and error-detail(.png|-phone.png)
//   log-viewer:    logs(.png|-phone.png), over scripts/demo-logs.py's demo containers
//   metrics-collector: metrics(.png|-phone.png), over six hours of a demo shop's metrics
//   cargo build -p error-tracker -p log-viewer -p metrics-collector &&
//     node tests/browser/screenshots.mjs [errors|logs|metrics]
// Not part of CI; run it again after a visible change to the UI.

import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  REPO_ROOT, demoMetrics, launchBrowser, postMetrics, seedStandard, seedTracebacks, startLogViewer, startMetrics,
  startService, waitForEntries, waitForMetrics,
} from './harness.mjs';

const OUT = join(REPO_ROOT, 'docs/screenshots');
const VIEWPORTS = [
  { suffix: '', viewport: { width: 1280, height: 800 }, scale: 1 },
  { suffix: '-phone', viewport: { width: 390, height: 844 }, scale: 2, mobile: true },
];

function newContext(browser, svc, { viewport, scale, mobile }) {
  return browser.newContext({
    viewport, deviceScaleFactor: scale, isMobile: !!mobile, hasTouch: !!mobile,
    storageState: { cookies: [], origins: [{ origin: svc.url, localStorage: [{ name: 'api_key', value: svc.apiKey }] }] },
  });
}

async function errorsScreenshots(browser) {
  const svc = await startService({
    env: () => ({ UI_LINKS: 'errors=:5010,logs=:5011', PROJECT_CONTAINERS: 'shop=shop_web|shop_worker' }),
  });
  try {
    const ids = await seedStandard(svc);
    const tracebacks = await seedTracebacks(svc);
    for (let i = 0; i < 6; i++) await svc.api('POST', '/api/errors', { project: 'shop', exception_type: 'KeyError', message: "'customer_id'", traceback: (await svc.api('GET', `/api/errors/${tracebacks.django}`)).traceback });
    // Show a realistic mix: one group resolved, so "resolved" rows appear in the all view.
    await svc.api('POST', `/api/errors/${ids.xss}/resolve`);
    for (const v of VIEWPORTS) {
      const context = await newContext(browser, svc, v);
      const page = await context.newPage();
      page.on('pageerror', (e) => console.error('page error:', e));

      await page.goto(svc.url + '/');
      await page.locator('#errors-table tbody tr').first().waitFor();
      await page.screenshot({ path: join(OUT, `errors-list${v.suffix}.png`) });

      await page.goto(`${svc.url}/errors/${ids.browser}`);
      await page.locator('#status-badge').waitFor();
      await page.goto(`${svc.url}/errors/${tracebacks.django}`);
      await page.locator('#trend-chart').waitFor();
      await page.screenshot({ path: join(OUT, `error-detail${v.suffix}.png`), fullPage: true });
      await context.close();
    }
  } finally {
    await svc.stop();
  }
}

/** Waits until the entry count stops growing (the demo's tracebacks close after 1 s). */
async function settled(svc) {
  let previous = -1;
  for (;;) {
    const { total_logs: total } = await waitForEntries(svc, 1);
    if (total === previous) return total;
    previous = total;
    await new Promise((resolve) => setTimeout(resolve, 1500));
  }
}

async function logsScreenshots(browser) {
  const svc = await startLogViewer((root) => {
    execFileSync('python3', [join(REPO_ROOT, 'scripts/demo-logs.py'), root]);
  });
  try {
    await settled(svc);
    for (const v of VIEWPORTS) {
      const context = await newContext(browser, svc, v);
      const page = await context.newPage();
      page.on('pageerror', (e) => console.error('page error:', e));
      await page.goto(svc.url + '/?range=24h');
      await page.locator('#log-list > li').first().waitFor();
      await page.locator('#histogram .mchart-bar').first().waitFor();
      // Open the newest traceback, as someone looking into a failure would.
      // On a phone: the top of the page (the messages, several lines each, under the chart).
      const traceback = page.locator('#log-list > li.lv-error', { hasText: 'Exception in ASGI application' }).first();
      if (!v.mobile && await traceback.count()) {
        await traceback.locator('.log-line').click();
        if (!v.mobile) {
          // The filters at the top, then the histogram and the open entry.
          await page.evaluate(() => {
            const card = document.querySelector('#filters');
            const header = document.querySelector('.app-header').getBoundingClientRect().height;
            window.scrollTo({ top: card.getBoundingClientRect().top + window.scrollY - header - 12 });
          });
        }
      }
      await page.waitForTimeout(300);
      await page.screenshot({ path: join(OUT, `logs${v.suffix}.png`) });
      await context.close();
    }
  } finally {
    await svc.stop();
  }
}

async function metricsScreenshots(browser) {
  const svc = await startMetrics({ UI_LINKS: 'errors=:5010,logs=:5011,metrics=:5012' });
  try {
    await postMetrics(svc, demoMetrics(6));
    // Every past minute rolled up (the six hours hold 361 minutes of durations).
    await waitForMetrics(svc, { name: 'http_request_duration_ms', period: '6h', project: 'shop' }, (a) => a.data.length >= 355, 120_000);
    for (const v of VIEWPORTS) {
      const context = await newContext(browser, svc, v);
      const page = await context.newPage();
      page.on('pageerror', (e) => console.error('page error:', e));
      await page.goto(svc.url + '/?project=shop&period=6h&metric=http_request_duration_ms');
      await page.locator('#x-chart .mchart-line').first().waitFor();
      await page.locator('#vitals-table tbody tr').first().waitFor();
      await page.waitForTimeout(300);
      await page.screenshot({ path: join(OUT, `metrics${v.suffix}.png`), fullPage: !v.mobile });
      await context.close();
    }
  } finally {
    await svc.stop();
  }
}

const only = process.argv[2];
mkdirSync(OUT, { recursive: true });
const browser = await launchBrowser();
try {
  if (!only || only === 'errors') await errorsScreenshots(browser);
  if (!only || only === 'logs') await logsScreenshots(browser);
  if (!only || only === 'metrics') await metricsScreenshots(browser);
  console.log('screenshots written to', OUT);
} finally {
  await browser.close();
}
