// End to end in headless Chromium: a page with a slow hero image (the LCP element) and a
// layout shift → web_vitals_lcp and web_vitals_cls points in the metrics-collector with the
// page label, shown by its dashboard; the page's fetch timed as http_client_duration_ms with
// method, host and status class only. Also the relay answering 429: the SDK backs off, the
// page keeps working.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, waitForMetrics } from '../../../../tests/browser/harness.mjs';
import { PROJECT, sleep, startStack, waitForReceived } from './stack.mjs';

// The hero arrives after 700 ms; 400 ms in, a banner pushes the text down (a layout shift
// without user input); the page fetches its API with a query string.
const VITALS_PAGE = (url) => `<h1>Winter sale</h1>
<div id="banner"></div>
<p id="intro">Everything must go: mugs, scarves and gift cards, while stocks last. Free delivery over 40 €.</p>
<img id="hero" src="/img/hero.svg?delay=${url.searchParams.get('img') || 700}" width="800" height="400" alt="">
<script>
  setTimeout(() => {
    const banner = document.getElementById('banner');
    banner.style.height = '${url.searchParams.get('shift') || 240}px';
    banner.style.background = '#fde68a';
  }, 400);
  fetch('/api/products?token=secret-123&page=2').then((r) => r.json()).then((j) => { window.apiOk = j.ok; });
</script>`;

let stack;
let browser;

