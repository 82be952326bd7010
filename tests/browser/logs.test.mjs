// The log-viewer web UI in a real (headless) Chromium against a real log-viewer reading fake
// Docker containers from a temp dir.
//   cargo build -p log-viewer && node --test tests/browser/logs.test.mjs

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  REPO_ROOT, XSS_MESSAGE, fakeContainer, launchBrowser, openPage, startLogViewer, startService, waitForEntries, waitForRange,
} from './harness.mjs';

const TRACEBACK = [
  'ERROR:    Exception in ASGI application',
  'Traceback (most recent call last):',
  '  File "/app/shop/views.py", line 88, in checkout',
  '    order = Order.create(cart, user)',
  '  File "/app/shop/models.py", line 142, in create',
  '    raise PaymentError(f"card declined for order {cart.id}")',
  'shop.errors.PaymentError: card declined for order 4242',
];

// What the containers hold, by level (a traceback is one entry):
//   web:    130 access lines (INFO; every 10th is /api/invoices/), 1 WARNING, 1 ERROR
//           traceback, 1 INFO line with the HTML payload                        = 133
//   worker: JSON lines: 20 info, 3 warn, 2 error                                 =  25
//   db:     logfmt: 10 info, 1 debug, 1 crit                                     =  12
const TOTAL = 170;
const INVOICE_LINES = 13;
const ERRORS = 3;
const WARNING_AND_ABOVE = 4 + 3 + 1;
const WORKER_LINES = 25;

/** The histogram's bar segments (charts.js bar mode): one per level and bucket. */
const HIST_BAR = '#histogram .mchart-bar';

/** Points at the middle of the first bar with entries (the chart takes the pointer over
 * the whole plot, above the bars). */
async function hoverBar(page) {
  const box = await page.locator(HIST_BAR).first().boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
}

async function clickBar(page) {
  await hoverBar(page);
  await page.mouse.down();
  await page.mouse.up();
}

let svc;
let browser;
let containers;
/** When the seed's first line was written. */
let seedStart;

function seed(root) {
  // Everything in the last 50 minutes, oldest first, so every time range but 30s and 5m
  // holds it all.
  const start = Date.now() - 50 * 60_000;
  seedStart = start;
  let tick = 0;
  const at = () => new Date(start + (tick++) * 12_000);
  const web = [];
  for (let i = 0; i < 130; i++) {
    const path = i % 10 === 0 ? `/api/invoices/${9000 + i}` : `/api/orders/${1000 + i}`;
    web.push({ text: `INFO:     172.18.0.5:${40000 + i} - "GET ${path} HTTP/1.1" 200`, stream: 'stdout', date: at() });
    if (i === 60) web.push({ text: 'WARNING:  slow request /cart took 812 ms', stream: 'stdout', date: at() });
    if (i === 90) {
      const date = at();
      for (const line of TRACEBACK) web.push({ text: line, stream: 'stderr', date });
    }
    if (i === 120) web.push({ text: XSS_MESSAGE, stream: 'stdout', date: at() });
  }
  const worker = [];
  for (let i = 0; i < 25; i++) {
    const level = i === 4 || i === 14 ? 'error' : i % 8 === 3 ? 'warn' : 'info';
    const msg = level === 'error' ? 'charge_card failed: connection refused at redis:6379'
      : level === 'warn' ? 'charge_card retrying in 5 s' : `send_email done in ${20 + i} ms`;
    worker.push({ text: JSON.stringify({ level, msg, job: 'job-' + i }), stream: 'stdout', date: at() });
  }
  const db = [];
  for (let i = 0; i < 10; i++) db.push({ text: `level=info msg="checkpoint complete: wrote ${100 + i} buffers"`, stream: 'stdout', date: at() });
  db.push({ text: 'level=debug msg="autovacuum: processing table orders"', stream: 'stdout', date: at() });
  db.push({ text: 'level=crit msg="could not write to file pg_wal/000000010000000000000042: No space left on device"', stream: 'stdout', date: at() });
  return {
    web: fakeContainer(root, 'web', web),
    worker: fakeContainer(root, 'worker', worker),
    db: fakeContainer(root, 'db', db),
  };
}

before(async () => {
  svc = await startLogViewer((root) => {
    containers = seed(root);
  });
  const stats = await waitForEntries(svc, TOTAL);
  assert.equal(stats.total_logs, TOTAL, 'the fixture is ingested as expected: ' + JSON.stringify(stats));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await svc?.stop();
});

const rows = (page) => page.locator('#log-list > li');

/** Waits until the list shows exactly `n` rows and the summary's total is `n`. */
async function waitForTotal(page, n) {
  await page.waitForFunction(
    (expected) => document.querySelector('#total')?.textContent === expected,
    String(n),
  );
}

