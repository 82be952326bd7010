// The error-tracker web UI in a real (headless) Chromium against a real error-tracker.
//   cargo build -p error-tracker && node --test tests/browser/*.test.mjs

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  SESSION_ID, XSS_MESSAGE, fixture, freePort, launchBrowser, openPage, seedStandard, seedTracebacks, startLogViewer,
  startService, waitForRange,
} from './harness.mjs';

let svc;
let browser;
let ids;

before(async () => {
  svc = await startService();
  ids = await seedStandard(svc);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await svc?.stop();
});

const rows = (page) => page.locator('#errors-table tbody tr');

async function columnTexts(page, cls) {
  return page.locator(`#errors-table tbody td.${cls}`).allTextContents();
}

describe('error-tracker web UI', () => {
  test('pages and assets are served with their types, caching and security headers', async () => {
    const list = await fetch(svc.url + '/');
    assert.equal(list.status, 200);
    assert.equal(list.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(list.headers.get('cache-control'), 'no-cache');
    assert.equal(list.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(list.headers.get('referrer-policy'), 'no-referrer');
    const csp = list.headers.get('content-security-policy') || '';
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    const html = await list.text();
    const script = /src="(\/static\/errors\.js\?v=[0-9a-f]+)"/.exec(html);
    assert.ok(script, 'versioned errors.js URL in the page');

    const js = await fetch(svc.url + script[1]);
    assert.equal(js.status, 200);
    assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal(js.headers.get('cache-control'), 'public, max-age=86400');
    const css = await fetch(svc.url + '/static/monlight.css');
    assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8');

    const detail = await fetch(`${svc.url}/errors/${ids.shopFirst}`);
    assert.equal(detail.status, 200);
    assert.ok(detail.headers.get('content-security-policy'));
    // The UI needs no key; the API does.
    assert.equal((await fetch(svc.url + '/api/errors')).status, 401);
  });

  test('first visit asks for the API key, stores it, and lists the errors', async () => {
    const p = await openPage(browser, svc);
    try {
      await p.page.goto(svc.url + '/');
      const dialog = p.page.locator('#ml-key-dialog');
      await dialog.waitFor({ state: 'visible' });
      assert.equal(await p.page.locator('#ml-key-title').textContent(), 'Enter your API key');
      await p.page.fill('#ml-key-input', svc.apiKey);
      await p.page.click('#ml-key-save');
      await waitForRange(p.page, `of ${ids.total}`);
      assert.equal(await dialog.isVisible(), false);
      assert.equal(await rows(p.page).count(), 50);
      assert.equal(await p.page.locator('#page-info').textContent(), 'Page 1 of 2');
      assert.equal(await p.page.evaluate(() => localStorage.getItem('api_key')), svc.apiKey);
      // Times are relative, with the absolute time on hover.
      const lastSeen = p.page.locator('#errors-table tbody td.c-last time').first();
      assert.match(await lastSeen.textContent(), /just now|\d+s ago/);
      assert.match(await lastSeen.getAttribute('title'), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(UTC[+-]\d\d:\d\d\)\n.*Z$/);
      p.check();
    } finally {
      await p.close();
    }
  });

  test('a wrong stored key (401) brings the prompt back, and the right one loads the list', async () => {
    const p = await openPage(browser, svc, { key: 'not-the-key' });
    try {
      await p.page.goto(svc.url + '/');
      await p.page.locator('#ml-key-dialog').waitFor({ state: 'visible' });
      assert.equal(await p.page.locator('#ml-key-title').textContent(), 'API key rejected');
      assert.equal(await p.page.locator('#ml-key-error').isVisible(), true);
      await p.page.fill('#ml-key-input', svc.apiKey);
      await p.page.press('#ml-key-input', 'Enter');
      await waitForRange(p.page, `of ${ids.total}`);
      assert.equal(await p.page.evaluate(() => localStorage.getItem('api_key')), svc.apiKey);
      p.check();
    } finally {
      await p.close();
    }
  });

  test('filtering by project narrows the list and is mirrored in the URL; paging works', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(svc.url + '/');
      await waitForRange(p.page, `of ${ids.total}`);

      await p.page.selectOption('#f-project', 'billing');
      await waitForRange(p.page, '1–4 of 4');
      assert.deepEqual([...new Set(await columnTexts(p.page, 'c-project'))], ['billing']);
      assert.match(p.page.url(), /[?&]project=billing(&|$)/);

      await p.page.selectOption('#f-project', 'shop-api');
      await waitForRange(p.page, '1–50 of 60');
      await p.page.click('#next-page');
      await waitForRange(p.page, '51–60 of 60');
      assert.equal(await rows(p.page).count(), 10);
      assert.equal(await p.page.locator('#page-info').textContent(), 'Page 2 of 2');
      assert.match(p.page.url(), /page=2/);
      assert.equal(await p.page.locator('#next-page').isDisabled(), true);
      assert.deepEqual([...new Set(await columnTexts(p.page, 'c-project'))], ['shop-api']);

      // Back in history returns to page 1 with the same filter.
      await p.page.goBack();
      await waitForRange(p.page, '1–50 of 60');
      assert.equal(await p.page.inputValue('#f-project'), 'shop-api');
      p.check();
    } finally {
      await p.close();
    }
  });

  test('a shared URL applies its filters on load', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(svc.url + '/?project=web-frontend&resolved=all&source=browser&range=24h');
      await waitForRange(p.page, '1–3 of 3');
      assert.equal(await p.page.inputValue('#f-project'), 'web-frontend');
      assert.equal(await p.page.inputValue('#f-resolved'), 'all');
      assert.equal(await p.page.inputValue('#f-source'), 'browser');
      assert.equal(await p.page.inputValue('#f-range'), '24h');
      assert.deepEqual([...new Set(await columnTexts(p.page, 'c-source'))], ['browser']);
      p.check();
    } finally {
      await p.close();
    }
  });

  test('search is debounced into the URL; a custom range becomes `since`; no match shows the empty state', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(svc.url + '/');
      await waitForRange(p.page, `of ${ids.total}`);
      await p.page.fill('#f-search', 'stripe');
      await waitForRange(p.page, '1–1 of 1');
      assert.match(p.page.url(), /search=stripe/);
      assert.equal(await p.page.locator('#errors-table .err-type').textContent(), 'StripeError');

      const since = p.page.waitForRequest((r) => r.url().includes('/api/errors?') && /since=\d{4}-/.test(r.url()));
      await p.page.selectOption('#f-range', 'custom');
      await p.page.fill('#f-range-custom', '90m');
      await since;
      await p.page.waitForFunction(() => location.search.includes('range=90m'));
      await p.page.fill('#f-range-custom', 'soon');
      await p.page.waitForFunction(() => document.querySelector('#f-range-custom').classList.contains('invalid'));

      await p.page.fill('#f-search', 'no-such-error-anywhere');
      await p.page.getByText('No errors match these filters').waitFor();
      p.check();
    } finally {
      await p.close();
    }
  });

  test('detail page: fields, resolve and reopen, back link keeps the filters', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(svc.url + '/?project=shop-api&sort=count');
      await waitForRange(p.page, '1–50 of 60');
      const first = p.page.locator('#errors-table tbody tr').first();
      const type = await first.locator('.err-type').textContent();
      await first.locator('.err-type').click();
      await p.page.waitForURL(/\/errors\/\d+$/);
      const id = Number(new URL(p.page.url()).pathname.split('/').pop());

      await p.page.locator('#status-badge').waitFor();
      assert.equal(await p.page.locator('#err-type').textContent(), type);
      assert.equal(await p.page.locator('#status-badge').textContent(), 'Unresolved');
      assert.match(await p.page.locator('#traceback').textContent(), /Traceback \(most recent call last\)/);
      assert.ok(await p.page.locator('.occurrence').count() >= 1);
      assert.match(await p.page.locator('.occurrence').first().textContent(), /https:\/\/shop\.example\.com\/api\/checkout\//);
      // Headers are pretty-printed JSON.
      await p.page.locator('.occurrence').first().getByText('Request headers').click();
      assert.match(await p.page.locator('.occurrence').first().locator('pre').first().textContent(), /\{\n {2}"/);

      await p.page.click('#resolve-button');
      await p.page.waitForFunction(() => document.querySelector('#status-badge')?.textContent === 'Resolved');
      assert.equal((await p.page.locator('#resolve-button').textContent()).trim(), 'Reopen');
      assert.equal((await svc.api('GET', `/api/errors/${id}`)).resolved, true);

      await p.page.click('#resolve-button');
      await p.page.waitForFunction(() => document.querySelector('#status-badge')?.textContent === 'Unresolved');
      assert.equal((await p.page.locator('#resolve-button').textContent()).trim(), 'Resolve');
      assert.equal((await svc.api('GET', `/api/errors/${id}`)).resolved, false);

      assert.equal(await p.page.locator('#back-link').getAttribute('href'), '/?project=shop-api&sort=count');
      await p.page.click('#back-link');
      await waitForRange(p.page, '1–50 of 60');
      assert.equal(await p.page.inputValue('#f-sort'), 'count');
      p.check();
    } finally {
      await p.close();
    }
  });

  test('an unknown error id shows "not found"', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(svc.url + '/errors/999999');
      await p.page.getByText('Error not found').waitFor();
      p.check();
    } finally {
      await p.close();
    }
  });

  test('HTML in API data is shown as text and never runs', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(svc.url + '/?project=billing');
      await waitForRange(p.page, '1–4 of 4');
      const table = p.page.locator('#errors-table');
      assert.ok((await table.textContent()).includes(XSS_MESSAGE), 'the literal message is visible');
      assert.equal(await table.locator('img').count(), 0, 'no <img> element was created');

      await p.page.goto(`${svc.url}/errors/${ids.xss}`);
      await p.page.locator('#status-badge').waitFor();
      assert.equal(await p.page.locator('#err-message').textContent(), XSS_MESSAGE);
      const content = p.page.locator('#content');
      assert.ok((await content.textContent()).includes(XSS_MESSAGE));
      assert.equal(await content.locator('img').count(), 0);
      // The user id and the extra context carry the payload too.
      assert.equal(await p.page.locator('.occ-facts dd').first().textContent(), XSS_MESSAGE);
      // Give a would-be onerror handler time to fire before concluding nothing ran.
      await p.page.waitForTimeout(300);
      p.check();
    } finally {
      await p.close();
    }
  });

  test('browser occurrence: user agent, page URL and a link to its session; the session banner', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(`${svc.url}/errors/${ids.browser}`);
      await p.page.locator('#status-badge').waitFor();
      const occurrence = p.page.locator('.occurrence').first();
      const facts = await occurrence.locator('.occ-facts').textContent();
      assert.match(facts, /iPhone; CPU iPhone OS 17_4/);
      assert.match(facts, /https:\/\/shop\.example\.com\/cart/);
      const link = occurrence.locator('a.session-link');
      assert.equal(await link.getAttribute('href'), `/?session_id=${SESSION_ID}&resolved=all`);

      await link.click();
      await waitForRange(p.page, '1–2 of 2');
      assert.equal(await p.page.locator('#session-banner').isVisible(), true);
      assert.equal(await p.page.locator('#session-id').textContent(), SESSION_ID);
      assert.deepEqual((await columnTexts(p.page, 'c-project')).sort(), ['web-frontend', 'web-frontend']);

      await p.page.click('#session-clear');
      await waitForRange(p.page, `of ${ids.total}`);
      assert.equal(await p.page.locator('#session-banner').isVisible(), false);
      assert.doesNotMatch(p.page.url(), /session_id/);
      p.check();
    } finally {
      await p.close();
    }
  });

  test('on a phone the table becomes cards and nothing scrolls sideways', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey, viewport: { width: 390, height: 844 } });
    try {
      await p.page.goto(svc.url + '/');
      await waitForRange(p.page, `of ${ids.total}`);
      assert.equal(await p.page.locator('#errors-table thead').isVisible(), false);
      const overflow = await p.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `page is ${overflow}px wider than the screen`);
      // Optional filters fold behind a toggle.
      assert.equal(await p.page.locator('#f-project').isVisible(), false);
      await p.page.click('#filters-toggle');
      assert.equal(await p.page.locator('#f-project').isVisible(), true);

      await p.page.goto(`${svc.url}/errors/${ids.shopFirst}`);
      await p.page.locator('#status-badge').waitFor();
      const detailOverflow = await p.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(detailOverflow <= 0, `detail page is ${detailOverflow}px wider than the screen`);
      p.check();
    } finally {
      await p.close();
    }
  });

  test('auto-refresh picks up new errors without a reload', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(svc.url + '/?project=late-project&refresh=5s');
      await p.page.getByText('No errors match these filters').waitFor();
      assert.equal(await p.page.inputValue('#f-refresh'), '5s');
      await svc.api('POST', '/api/errors', {
        project: 'late-project', exception_type: 'LateError', message: 'arrived later', traceback: '',
      });
      await p.page.locator('#errors-table .err-type', { hasText: 'LateError' }).waitFor({ timeout: 15_000 });
      p.check();
    } finally {
      await p.close();
      ids.total += 1;
    }
  });
});

