// The error-tracker web UI in a real (headless) Chromium against a real error-tracker.
//   cargo build -p error-tracker && node --test tests/browser/*.test.mjs

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SESSION_ID, XSS_MESSAGE, launchBrowser, openPage, seedStandard, startService, waitForRange } from './harness.mjs';

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
