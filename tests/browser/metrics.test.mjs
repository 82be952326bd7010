// The metrics-collector web UI in a real (headless) Chromium against a real metrics-collector.
//   cargo build -p metrics-collector && node --test tests/browser/metrics.test.mjs

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  XSS_MESSAGE, launchBrowser, minuteAgo, openPage, postMetrics, startMetrics, waitForMetrics,
} from './harness.mjs';

let svc;
let browser;

const ROUTES = ['/api/orders', '/api/cart', XSS_MESSAGE];
/** Page views whose LCP average (2,200 ms) is "good" but whose p75 (5,000 ms) is "poor" (70 %
 * fast, 30 % slow); CLS likewise (average 0.097, p75 0.3). Per page, "/" is 9 fast and 1 slow
 * (p75 good), "/checkout" 5 and 5 (p75 poor). */
const VIEWS = [
  ...Array.from({ length: 9 }, () => ({ page: '/', slow: false })),
  { page: '/', slow: true },
  ...Array.from({ length: 5 }, () => ({ page: '/checkout', slow: false })),
  ...Array.from({ length: 5 }, () => ({ page: '/checkout', slow: true })),
];

before(async () => {
  svc = await startMetrics();
  const points = [];
  // Requests per route over the last five minutes, and their durations (a histogram).
  for (let ago = 5; ago >= 0; ago--) {
    for (const [i, route] of ROUTES.entries()) {
      points.push({ name: 'http_requests_total', type: 'counter', value: 10 * (i + 1), labels: { route, method: 'GET' }, project: 'shop', timestamp: minuteAgo(ago, 1) });
      for (let k = 1; k <= 20; k++) {
        points.push({ name: 'http_request_duration_ms', type: 'histogram', value: k * 10 * (i + 1), labels: { route }, project: 'shop', timestamp: minuteAgo(ago, 2) });
      }
    }
    points.push({ name: 'queue_depth', type: 'gauge', value: 5 + ago, labels: { queue: 'emails' }, project: 'shop', timestamp: minuteAgo(ago, 3) });
  }
  points.push({ name: XSS_MESSAGE, type: 'counter', value: 1, labels: { note: XSS_MESSAGE }, project: 'shop' });
  points.push({ name: 'invoices_sent_total', type: 'counter', value: 3, project: 'billing' });
  for (const [i, view] of VIEWS.entries()) {
    const labels = { source: 'browser', page: view.page };
    points.push({ name: 'web_vitals_lcp', type: 'histogram', value: view.slow ? 5000 : 1000, labels, project: 'shop' });
    points.push({ name: 'web_vitals_cls', type: 'histogram', value: view.slow ? 0.3 : 0.01, labels, project: 'shop' });
    points.push({ name: 'web_vitals_inp', type: 'histogram', value: 80 + i * 5, labels, project: 'shop' });
  }
  await postMetrics(svc, points);
  // The past minutes are rolled up within a second or two (AGGREGATION_INTERVAL=1).
  await waitForMetrics(svc, { name: 'http_request_duration_ms', period: '1h' }, (a) => a.data.length >= 6);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await svc?.stop();
});

/** The names of the series drawn in `host` (lines and single-point dots), deduplicated. */
function drawnSeries(page, host) {
  return page.locator(`${host} .mchart-series [data-series]`).evaluateAll((nodes) =>
    [...new Set(nodes.map((n) => n.getAttribute('data-series')))].sort());
}

function legend(page, host) {
  return page.locator(`${host} .mchart-key`).evaluateAll((nodes) => nodes.map((n) => n.textContent).sort());
}

/** Waits until the explorer draws `count` series. */
async function waitForSeries(page, count) {
  await page.waitForFunction((n) => {
    const names = new Set([...document.querySelectorAll('#x-chart .mchart-series [data-series]')].map((e) => e.getAttribute('data-series')));
    return names.size === n;
  }, count);
}