async function texts(page, selector) {
  return page.locator(`#log-list > li ${selector}`).allTextContents();
}

describe('log-viewer web UI', () => {
  test('the page and its assets are served with their types, caching and security headers', async () => {
    const res = await fetch(svc.url + '/');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    const csp = res.headers.get('content-security-policy') || '';
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    const html = await res.text();
    const script = /src="(\/static\/logs\.js\?v=[0-9a-f]+)"/.exec(html);
    assert.ok(script, 'versioned logs.js URL in the page');
    const js = await fetch(svc.url + script[1]);
    assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal(js.headers.get('cache-control'), 'public, max-age=86400');
    assert.equal((await fetch(svc.url + '/static/logs.css')).headers.get('content-type'), 'text/css; charset=utf-8');
    assert.equal((await fetch(svc.url + '/api/logs')).status, 401);
  });

  test('first visit asks for the API key, then lists the newest entries with paging by before_id', async () => {
    const p = await openPage(browser, svc);
    try {
      await p.page.goto(svc.url + '/');
      await p.page.locator('#ml-key-dialog').waitFor({ state: 'visible' });
      await p.page.fill('#ml-key-input', svc.apiKey);
      await p.page.click('#ml-key-save');
      await waitForRange(p.page, `Showing 1–100 of ${TOTAL}`);
      assert.equal(await p.page.evaluate(() => localStorage.getItem('api_key')), svc.apiKey);
      assert.equal(await rows(p.page).count(), 100);
      const firstPage = (await rows(p.page).evaluateAll((li) => li.map((n) => Number(n.dataset.id))));
      assert.deepEqual(firstPage, [...firstPage].sort((a, b) => b - a), 'newest (highest id) first');
      // One line per entry: time, level badge, container, message.
      const first = rows(p.page).first();
      assert.match(await first.locator('.c-time').textContent(), /^\d\d:\d\d:\d\d\.\d{3}$/);
      assert.ok(['DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'].includes(await first.locator('.lvl').textContent()));

      const older = p.page.waitForRequest((r) => /\/api\/logs\?.*before_id=\d+/.test(r.url()));
      await p.page.click('#older-page');
      const request = await older;
      assert.equal(new URL(request.url()).searchParams.get('before_id'), String(Math.min(...firstPage)));
      await waitForRange(p.page, `Showing 101–${TOTAL} of ${TOTAL}`);
      const secondPage = await rows(p.page).evaluateAll((li) => li.map((n) => Number(n.dataset.id)));
      assert.equal(secondPage.length, TOTAL - 100);
      assert.ok(Math.max(...secondPage) < Math.min(...firstPage), 'the older page holds only older entries');
      assert.match(p.page.url(), /before=\d+/);
      assert.equal(await p.page.locator('#older-page').isDisabled(), true);

      await p.page.click('#newer-page');
      await waitForRange(p.page, `Showing 1–100 of ${TOTAL}`);
      assert.doesNotMatch(p.page.url(), /before=/);
      p.check();
    } finally {
      await p.close();
    }
  });

  test('search shows only matching rows with the term highlighted in <mark>', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(svc.url + '/');
      await waitForRange(p.page, `of ${TOTAL}`);
      await p.page.fill('#f-search', 'invoices');
      await waitForTotal(p.page, INVOICE_LINES);
      assert.match(p.page.url(), /search=invoices/);
      const messages = await texts(p.page, '.c-msg');
      assert.equal(messages.length, INVOICE_LINES);
      for (const message of messages) assert.match(message, /\/api\/invoices\/\d+/);
      const marks = await p.page.locator('#log-list .c-msg mark').allTextContents();
      assert.equal(marks.length, INVOICE_LINES);
      assert.deepEqual([...new Set(marks)], ['invoices']);

      // Words are AND-ed; the expanded message highlights each of them.
      await p.page.fill('#f-search', 'declined PaymentError');
      await waitForTotal(p.page, 1);
      await rows(p.page).first().locator('.log-line').click();
      const found = await p.page.locator('#log-list pre.log-message mark').allTextContents();
      assert.deepEqual([...new Set(found)].sort(), ['PaymentError', 'declined']);

      await p.page.fill('#f-search', 'no-such-words-anywhere');
      await p.page.getByText('No log entries match these filters').waitFor();
      p.check();
    } finally {
      await p.close();
    }
  });

  test('level filter: exactly ERROR, and WARNING and above', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(svc.url + '/');
      await waitForRange(p.page, `of ${TOTAL}`);
      await p.page.selectOption('#f-level', 'ERROR');
      await waitForTotal(p.page, ERRORS);
      assert.deepEqual([...new Set(await texts(p.page, '.lvl'))], ['ERROR']);
      assert.match(p.page.url(), /level=ERROR/);

      await p.page.selectOption('#f-level', '>=WARNING');
      await waitForTotal(p.page, WARNING_AND_ABOVE);
      assert.deepEqual([...new Set(await texts(p.page, '.lvl'))].sort(), ['CRITICAL', 'ERROR', 'WARNING']);
      assert.match(p.page.url(), /level=%3E%3DWARNING/);
      p.check();
    } finally {
      await p.close();
    }
  });

  test('containers: several at once from the picker, repeated in the URL; a shared URL applies its filters', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(svc.url + '/');
      await waitForRange(p.page, `of ${TOTAL}`);
      const picker = p.page.locator('#f-container');
      await picker.locator('summary').click();
      await p.page.waitForFunction(() => document.querySelectorAll('#f-container-list input').length === 3);
      assert.deepEqual(await p.page.locator('#f-container-list .picker-item > span.mono').allTextContents(), ['db', 'web', 'worker']);
      assert.equal(await picker.locator('summary').textContent(), 'All containers');
      await picker.locator('label', { hasText: 'worker' }).locator('input').check();
      await waitForTotal(p.page, WORKER_LINES);
      assert.deepEqual([...new Set(await texts(p.page, '.c-container'))], ['worker']);
      await picker.locator('label', { hasText: 'db' }).locator('input').check();
      await waitForTotal(p.page, WORKER_LINES + 12);
      assert.deepEqual([...new Set(await texts(p.page, '.c-container'))].sort(), ['db', 'worker']);
      assert.equal(new URL(p.page.url()).searchParams.getAll('container').sort().join(), 'db,worker');
      assert.equal(await picker.locator('summary').textContent(), 'db, worker');
      // Set, it looks set: the field is marked (accent border), unlike the untouched level.
      assert.equal(await p.page.locator('.field:has(#f-container)').getAttribute('class'), 'field optional is-set');
      assert.equal(await p.page.locator('.field:has(#f-level)').evaluate((n) => n.classList.contains('is-set')), false);
      const colors = await p.page.evaluate(() => [
        getComputedStyle(document.querySelector('#f-container summary')).borderColor,
        getComputedStyle(document.querySelector('#f-level')).borderColor,
      ]);
      assert.notEqual(colors[0], colors[1], 'an active filter does not look like a default');
      await p.page.keyboard.press('Escape');
      assert.equal(await picker.evaluate((d) => d.open), false);

      await p.page.goto(svc.url + '/?container=worker&container=db&level=ERROR&range=1h');
      await waitForTotal(p.page, 2);
      assert.deepEqual([...new Set(await texts(p.page, '.c-container'))], ['worker']);
      assert.equal(await picker.locator('summary').textContent(), 'worker, db');
      assert.equal(await p.page.inputValue('#f-level'), 'ERROR');
      assert.equal(await p.page.inputValue('#f-range'), '1h');
      p.check();
    } finally {
      await p.close();
    }
  });

  test('expanding an entry shows the whole multi-line message, its stream and id', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(svc.url + '/?container=web&level=ERROR');
      await waitForTotal(p.page, 1);
      const row = rows(p.page).first();
      assert.equal(await row.locator('.c-msg').textContent(), TRACEBACK[0]);
      assert.equal(await row.locator('.c-more').textContent(), '+' + (TRACEBACK.length - 1));
      assert.equal(await row.locator('.log-message').count(), 0, 'collapsed at first');
      await row.locator('.log-line').click();
      const message = row.locator('pre.log-message');
      await message.waitFor();
      assert.equal(await message.textContent(), TRACEBACK.join('\n'));
      assert.equal(await message.isVisible(), true);
      assert.equal(await row.locator('.d-stream').textContent(), 'stderr');
      const id = await row.getAttribute('data-id');
      assert.equal(await row.locator('.d-id').textContent(), '#' + id);
      assert.equal(await row.locator('.log-line').getAttribute('aria-expanded'), 'true');
      await row.locator('.log-line').click();
      assert.equal(await row.locator('pre.log-message').count(), 0);
      p.check();
    } finally {
      await p.close();
    }
  });

  test('the histogram draws stacked bars by level; clicking a bar zooms to its time range', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(svc.url + '/?range=1h');
      await waitForRange(p.page, `of ${TOTAL}`);
      await p.page.locator(HIST_BAR).first().waitFor();
      const segments = await p.page.locator(HIST_BAR).evaluateAll((nodes) => nodes.map((n) => ({
        level: n.dataset.series, index: Number(n.dataset.index), y: Number(n.getAttribute('y')),
        height: Number(n.getAttribute('height')), fill: getComputedStyle(n).fill,
      })));
      assert.ok(segments.length > 5, `bars drawn (${segments.length} segments)`);
      assert.ok(segments.every((s) => s.height > 0));
      const levels = new Set(segments.map((s) => s.level));
      for (const level of ['INFO', 'WARNING', 'ERROR', 'CRITICAL']) assert.ok(levels.has(level), `${level} is drawn`);
      // Each level in its colour, the serious levels at the bottom of each stack.
      const colours = { INFO: 'rgb(79, 134, 217)', WARNING: 'rgb(224, 169, 63)', ERROR: 'rgb(229, 86, 106)', CRITICAL: 'rgb(181, 123, 255)' };
      for (const s of segments) if (colours[s.level]) assert.equal(s.fill, colours[s.level], `${s.level} bar colour`);
      const rank = ['CRITICAL', 'ERROR', 'WARNING', 'INFO', 'DEBUG'];
      for (const a of segments) {
        for (const b of segments) {
          if (a.index === b.index && rank.indexOf(a.level) < rank.indexOf(b.level)) assert.ok(a.y > b.y, `${a.level} below ${b.level}`);
        }
      }
      assert.match(await p.page.locator('#hist-legend').textContent(), /INFO/);

      // Hovering a bar reads out its time range, its total and its levels.
      await hoverBar(p.page);
      const tip = p.page.locator('#histogram .mchart-tip');
      await tip.waitFor({ state: 'visible' });
      assert.match(await tip.locator('.mchart-tip-total').textContent(), /^\d[\d,]* entr(y|ies)$/);
      assert.ok((await tip.locator('.mchart-tip-name').allTextContents()).every((name) => rank.includes(name)));
      assert.match(await tip.textContent(), /Click to zoom in/);

      const zoomed = p.page.waitForRequest((r) => r.url().includes('/api/logs?') && /until=\d{4}-/.test(r.url()));
      await clickBar(p.page);
      const request = new URL((await zoomed).url());
      const since = Date.parse(request.searchParams.get('since'));
      const until = Date.parse(request.searchParams.get('until'));
      assert.ok(since < until && until - since <= 60 * 60_000 / 10, 'one bar of the hour');
      await p.page.locator('#zoom-banner').waitFor({ state: 'visible' });
      assert.match(p.page.url(), /since=.*until=/);
      await p.page.waitForFunction(() => document.querySelectorAll('#log-list > li').length > 0);
      for (const time of await rows(p.page).locator('time.c-time').evaluateAll((n) => n.map((t) => t.getAttribute('datetime')))) {
        const t = Date.parse(time);
        assert.ok(t >= since && t <= until, `${time} lies in the zoomed range`);
      }
      await p.page.click('#zoom-out');
      await p.page.locator('#zoom-banner').waitFor({ state: 'hidden' });
      await waitForRange(p.page, `of ${TOTAL}`);
      p.check();
    } finally {
      await p.close();
    }
  });

  test('HTML in a log line is shown as text and never runs', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(svc.url + '/?search=onerror');
      await waitForTotal(p.page, 1);
      const row = rows(p.page).first();
      assert.equal(await row.locator('.c-msg').textContent(), XSS_MESSAGE);
      await row.locator('.log-line').click();
      assert.equal(await row.locator('pre.log-message').textContent(), XSS_MESSAGE);
      assert.equal(await p.page.locator('#content img').count(), 0, 'no <img> element was created');
      // Give a would-be onerror handler time to fire before concluding nothing ran.
      await p.page.waitForTimeout(300);
      p.check();
    } finally {
      await p.close();
    }
  });

  test('live tail: new lines appear at the top; a reader scrolled down keeps their place', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(svc.url + '/');
      await waitForRange(p.page, `of ${TOTAL}`);
      const tail = p.page.waitForRequest((r) => r.url().includes('/api/logs/tail?'));
      await p.page.click('#live-toggle');
      const tailUrl = new URL((await tail).url());
      assert.equal(tailUrl.searchParams.get('api_key'), svc.apiKey);
      await p.page.waitForFunction(() => document.querySelector('#live-status')?.textContent === 'Live');
      assert.match(p.page.url(), /live=1/);
      assert.equal(await p.page.locator('#live-toggle').getAttribute('aria-pressed'), 'true');

      containers.worker.append([{ text: JSON.stringify({ level: 'error', msg: 'live line one' }), stream: 'stdout', date: new Date() }]);
      await p.page.waitForFunction(
        () => document.querySelector('#log-list > li .c-msg')?.textContent.includes('live line one'),
        null, { timeout: 10_000 },
      );
      assert.equal(await rows(p.page).first().locator('.lvl').textContent(), 'ERROR');

      // Scroll into the list, then let three lines arrive: the row being read stays put and
      // a pill offers the way up.
      await p.page.evaluate(() => {
        const row = document.querySelectorAll('#log-list > li')[40];
        window.scrollTo({ top: row.getBoundingClientRect().top + window.scrollY - 200 });
      });
      const anchorId = await p.page.evaluate(() => document.querySelectorAll('#log-list > li')[40].dataset.id);
      const topBefore = await p.page.evaluate((id) =>
        document.querySelector(`#log-list > li[data-id="${id}"]`).getBoundingClientRect().top, anchorId);
      const now = new Date();
      containers.worker.append([1, 2, 3].map((n) => ({
        text: JSON.stringify({ level: 'info', msg: `live line ${n + 1}` }), stream: 'stdout', date: now,
      })));
      await p.page.waitForFunction(() => document.querySelector('#new-lines:not([hidden])')?.textContent.includes('3 new lines'),
        null, { timeout: 10_000 });
      const topAfter = await p.page.evaluate((id) =>
        document.querySelector(`#log-list > li[data-id="${id}"]`).getBoundingClientRect().top, anchorId);
      assert.ok(Math.abs(topAfter - topBefore) <= 1, `the row being read moved from ${topBefore} to ${topAfter}`);
      assert.match(await rows(p.page).first().locator('.c-msg').textContent(), /live line 4/);

      await p.page.click('#new-lines');
      await p.page.locator('#new-lines').waitFor({ state: 'hidden' });
      await p.page.waitForFunction(() => {
        const first = document.querySelector('#log-list > li');
        return first.getBoundingClientRect().top >= document.querySelector('.app-header').getBoundingClientRect().bottom;
      });

      // Off again: the list is a normal page and the stream is closed.
      await p.page.click('#live-toggle');
      await waitForRange(p.page, `of ${TOTAL + 4}`);
      assert.doesNotMatch(p.page.url(), /live=1/);
      p.check();
    } finally {
      await p.close();
    }
  });

  test('time range presets and a custom duration become `since`; Back restores the filters', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      // The web container's one ERROR (the live tail test adds lines to the worker).
      await p.page.goto(svc.url + '/?container=web&level=ERROR');
      await waitForTotal(p.page, 1);
      const preset = p.page.waitForRequest((r) => r.url().includes('/api/logs?') && /since=\d{4}-/.test(r.url()));
      await p.page.selectOption('#f-range', '5m');
      const since = Date.parse(new URL((await preset).url()).searchParams.get('since'));
      assert.ok(Math.abs(Date.now() - 5 * 60_000 - since) < 30_000, 'since is five minutes ago');
      await p.page.getByText('No log entries match these filters').waitFor();

      await p.page.selectOption('#f-range', 'custom');
      await p.page.fill('#f-range-custom', '2h');
      await waitForTotal(p.page, 1);
      assert.match(p.page.url(), /range=2h/);
      await p.page.fill('#f-range-custom', 'soon');
      await p.page.waitForFunction(() => document.querySelector('#f-range-custom').classList.contains('invalid'));

      // Filters replace the history entry; paging and zooming push one. Back from a zoom
      // returns to the range it came from.
      await clickBar(p.page);
      await p.page.locator('#zoom-banner').waitFor({ state: 'visible' });
      await p.page.goBack();
      await p.page.locator('#zoom-banner').waitFor({ state: 'hidden' });
      await waitForTotal(p.page, 1);
      assert.equal(await p.page.inputValue('#f-level'), 'ERROR');
      assert.equal(await p.page.inputValue('#f-range-custom'), '2h');
      p.check();
    } finally {
      await p.close();
    }
  });

  test('auto-refresh shows a container that appears later', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(svc.url + '/?search=latecomer&refresh=5s');
      await p.page.getByText('No log entries match these filters').waitFor();
      assert.equal(await p.page.inputValue('#f-refresh'), '5s');
      fakeContainer(svc.root, 'latecomer', [{ text: 'INFO latecomer started', stream: 'stdout', date: new Date() }]);
      await p.page.locator('#log-list .c-container', { hasText: 'latecomer' }).waitFor({ timeout: 20_000 });
      p.check();
    } finally {
      await p.close();
    }
  });

  test('on a phone nothing scrolls sideways and the optional filters fold away', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey, viewport: { width: 390, height: 844 } });
    try {
      await p.page.goto(svc.url + '/');
      await p.page.locator('#log-list > li').first().waitFor();
      await p.page.locator(HIST_BAR).first().waitFor();
      const overflow = await p.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `page is ${overflow}px wider than the screen`);
      assert.equal(await p.page.locator('#f-level').isVisible(), false);
      await p.page.click('#filters-toggle');
      assert.equal(await p.page.locator('#f-level').isVisible(), true);
      assert.equal(await p.page.locator('#live-toggle').isVisible(), true);
      p.check();
    } finally {
      await p.close();
    }
  });

  // ---------------------------------------------------------------- issue 8: logs read as time

  /** Polls `/api/logs` until `query` matches `n` entries. */
  async function waitForApi(query, n) {
    const deadline = Date.now() + 20_000;
    let last = null;
    while (Date.now() < deadline) {
      last = await svc.api('GET', '/api/logs?' + query);
      if (last.total >= n) return last;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`expected ${n} entries for ${query}, have ${JSON.stringify(last)}`);
  }

  const JOB_TRACEBACK = [
    'Traceback (most recent call last):',
    '  File "/app/jobs/invoices.py", line 31, in run',
    '    total = order["customer_id"]',
    "KeyError: 'customer_id'",
  ];

  test('time order: a traceback closed late by the idle timer sits among the lines by its time; "Lines before this" shows its neighbours', async () => {
    // One file, read in one poll: the stdout lines close at once, the traceback a second
    // later, when the idle timer closes it; the list still shows it by its time.
    const t0 = Date.now() - 10 * 60_000;
    fakeContainer(svc.root, 'jobs', [
      ...JOB_TRACEBACK.map((text) => ({ text, stream: 'stderr', date: new Date(t0) })),
      ...[1, 2, 3, 4].map((n) => ({ text: `tick ${n}`, stream: 'stdout', date: new Date(t0 + n * 1000) })),
    ]);
    await waitForApi('container=jobs', 5);
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(svc.url + '/?container=jobs');
      await waitForTotal(p.page, 5);
      assert.deepEqual(await texts(p.page, '.c-msg'), ['tick 4', 'tick 3', 'tick 2', 'tick 1', JOB_TRACEBACK[0]]);
      const times = await p.page.locator('#log-list > li time').evaluateAll((nodes) => nodes.map((n) => Date.parse(n.dateTime)));
      assert.deepEqual(times, times.slice().sort((a, b) => b - a), 'newest first by time');

      // Lines before the traceback: its container's lines around it, a banner naming it.
      const traceback = rows(p.page).last();
      await traceback.locator('.log-line').click();
      await traceback.locator('.context-button').click();
      const banner = p.page.locator('#anchor-banner');
      await banner.waitFor({ state: 'visible' });
      await p.page.waitForFunction(() => document.querySelector('#log-list > li.anchor'));
      const text = await banner.textContent();
      assert.match(text, /Lines of jobs before/);
      assert.match(text, /Traceback \(most recent call last\):/);
      assert.ok(new URL(p.page.url()).searchParams.get('anchor'), 'the anchor is in the URL');
      assert.deepEqual(await texts(p.page, '.c-msg'), ['tick 4', 'tick 3', 'tick 2', 'tick 1', JOB_TRACEBACK[0]]);
      assert.equal(await p.page.locator('#log-list > li.after-anchor').count(), 4, 'the next lines, shown above it');
      assert.equal(await p.page.locator('#log-list > li.anchor .c-msg').textContent(), JOB_TRACEBACK[0]);
      await p.page.click('#anchor-back');
      await banner.waitFor({ state: 'hidden' });
      assert.equal(new URL(p.page.url()).search, '?container=jobs');
      await waitForTotal(p.page, 5);
      p.check();
    } finally {
      await p.close();
    }
  });

  test('PostgreSQL DETAIL, HINT, STATEMENT and CONTEXT lines are part of their ERROR entry', async () => {
    const fixture = readFileSync(join(REPO_ROOT, 'services/log-viewer/tests/fixtures/postgres.log'), 'utf8').trimEnd().split('\n');
    const t0 = Date.now() - 5 * 60_000;
    fakeContainer(svc.root, 'pg', fixture.map((text, i) => ({ text, stream: 'stderr', date: new Date(t0 + i * 10) })));
    await waitForApi('container=pg', 10);
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(svc.url + '/?container=pg&level=ERROR');
      await waitForTotal(p.page, 3);
      const messages = await texts(p.page, '.c-msg');
      assert.ok(messages.every((m) => /ERROR: /.test(m)), JSON.stringify(messages));
      assert.deepEqual(await texts(p.page, '.c-more'), ['+3', '+4', '+2']);
      const duplicate = rows(p.page).last();
      await duplicate.locator('.log-line').click();
      const whole = await duplicate.locator('pre.log-message').textContent();
      assert.match(whole, /ERROR: {2}duplicate key value[^\n]*\n.*DETAIL: {2}Key \(id\)=\(42\) already exists\.\n.*STATEMENT: {2}INSERT INTO orders/);
      p.check();
    } finally {
      await p.close();
    }
  });

  test('JSON lines show their message first, the other fields as chips, the raw line one click away', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(svc.url + '/?container=worker&search=redis');
      await waitForTotal(p.page, 2);
      const row = rows(p.page).first();
      assert.equal(await row.locator('.json-msg').textContent(), 'charge_card failed: connection refused at redis:6379');
      // level is the row's own column: no chip repeats it.
      assert.deepEqual(await row.locator('.chip').allTextContents(), ['job=job-14']);
      await row.locator('.log-line').click();
      assert.deepEqual(await row.locator('.json-fields dt').allTextContents(), ['msg', 'level', 'job']);
      const raw = row.locator('pre.log-message');
      assert.equal(await raw.isVisible(), false);
      await row.locator('.raw-toggle').click();
      assert.equal(await raw.isVisible(), true);
      assert.equal(await raw.textContent(), JSON.stringify({ level: 'error', msg: 'charge_card failed: connection refused at redis:6379', job: 'job-14' }));
      assert.equal(await row.locator('.json-fields').isVisible(), false);
      p.check();
    } finally {
      await p.close();
    }
  });

  test('a deep link with since, until and containers opens that window, its filters shown as set', async () => {
    const since = new Date(seedStart + 10 * 60_000).toISOString();
    const until = new Date(seedStart + 20 * 60_000).toISOString();
    const query = `since=${since}&until=${until}&container=web&container=db`;
    const expected = (await svc.api('GET', '/api/logs?limit=1&' + query)).total;
    assert.ok(expected > 10 && expected < 100, `a window with some of the seed: ${expected}`);
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      const listed = p.page.waitForRequest((r) => r.url().includes('/api/logs?') && r.url().includes('until='));
      await p.page.goto(svc.url + '/?' + query);
      const url = new URL((await listed).url());
      assert.equal(url.searchParams.get('since'), since);
      assert.equal(url.searchParams.get('until'), until);
      assert.deepEqual(url.searchParams.getAll('container'), ['web', 'db']);
      await waitForTotal(p.page, expected);
      await p.page.locator('#zoom-banner').waitFor({ state: 'visible' });
      assert.match(await p.page.locator('#zoom-banner').textContent(), /Time window[\s\S]* – [\s\S]*· 10 min/);
      assert.equal(await p.page.locator('#f-container summary').textContent(), 'web, db');
      assert.equal(await p.page.locator('.field:has(#f-range)').evaluate((n) => n.classList.contains('is-set')), true);
      const times = await p.page.locator('#log-list > li time').evaluateAll((nodes) => nodes.map((n) => Date.parse(n.dateTime)));
      assert.ok(times.every((t) => t >= Date.parse(since) && t <= Date.parse(until)), 'every row inside the window');
      p.check();
    } finally {
      await p.close();
    }
  });

  test('live tail: the histogram and its legend count new lines as they arrive', async () => {
    const counter = fakeContainer(svc.root, 'counter', [{ text: 'WARNING: counter started', stream: 'stdout', date: new Date() }]);
    await waitForApi('container=counter', 1);
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(svc.url + '/?container=counter&live=1');
      await p.page.waitForFunction(() => document.querySelector('#live-status')?.textContent === 'Live');
      const legend = p.page.locator('#hist-legend .legend-item', { hasText: 'WARNING' });
      await p.page.waitForFunction(() => /WARNING\s*1$/.test(document.querySelector('#hist-legend')?.textContent.trim() || ''));
      counter.append([1, 2].map((n) => ({ text: `WARNING: counter ${n}`, stream: 'stdout', date: new Date() })));
      await p.page.waitForFunction(() => /WARNING\s*3$/.test(document.querySelector('#hist-legend')?.textContent.trim() || ''));
      assert.equal(await legend.count(), 1);
      p.check();
    } finally {
      await p.close();
    }
  });

  test('the custom range keeps Reset on its row; on a phone a message shows more than 30 characters', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      await p.page.goto(svc.url + '/?range=90m&container=web');
      await p.page.locator('#f-range-custom').waitFor({ state: 'visible' });
      const [range, reset] = await Promise.all(['.field:has(#f-range)', '#reset-filters'].map((s) =>
        p.page.locator(s).evaluate((n) => n.getBoundingClientRect().toJSON())));
      assert.ok(Math.abs(range.bottom - reset.bottom) < 3 && reset.left >= range.right, `Reset beside the range: ${JSON.stringify({ range, reset })}`);
    } finally {
      await p.close();
    }
    const phone = await openPage(browser, svc, { key: svc.apiKey, viewport: { width: 390, height: 844 } });
    try {
      await phone.page.goto(svc.url + '/?container=pg');
      await phone.page.locator('#log-list > li').first().waitFor();
      const fit = await phone.page.evaluate(() => {
        const msg = document.querySelector('#log-list > li .c-msg');
        const probe = document.createElement('span');
        probe.textContent = '0'.repeat(30);
        msg.appendChild(probe);
        const width = probe.getBoundingClientRect().width;
        probe.remove();
        const prefix = msg.querySelector('.c-prefix');
        return { room: msg.clientWidth, thirty: width, prefixShown: !!prefix && prefix.getClientRects().length > 0 };
      });
      assert.ok(fit.room >= fit.thirty, `30 characters fit on one line of the message: ${JSON.stringify(fit)}`);
      assert.equal(fit.prefixShown, false, 'the timestamp the time column repeats is left out on a phone');
      phone.check();
    } finally {
      await phone.close();
    }
  });

  test('an unreadable LOG_SOURCES is named in /health and in the empty list', async () => {
    const lonely = await startService({
      service: 'log-viewer',
      apiKey: 'lonely-' + process.pid,
      env: (dir) => ({ LOG_SOURCES: join(dir, 'no-such-directory'), POLL_INTERVAL: '0.1', RESCAN_INTERVAL: '0.2' }),
    });
    try {
      const health = await (await fetch(lonely.url + '/health')).json();
      assert.equal(health.status, 'ok');
      const p = await openPage(browser, lonely, { key: lonely.apiKey });
      try {
        await p.page.goto(lonely.url + '/');
        await p.page.getByText('LOG_SOURCES cannot be read').waitFor();
        assert.match(await p.page.locator('#content').textContent(), /no-such-directory: No such file or directory/);
        const after = await (await fetch(lonely.url + '/health')).json();
        assert.equal(after.log_sources.readable, false);
        p.check();
      } finally {
        await p.close();
      }
    } finally {
      await lonely.stop();
    }
  });

  // Last: it adds 700 lines to `web`, which the counts of the tests above do not expect.
  test('live tail in a tab that draws no frames keeps only the newest 500 lines waiting', async () => {
    const p = await openPage(browser, svc, { key: svc.apiKey });
    try {
      // A background tab runs no animation frames: hold them while `window.__frames.hold`,
      // and count the stream's log events as they are received.
      await p.page.addInitScript(() => {
        const frames = { hold: false, held: new Map(), next: 1 };
        window.__frames = frames;
        window.__logEvents = 0;
        const request = window.requestAnimationFrame.bind(window);
        const cancel = window.cancelAnimationFrame.bind(window);
        window.requestAnimationFrame = (callback) => {
          if (!frames.hold) return request(callback);
          const id = -(frames.next++);
          frames.held.set(id, callback);
          return id;
        };
        window.cancelAnimationFrame = (id) => (id < 0 ? frames.held.delete(id) : cancel(id));
        window.__releaseFrames = () => {
          frames.hold = false;
          const held = [...frames.held.values()];
          frames.held.clear();
          for (const callback of held) callback(performance.now());
        };
        const addListener = EventSource.prototype.addEventListener;
        EventSource.prototype.addEventListener = function (type, listener, options) {
          const counted = type === 'log'
            ? function (event) { window.__logEvents++; return listener.call(this, event); }
            : listener;
          return addListener.call(this, type, counted, options);
        };
      });
      await p.page.goto(svc.url + '/?container=web&live=1');
      await p.page.waitForFunction(() => document.querySelector('#live-status')?.textContent === 'Live');
      await rows(p.page).nth(40).waitFor();
      // Read inside the list, so the pill counts what was waiting.
      await p.page.evaluate(() => {
        const row = document.querySelectorAll('#log-list > li')[40];
        window.scrollTo({ top: row.getBoundingClientRect().top + window.scrollY - 200 });
        window.__frames.hold = true;
      });
      const received = await p.page.evaluate(() => window.__logEvents);
      const now = Date.now();
      containers.web.append(Array.from({ length: 700 }, (_, i) => ({
        text: `INFO:     burst line ${i + 1}`, stream: 'stdout', date: new Date(now + i),
      })));
      // Polled by time: Playwright's default polling runs on animation frames, held here.
      await p.page.waitForFunction((expected) => window.__logEvents >= expected, received + 700,
        { timeout: 20_000, polling: 100 });
      assert.equal(await rows(p.page).filter({ hasText: 'burst line' }).count(), 0, 'nothing is drawn while frames are held');

      await p.page.evaluate(() => window.__releaseFrames());
      await p.page.waitForFunction(() => document.querySelector('#new-lines:not([hidden])'));
      assert.match(await p.page.locator('#new-lines').textContent(), /↑ 500 new lines/);
      assert.equal(await rows(p.page).count(), 500);
      assert.match(await rows(p.page).first().locator('.c-msg').textContent(), /burst line 700\s*$/);
      assert.match(await rows(p.page).last().locator('.c-msg').textContent(), /burst line 201\s*$/);
      assert.match(await p.page.locator('#summary').textContent(), /500 lines shown/);
      p.check();
    } finally {
      await p.close();
    }
  });
});