// Step 4b: tracebacks that lead with the cause, the trend, bulk resolve, one product.
describe('error-tracker with a log viewer beside it', () => {
  let et;
  let lv;
  let tb;

  before(async () => {
    // Each UI links to the other, so each must know the other's address before it starts.
    const etPort = await freePort();
    lv = await startLogViewer(null, { UI_LINKS: `errors=http://127.0.0.1:${etPort},logs=:1` });
    et = await startService({
      apiKey: lv.apiKey,
      env: () => ({
        PORT: String(etPort),
        UI_LINKS: `errors=http://127.0.0.1:${etPort},logs=${lv.url}`,
        PROJECT_CONTAINERS: 'shop=shop_web|shop_worker,billing=billing_api',
      }),
    });
    tb = await seedTracebacks(et);
  });

  after(async () => {
    await et?.stop();
    await lv?.stop();
  });

  /** The structured traceback's sections: label, exception line, frames shown, fold rows. */
  const sections = (page) => page.locator('#trace-view .tb-section').evaluateAll((nodes) => nodes.map((n) => ({
    label: n.querySelector(':scope > .tb-chain')?.textContent || null,
    exception: n.querySelector(':scope > .tb-exc')?.textContent || null,
    frames: [...n.querySelectorAll(':scope > .tb-frames > .tb-frame .tb-loc')].map((f) => f.textContent),
    folds: [...n.querySelectorAll(':scope > .tb-frames > .tb-lib > .tb-lib-toggle')].map((f) => f.textContent),
  })));

  test('a Django traceback leads with its KeyError and the app frames; library frames fold', async () => {
    const p = await openPage(browser, et, { key: et.apiKey });
    try {
      await p.page.goto(`${et.url}/errors/${tb.django}`);
      const exc = p.page.locator('#trace-view .tb-exc').first();
      await exc.waitFor();
      assert.equal(await exc.textContent(), "KeyError: 'customer_id'");
      // Visible at once, whole: inside the viewport, and no box around it scrolls or clips.
      const box = await exc.boundingBox();
      assert.ok(box.y >= 0 && box.y + box.height <= 800, `exception line at ${JSON.stringify(box)}`);
      assert.equal(await p.page.evaluate(() => window.scrollY), 0);
      const clipped = await exc.evaluate((node) => {
        for (let n = node; n && n !== document.body; n = n.parentElement) {
          if (n.scrollHeight > n.clientHeight + 1 || n.scrollWidth > n.clientWidth + 1) return n.className || n.tagName;
        }
        return null;
      });
      assert.equal(clipped, null, 'a box around the exception line scrolls or clips it');

      const [section] = await sections(p.page);
      assert.deepEqual(section.frames, [
        'File "/app/shop/orders/services.py", line 87, in _resolve_customer',
        'File "/app/shop/orders/services.py", line 112, in create_order',
        'File "/app/shop/orders/views.py", line 48, in post',
      ], 'the application\'s frames, most recent first');
      assert.deepEqual(section.folds, ['5 library frames']);
      const hidden = p.page.locator('.tb-lib-frames .tb-frame').first();
      assert.equal(await hidden.isVisible(), false);
      await p.page.click('.tb-lib-toggle');
      assert.equal(await p.page.locator('.tb-lib-frames .tb-frame').count(), 5);
      assert.match(await hidden.textContent(), /site-packages\/django\/views\/generic\/base\.py", line 143/);
      assert.equal(await hidden.isVisible(), true);
      assert.equal(await p.page.getAttribute('.tb-lib-toggle', 'aria-expanded'), 'true');

      // The raw text is one click away.
      await p.page.click('#raw-toggle');
      assert.equal(await p.page.locator('#traceback').isVisible(), true);
      assert.match(await p.page.locator('#traceback').textContent(), /^Traceback \(most recent call last\):/);
      p.check();
    } finally {
      await p.close();
    }
  });

  test('chained exceptions get a section each, the one raised first; a Node error folds node:internal', async () => {
    const p = await openPage(browser, et, { key: et.apiKey });
    try {
      await p.page.goto(`${et.url}/errors/${tb.chained}`);
      await p.page.locator('#trace-view .tb-exc').first().waitFor();
      let shown = await sections(p.page);
      assert.deepEqual(shown.map((s) => [s.label, s.exception]), [
        [null, 'orders.service.OrderError: cart file missing: /var/lib/shop/carts/8f3c2a.json'],
        ['Raised while handling', "FileNotFoundError: [Errno 2] No such file or directory: '/var/lib/shop/carts/8f3c2a.json'"],
      ]);
      assert.equal(shown[0].frames[0], 'File "/app/orders/service.py", line 25, in create_order_from_file');

      await p.page.goto(`${et.url}/errors/${tb.cause}`);
      await p.page.locator('#trace-view .tb-exc').first().waitFor();
      shown = await sections(p.page);
      assert.deepEqual(shown.map((s) => [s.label, s.exception]), [
        [null, 'orders.service.OrderError: invalid order payload'],
        ['Caused by', "ValueError: invalid literal for int() with base 10: '3x'"],
      ]);
      assert.equal(shown[1].frames.length, 6);

      await p.page.goto(`${et.url}/errors/${tb.node}`);
      await p.page.locator('#trace-view .tb-exc').first().waitFor();
      shown = await sections(p.page);
      assert.equal(shown.length, 1);
      assert.equal(shown[0].exception, 'TypeError: Invalid URL');
      assert.deepEqual(shown[0].folds, ['1 library frame']);
      assert.deepEqual(shown[0].frames, [
        'at new Pool (/app/src/db/client.js:5:16)',
        'at connect (/app/src/db/client.js:12:10)',
        'at async start (/app/src/server.js:6:16)',
        'at async main (/app/src/server.js:11:3)',
      ]);
      p.check();
    } finally {
      await p.close();
    }
  });

  test('the detail page charts the hourly trend; list rows carry a sparkline', async () => {
    for (let i = 0; i < 3; i++) {
      await et.api('POST', '/api/errors', { project: 'shop', exception_type: 'KeyError', message: "'customer_id'", traceback: fixture('python_django.txt') });
    }
    const p = await openPage(browser, et, { key: et.apiKey });
    try {
      await p.page.goto(`${et.url}/errors/${tb.django}`);
      const chart = p.page.locator('#trend-chart');
      await chart.waitFor();
      assert.equal(await chart.getAttribute('data-total'), '4');
      assert.equal(await chart.locator('rect').count(), 24);
      const counts = await chart.locator('rect').evaluateAll((bars) => bars.map((b) => Number(b.dataset.count)));
      assert.equal(counts.reduce((a, b) => a + b, 0), 4);
      assert.ok(counts[23] + counts[22] === 4, `the newest hours hold the reports: ${counts}`);
      assert.match(await chart.locator('rect').last().locator('title').textContent(), /\d\d:00–\d\d:00: \d+ occurrence/);
      assert.match(await chart.textContent(), /4 in the last 24 hours/);
      await p.page.click('#trend button[data-range="7d"]');
      await p.page.waitForFunction(() => document.querySelector('#trend-chart')?.dataset.range === '7d');
      assert.equal(await p.page.locator('#trend-chart rect').count(), 168);

      await p.page.goto(`${et.url}/?project=shop`);
      const row = p.page.locator(`#errors-table tbody tr[data-id="${tb.django}"]`);
      await row.waitFor();
      assert.equal(await row.locator('.spark-wrap').getAttribute('data-total'), '4');
      assert.equal(await row.locator('.spark rect').count(), 24);
      assert.equal(await row.locator('.spark-wrap').getAttribute('title'), '4 in the last 24 hours');
      p.check();
    } finally {
      await p.close();
    }
  });

  test('bulk resolve: select rows, resolve them at once, reopen them from the resolved view', async () => {
    const made = [];
    for (const n of [1, 2, 3]) {
      made.push((await et.api('POST', '/api/errors', { project: 'bulk', exception_type: `Bulk${n}Error`, message: 'x', traceback: '' })).id);
    }
    const p = await openPage(browser, et, { key: et.apiKey });
    try {
      await p.page.goto(`${et.url}/?project=bulk`);
      await waitForRange(p.page, '1–3 of 3');
      assert.equal(await p.page.locator('#bulk-bar').isVisible(), false);
      await p.page.check(`tr[data-id="${made[0]}"] input.row-select`);
      await p.page.check(`tr[data-id="${made[2]}"] input.row-select`);
      assert.match(p.page.url(), /\/\?project=bulk$/, 'checking a row does not open it');
      assert.equal(await p.page.locator('#bulk-count').textContent(), '2 selected');
      assert.equal(await p.page.locator('#bulk-reopen').isDisabled(), true);
      const call = p.page.waitForRequest((r) => r.url().endsWith('/api/errors/resolve') && r.method() === 'POST');
      await p.page.click('#bulk-resolve');
      assert.deepEqual(JSON.parse((await call).postData()), { ids: [made[0], made[2]] });
      await waitForRange(p.page, '1–1 of 1');
      assert.equal(await p.page.locator('#bulk-bar').isVisible(), false);
      for (const id of [made[0], made[2]]) assert.equal((await et.api('GET', `/api/errors/${id}`)).resolved, true);
      assert.equal((await et.api('GET', `/api/errors/${made[1]}`)).resolved, false);

      await p.page.selectOption('#f-resolved', 'true');
      await waitForRange(p.page, '1–2 of 2');
      await p.page.check('#select-all');
      assert.equal(await p.page.locator('#bulk-count').textContent(), '2 selected');
      assert.equal(await p.page.locator('#bulk-resolve').isDisabled(), true);
      await p.page.click('#bulk-reopen');
      await p.page.getByText('No errors match these filters').waitFor();
      for (const id of made) assert.equal((await et.api('GET', `/api/errors/${id}`)).resolved, false);
      p.check();
    } finally {
      await p.close();
    }
  });

  test('both UIs share a header linking to each other; the key crosses to the other origin once, in the fragment', async () => {
    const p = await openPage(browser, et, { key: et.apiKey });
    try {
      await p.page.goto(et.url + '/');
      const nav = p.page.locator('#app-nav a');
      await nav.first().waitFor();
      assert.deepEqual(await nav.allTextContents(), ['Errors', 'Logs']);
      assert.equal(await nav.nth(0).getAttribute('aria-current'), 'page');
      assert.equal(await nav.nth(0).getAttribute('href'), '/');
      assert.equal(await nav.nth(1).getAttribute('href'), lv.url + '/');
      // The key dialog says where the key is kept, and that another port asks again.
      await p.page.click('[data-action="change-key"]');
      assert.match(await p.page.locator('#ml-key-help').textContent(), /another port or host is another origin/);
      await p.page.click('#ml-key-cancel');

      // Following the link: the log viewer (another origin) gets the key without asking,
      // and the fragment is gone from its address bar.
      await nav.nth(1).click();
      await p.page.waitForURL((url) => url.origin === lv.url);
      await p.page.waitForFunction(() => localStorage.getItem('api_key') !== null);
      assert.equal(await p.page.evaluate(() => localStorage.getItem('api_key')), et.apiKey);
      assert.equal(new URL(p.page.url()).hash, '');
      assert.doesNotMatch(p.page.url(), /key/);
      const lvNav = p.page.locator('#app-nav a');
      assert.deepEqual(await lvNav.allTextContents(), ['Errors', 'Logs']);
      assert.equal(await lvNav.nth(0).getAttribute('href'), et.url + '/');
      assert.equal(await lvNav.nth(1).getAttribute('aria-current'), 'page');
      assert.equal(await p.page.locator('#ml-key-dialog[open]').count(), 0, 'no key prompt');
      p.check();
    } finally {
      await p.close();
    }
  });

  test('a key in the fragment is stored and removed from the address bar', async () => {
    const p = await openPage(browser, et);
    try {
      await p.page.goto(`${et.url}/?project=shop#key=${encodeURIComponent(et.apiKey)}`);
      await p.page.locator('#errors-table tbody tr').first().waitFor();
      assert.equal(await p.page.evaluate(() => localStorage.getItem('api_key')), et.apiKey);
      assert.equal(new URL(p.page.url()).hash, '');
      assert.match(p.page.url(), /\/\?project=shop$/);
      assert.equal(await p.page.locator('#ml-key-dialog[open]').count(), 0);
      p.check();
    } finally {
      await p.close();
    }
  });

  test('"Logs around this time" opens the log viewer on the 10 minutes around an occurrence, on the project\'s containers', async () => {
    const group = await et.api('GET', `/api/errors/${tb.django}`);
    const p = await openPage(browser, et, { key: et.apiKey });
    try {
      await p.page.goto(`${et.url}/errors/${tb.django}`);
      await p.page.locator('#logs-last').waitFor();
      for (const [id, at] of [['#logs-last', group.last_seen], ['#logs-first', group.first_seen]]) {
        const href = await p.page.getAttribute(id, 'href');
        const url = new URL(href);
        assert.equal(url.origin + url.pathname, lv.url + '/');
        assert.match(href, /^[^?]*\/\?since=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ&until=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ&container=shop_web&container=shop_worker$/);
        const t = Date.parse(at);
        assert.equal(Date.parse(url.searchParams.get('since')), Math.floor((t - 300_000) / 1000) * 1000);
        assert.equal(Date.parse(url.searchParams.get('until')), Math.ceil((t + 300_000) / 1000) * 1000);
        assert.deepEqual(url.searchParams.getAll('container'), ['shop_web', 'shop_worker']);
        assert.doesNotMatch(href, /key/);
      }
      // A project without a mapping: every container.
      await p.page.goto(`${et.url}/errors/${tb.node}`);
      await p.page.locator('#logs-last').waitFor();
      assert.doesNotMatch(await p.page.getAttribute('#logs-last', 'href'), /container=/);
      p.check();
    } finally {
      await p.close();
    }
  });

  test('small things: stats on one row with Resolved, whole fingerprint, type tooltips, active filters, select focus ring', async () => {
    await et.api('POST', `/api/errors/${tb.cause}/resolve`);
    const p = await openPage(browser, et, { key: et.apiKey });
    try {
      await p.page.goto(`${et.url}/errors/${tb.cause}`);
      await p.page.locator('#fingerprint').waitFor();
      const tops = await p.page.locator('#meta > div').evaluateAll((items) => items.map((i) => [i.querySelector('dt').textContent, Math.round(i.getBoundingClientRect().top)]));
      assert.ok(tops.some(([label]) => label === 'Resolved'), JSON.stringify(tops));
      assert.equal(new Set(tops.map(([, top]) => top)).size, 1, `the stats share one row: ${JSON.stringify(tops)}`);
      const lines = await p.page.locator('#fingerprint').evaluate((n) => n.getClientRects().length);
      assert.equal(lines, 1, 'the fingerprint is on one line');

      await p.page.goto(`${et.url}/?resolved=all`);
      await p.page.locator('#errors-table .err-type').first().waitFor();
      const types = await p.page.locator('#errors-table .err-type').evaluateAll((links) => links.map((a) => [a.textContent, a.title]));
      for (const [text, title] of types) assert.equal(title, text);
      assert.equal(await p.page.locator('#f-resolved.is-active').count(), 1, 'status differs from its default');
      assert.equal(await p.page.locator('#f-project.is-active').count(), 0);
      const plain = await p.page.locator('#f-project').evaluate((n) => getComputedStyle(n).borderColor);
      await p.page.selectOption('#f-project', 'shop');
      await p.page.waitForFunction(() => document.querySelector('#f-project').classList.contains('is-active'));
      await p.page.locator('#f-search').focus();
      // The border eases into its new colour (a CSS transition): wait for it.
      await p.page.waitForFunction((before) => getComputedStyle(document.querySelector('#f-project')).borderColor !== before, plain);
      assert.notEqual(
        await p.page.locator('#f-project').evaluate((n) => getComputedStyle(n).backgroundColor),
        await p.page.locator('#f-environment').evaluate((n) => getComputedStyle(n).backgroundColor),
        'an active filter is tinted, a default one is not');

      await p.page.focus('#f-search');
      let focused = '';
      for (let i = 0; i < 4 && focused !== 'f-project'; i++) {
        await p.page.keyboard.press('Tab');
        focused = await p.page.evaluate(() => document.activeElement.id);
      }
      assert.equal(focused, 'f-project');
      const ring = await p.page.evaluate(() => {
        const style = getComputedStyle(document.activeElement);
        return [style.outlineStyle, style.outlineWidth];
      });
      assert.deepEqual(ring, ['solid', '2px']);
      p.check();
    } finally {
      await p.close();
      await et.api('POST', `/api/errors/${tb.cause}/unresolve`);
    }
  });
});