before(async () => {
  stack = await startStack({ pages: { '/sale': VITALS_PAGE, '/next': () => '<p>next page</p>' } });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

describe('@monlight/browser Web Vitals and request timings in Chromium', () => {
  test('LCP and CLS of a page with a slow image and a layout shift reach the collector and its dashboard', async (t) => {
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    await page.goto(stack.pageOrigin + '/sale?from=mail');
    await page.waitForFunction(() => window.apiOk === true && document.getElementById('hero').complete);
    await sleep(600); // after the shift
    const session = await page.evaluate(() => Monlight.getSessionId());
    // Leaving the page hides it: web-vitals reports LCP and CLS, the SDK beacons them.
    await page.goto(stack.pageOrigin + '/next');
    assert.deepEqual(pageErrors, []);

    const query = (name) => ({ name, period: '1h', project: PROJECT, labels: 'page:/sale' });
    const lcp = await waitForMetrics(stack.metrics, query('web_vitals_lcp'), (a) => a.series.length > 0);
    const cls = await waitForMetrics(stack.metrics, query('web_vitals_cls'), (a) => a.series.length > 0);
    const fcp = await waitForMetrics(stack.metrics, query('web_vitals_fcp'), (a) => a.series.length > 0);
    const ttfb = await waitForMetrics(stack.metrics, query('web_vitals_ttfb'), (a) => a.series.length > 0);
    for (const answer of [lcp, cls, fcp, ttfb]) {
      assert.equal(answer.series.length, 1, JSON.stringify(answer));
      assert.deepEqual(answer.series[0].labels, { page: '/sale', session_id: session, source: 'browser' });
      t.diagnostic(`${answer.name}: ${JSON.stringify(answer.data.at(-1))}`);
    }
    const last = (a) => a.data.at(-1);
    assert.equal(last(lcp).count, 1);
    assert.ok(last(lcp).max >= 700, `LCP after the 700 ms image: ${last(lcp).max}`);
    assert.ok(last(cls).max > 0.05 && last(cls).max < 1, `CLS of the banner: ${last(cls).max}`);
    assert.ok(last(fcp).max < last(lcp).max);

    // How they went: web-vitals reports LCP and CLS as the page hides, so by beacon.
    const beacons = stack.received.filter((r) => r.path.startsWith('/api/browser/metrics?key='));
    assert.ok(beacons.some((b) => b.body.includes('web_vitals_lcp')), JSON.stringify(stack.received));
    assert.ok(beacons.every((b) => b.status === 202 && /^text\/plain/.test(b.type)));

    // The dashboard's Web Vitals section.
    const deadline = Date.now() + 20_000;
    let dashboard;
    let row;
    while (Date.now() < deadline) {
      dashboard = await stack.metrics.api('GET', `/api/dashboard?period=1h&project=${PROJECT}`);
      row = dashboard.web_vitals?.by_page?.find((p) => p.page === '/sale');
      if (row && row.lcp != null && row.cls != null) break;
      await sleep(200);
    }
    t.diagnostic('web_vitals: ' + JSON.stringify(dashboard.web_vitals));
    assert.ok(row, JSON.stringify(dashboard));
    const value = (v) => (typeof v === 'object' ? v.p75 : v);
    assert.ok(value(row.lcp) >= 700);
    assert.ok(value(row.cls) > 0.05);
    assert.ok(dashboard.web_vitals.summary.lcp.count >= 1);
    assert.ok(dashboard.web_vitals.summary.cls.count >= 1);
    await context.close();
  });

  test('the page\'s fetch is timed by method, host and status class, without its query; the SDK\'s own requests are not', async () => {
    const answer = await waitForMetrics(stack.metrics, { name: 'http_client_duration_ms', period: '1h', project: PROJECT }, (a) => a.series.length > 0);
    const host = new URL(stack.pageOrigin).host;
    assert.deepEqual(answer.series.map((s) => ({ ...s.labels, session_id: undefined })), [
      { method: 'GET', host, status_class: '2xx', page: '/sale', source: 'browser', session_id: undefined },
    ], 'one series: the API call, none for the relay');
    assert.doesNotMatch(JSON.stringify(answer), /secret|token|products/);
  });
});

describe('@monlight/browser when the relay rate-limits (RATE_LIMIT=2 per minute)', () => {
  let limited;
  before(async () => {
    limited = await startStack({
      relayEnv: { RATE_LIMIT: '2' },
      init: { captureHttp: false },
      pages: {
        '/busy': () => `<button id="more">Report</button> <output id="clicks">0</output> <output id="ticks">0</output>
<script>
  let clicks = 0;
  document.getElementById('more').addEventListener('click', () => {
    clicks++;
    document.getElementById('clicks').textContent = String(clicks);
    Monlight.captureMessage('report number ' + clicks);
  });
  setInterval(() => { const t = document.getElementById('ticks'); t.textContent = String(Number(t.textContent) + 1); }, 50);
</script>`,
      },
    });
  });
  after(async () => { await limited?.stop(); });

  test('after the 429 the SDK sends nothing more for now; the page stays responsive', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error' && !/429|Too Many/i.test(m.text())) problems.push(m.text()); });
    await page.goto(limited.pageOrigin + '/busy');
    for (let i = 0; i < 6; i++) await page.click('#more');
    // Accepted until the limit, then one 429…
    const received = await waitForReceived(limited, (r) => r.some((x) => x.status === 429));
    await sleep(3000);
    const posts = received.filter((r) => r.method === 'POST');
    const statuses = posts.map((r) => r.status);
    assert.ok(statuses.length >= 2 && statuses.slice(0, -1).every((s) => s === 202) && statuses.at(-1) === 429, JSON.stringify(statuses));
    const accepted = posts.filter((r) => r.status === 202).map((r) => JSON.parse(r.body).message);
    // …and no retry storm while the page keeps reporting.
    for (let i = 0; i < 20; i++) await page.click('#more');
    await sleep(1500);
    assert.equal(limited.received.filter((r) => r.method === 'POST').length, posts.length, 'nothing sent during the back-off');
    assert.equal(await page.textContent('#clicks'), '26');
    const ticks = Number(await page.textContent('#ticks'));
    await sleep(300);
    assert.ok(Number(await page.textContent('#ticks')) > ticks, 'timers still run');
    assert.equal(await page.evaluate(() => fetch('/api/ping').then((r) => r.status)), 200, 'the page\'s own requests work');
    assert.deepEqual(problems, []);
    // Hiding the page during a 429 back-off does not beacon into the limit either.
    await page.goto('about:blank');
    await sleep(500);
    assert.equal(limited.received.filter((r) => r.method === 'POST').length, posts.length);
    await sleep(1000);
    const list = await limited.errorTracker.api('GET', '/api/errors?resolved=all');
    assert.deepEqual(list.errors.map((e) => e.message).sort(), accepted.sort());
    await context.close();
  });
});