describe('metrics-collector web UI', () => {
  test('the page and its assets are served with their types and security headers', async () => {
    const response = await fetch(svc.url + '/');
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.doesNotMatch(response.headers.get('content-security-policy') || '', /unsafe-inline/);
    const html = await response.text();
    assert.match(html, /data-ui="metrics"/);
    for (const name of ['charts.js', 'metrics.js', 'metrics.css']) {
      const url = new RegExp(`"(/static/${name.replace('.', '\\.')}\\?v=[0-9a-f]+)"`).exec(html);
      assert.ok(url, `versioned ${name} in the page`);
      const asset = await fetch(svc.url + url[1]);
      assert.equal(asset.status, 200, name);
      assert.equal(asset.headers.get('cache-control'), 'public, max-age=86400');
    }
    assert.equal((await fetch(svc.url + '/api/dashboard')).status, 401);
  });

  test('first visit asks for the key, then shows the summary cards and top metrics', async () => {
    const p = await openPage(browser, svc);
    try {
      await p.page.goto(svc.url + '/');
      await p.page.locator('#ml-key-dialog').waitFor({ state: 'visible' });
      await p.page.fill('#ml-key-input', svc.apiKey);
      await p.page.click('#ml-key-save');
      await p.page.locator('#top-table tbody tr').first().waitFor();
      assert.notEqual(await p.page.locator('#stat-datapoints').textContent(), '—');
      assert.match(await p.page.locator('#stat-status').textContent(), /Healthy/);
      const names = await p.page.locator('#top-table tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.metric));
      assert.ok(names.includes('http_request_duration_ms'), names.join(', '));
      p.check();
    } finally {
      await p.close();
    }
  });

  test('the explorer charts a chosen metric; a row of the top metrics opens it too', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(svc.url + '/?period=1h');
      await p.page.locator('#x-metric option[value="queue_depth"]').waitFor({ state: 'attached' });
      await p.page.selectOption('#x-metric', 'queue_depth');
      await p.page.locator('#x-chart .mchart-line').first().waitFor();
      assert.match(await p.page.locator('#x-info').textContent(), /gauge/);
      assert.equal(await p.page.locator('#x-view').inputValue(), 'last');
      assert.match(p.page.url(), /metric=queue_depth/);

      await p.page.locator('#top-table tbody tr[data-metric="http_requests_total"] button').click();
      await p.page.waitForFunction(() => document.querySelector('#x-metric').value === 'http_requests_total');
      await p.page.waitForFunction(() => /counter/.test(document.querySelector('#x-info').textContent));
      assert.equal(await p.page.locator('#x-view').inputValue(), 'sum');
      p.check();
    } finally {
      await p.close();
    }
  });

  test('grouping by a label draws one line and one legend entry per value; the legend hides a line', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(svc.url + '/?period=1h&metric=http_requests_total');
      await p.page.locator('#x-group option[value="route"]').waitFor({ state: 'attached' });
      assert.deepEqual(await p.page.locator('#x-group option').evaluateAll((o) => o.map((n) => n.value)), ['', 'method', 'route']);
      await p.page.selectOption('#x-group', 'route');
      await waitForSeries(p.page, 3);
      assert.deepEqual(await drawnSeries(p.page, '#x-chart'), [...ROUTES].sort());
      assert.deepEqual(await legend(p.page, '#x-chart'), [...ROUTES].sort());

      const key = p.page.locator('#x-chart .mchart-key', { hasText: '/api/cart' });
      await key.click();
      assert.equal(await key.getAttribute('aria-pressed'), 'false');
      await waitForSeries(p.page, 2);
      assert.ok(!(await drawnSeries(p.page, '#x-chart')).includes('/api/cart'));
      p.check();
    } finally {
      await p.close();
    }
  });

  test('a histogram shows its percentile lines, and hovering reads each one out', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(svc.url + '/?period=1h&metric=http_request_duration_ms');
      await waitForSeries(p.page, 5);
      assert.equal(await p.page.locator('#x-view').inputValue(), 'pct');
      assert.deepEqual(await drawnSeries(p.page, '#x-chart'), ['p50', 'p75', 'p90', 'p95', 'p99']);
      assert.equal(await p.page.locator('#x-chart .mchart-line').count(), 5);

      const box = await p.page.locator('#x-chart .mchart-hit').boundingBox();
      await p.page.mouse.move(box.x + box.width - 2, box.y + box.height / 2);
      const tip = p.page.locator('#x-chart .mchart-tip');
      await tip.waitFor({ state: 'visible' });
      const rows = await tip.locator('.mchart-tip-row').allTextContents();
      assert.equal(rows.length, 5);
      // Listed from the highest value down, as the lines are drawn.
      assert.deepEqual(rows.map((r) => r.slice(0, 3)), ['p99', 'p95', 'p90', 'p75', 'p50']);
      // Values 10…200, 20…400 and 30…600 merged: the median is in the low hundreds.
      assert.ok(rows.every((r) => /\d/.test(r) && !r.includes('—')), rows.join(' | '));
      p.check();
    } finally {
      await p.close();
    }
  });

  test('Web Vitals are rated on the 75th percentile, not the average, in the cards and the page table', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(svc.url + '/?period=1h');
      await p.page.locator('#vitals:not([hidden]) #vital-lcp').waitFor();
      const lcp = p.page.locator('#vital-lcp');
      assert.equal(await lcp.getAttribute('data-rating'), 'poor');
      assert.match(await lcp.locator('.vital-value').textContent(), /^(4\.9\d|5\.0\d) s$/);
      assert.match(await lcp.locator('.vital-note').textContent(), /avg 2\.20 s · 20 samples/);
      assert.equal(await p.page.locator('#vital-cls').getAttribute('data-rating'), 'poor');
      assert.equal(await p.page.locator('#vital-inp').getAttribute('data-rating'), 'good');
      assert.equal(await p.page.locator('#vital-ttfb').getAttribute('data-rating'), 'unknown');

      const cell = (page, vital) => p.page.locator('#vitals-table tbody tr', { hasText: new RegExp('^' + page) })
        .locator(`td[data-vital="${vital}"]`);
      await p.page.locator('#vitals-table tbody tr').first().waitFor();
      assert.equal(await cell('/checkout', 'lcp').getAttribute('data-rating'), 'poor');
      const home = p.page.locator('#vitals-table tbody tr').filter({ has: p.page.locator('td.c-page', { hasText: /^\/$/ }) });
      assert.equal(await home.locator('td[data-vital="lcp"]').getAttribute('data-rating'), 'good');
      const poorColour = await cell('/checkout', 'lcp').evaluate((n) => getComputedStyle(n).color);
      const goodColour = await home.locator('td[data-vital="lcp"]').evaluate((n) => getComputedStyle(n).color);
      assert.notEqual(poorColour, goodColour);

      // The trend, with the thresholds drawn; CLS on its tab.
      await p.page.locator('#vitals-chart .mchart-series [data-series]').first().waitFor();
      assert.equal(await p.page.locator('#vitals-chart .mchart-rule').count(), 2);
      await p.page.click('#vital-tabs [data-vital="cls"]');
      await p.page.waitForFunction(() => document.querySelector('#vitals-chart [data-series]')?.getAttribute('data-series') === 'CLS p75');
      assert.match(p.page.url(), /vital=cls/);
      p.check();
    } finally {
      await p.close();
    }
  });

  test('a metric name and a label value holding HTML are shown as text and never run', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(svc.url + '/?period=1h&metric=' + encodeURIComponent(XSS_MESSAGE) + '&group=note');
      await waitForSeries(p.page, 1);
      assert.deepEqual(await legend(p.page, '#x-chart'), []);
      assert.deepEqual(await drawnSeries(p.page, '#x-chart'), [XSS_MESSAGE]);
      assert.equal(await p.page.locator('#x-metric').inputValue(), XSS_MESSAGE);
      await p.page.locator(`#top-table tbody tr button`, { hasText: XSS_MESSAGE }).waitFor();

      await p.page.selectOption('#x-metric', 'http_requests_total');
      await p.page.locator('#x-group option[value="route"]').waitFor({ state: 'attached' });
      await p.page.selectOption('#x-group', 'route');
      await waitForSeries(p.page, 3);
      await p.page.locator('#x-chart .mchart-key', { hasText: XSS_MESSAGE }).waitFor();
      // Hovering puts the label value in the read-out, as text too.
      const box = await p.page.locator('#x-chart .mchart-hit').boundingBox();
      await p.page.mouse.move(box.x + box.width - 2, box.y + 10);
      await p.page.locator('#x-chart .mchart-tip-name', { hasText: XSS_MESSAGE }).waitFor();

      assert.equal(await p.page.locator('main img').count(), 0, 'no <img> made from the data');
      p.check();
    } finally {
      await p.close();
    }
  });

  test('project, period and the explorer live in the URL and survive a reload', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(svc.url + '/');
      await p.page.locator('#f-project option[value="shop"]').waitFor({ state: 'attached' });
      await p.page.selectOption('#f-project', 'shop');
      await p.page.selectOption('#f-period', '6h');
      await p.page.locator('#x-metric option[value="http_request_duration_ms"]').waitFor({ state: 'attached' });
      await p.page.selectOption('#x-metric', 'http_request_duration_ms');
      await p.page.locator('#x-group option[value="route"]').waitFor({ state: 'attached' });
      await p.page.selectOption('#x-group', 'route');
      await p.page.selectOption('#x-view', 'p99');
      await p.page.selectOption('#f-refresh', '30s');
      await waitForSeries(p.page, 3);
      const url = new URL(p.page.url());
      assert.deepEqual(Object.fromEntries(url.searchParams), {
        project: 'shop', period: '6h', metric: 'http_request_duration_ms', group: 'route', view: 'p99', refresh: '30s',
      });

      await p.page.reload();
      await waitForSeries(p.page, 3);
      assert.equal(await p.page.locator('#f-project').inputValue(), 'shop');
      assert.equal(await p.page.locator('#f-period').inputValue(), '6h');
      assert.equal(await p.page.locator('#x-metric').inputValue(), 'http_request_duration_ms');
      assert.equal(await p.page.locator('#x-group').inputValue(), 'route');
      assert.equal(await p.page.locator('#x-view').inputValue(), 'p99');
      assert.equal(await p.page.locator('#f-refresh').inputValue(), '30s');

      // Another project has other metrics: billing knows no vitals.
      await p.page.selectOption('#f-project', 'billing');
      await p.page.waitForFunction(() => document.querySelector('#vitals').hidden);
      await p.page.waitForFunction(() => [...document.querySelectorAll('#top-table tbody tr')].map((r) => r.dataset.metric).join() === 'invoices_sent_total');
      p.check();
    } finally {
      await p.close();
    }
  });

  test('auto-refresh shows a metric that arrives later', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(svc.url + '/?project=late&refresh=5s');
      await p.page.getByText('No metrics in this period').waitFor();
      await svc.api('POST', '/api/metrics', [{ name: 'late_signups_total', type: 'counter', value: 2, project: 'late' }]);
      await p.page.locator('#top-table tbody tr[data-metric="late_signups_total"]').waitFor({ timeout: 20_000 });
      // The explorer follows: the busiest metric when the URL names none.
      await waitForSeries(p.page, 1);
      assert.equal(await p.page.locator('#x-metric').inputValue(), 'late_signups_total');
      p.check();
    } finally {
      await p.close();
    }
  });

  test('on a phone (390 px) nothing overflows sideways', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey, viewport: { width: 390, height: 844 } });
    try {
      await p.page.goto(svc.url + '/?period=1h&metric=http_requests_total&group=route');
      await waitForSeries(p.page, 3);
      await p.page.locator('#vitals-table tbody tr').first().waitFor();
      const widths = await p.page.evaluate(() => ({ page: document.documentElement.scrollWidth, view: window.innerWidth }));
      assert.ok(widths.page <= widths.view, `page is ${widths.page} px wide in a ${widths.view} px view`);
      p.check();
    } finally {
      await p.close();
    }
  });
});
