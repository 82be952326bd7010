// Shared by the browser tests and screenshots.mjs: starts a real service (error-tracker,
// log-viewer, metrics-collector or browser-relay) on port 0 in a temp dir, seeds it (through its
// API, or with fake Docker containers on disk), and launches Debian's headless Chromium.

import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import { startService } from './service.mjs';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

// This machine has no network: without these flags Chromium tries to reach Google's services
// and misbehaves (slow start-up, hangs).
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

export const XSS_MESSAGE = '<img src=x onerror=alert(1)>';
export const SESSION_ID = 'sess-7f3a9c2e';

export function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 60_000 });
}

export { startService };

// ------------------------------------------------------------------ seed data

const SERVER_TYPES = [
  ['KeyError', "'customer_id'", 'orders.py', 'load_order'],
  ['ValueError', 'invalid literal for int() with base 10: \'12a\'', 'cart.py', 'parse_quantity'],
  ['TimeoutError', 'upstream payment gateway did not answer within 10 s', 'payments.py', 'charge'],
  ['IntegrityError', 'UNIQUE constraint failed: invoices.number', 'invoices.py', 'create_invoice'],
  ['ConnectionResetError', '[Errno 104] Connection reset by peer', 'mailer.py', 'send'],
  ['PermissionError', "[Errno 13] Permission denied: '/var/lib/shop/exports'", 'exports.py', 'write_csv'],
  ['ZeroDivisionError', 'division by zero', 'reports.py', 'conversion_rate'],
  ['AttributeError', "'NoneType' object has no attribute 'email'", 'accounts.py', 'notify_owner'],
  ['TypeError', "unsupported operand type(s) for +: 'int' and 'str'", 'pricing.py', 'total'],
  ['JSONDecodeError', 'Expecting value: line 1 column 1 (char 0)', 'webhooks.py', 'handle_event'],
];

function pythonTraceback(file, func, line, type, message) {
  return [
    'Traceback (most recent call last):',
    '  File "/usr/local/lib/python3.12/site-packages/flask/app.py", line 1473, in wsgi_app',
    '    response = self.full_dispatch_request()',
    '  File "/usr/local/lib/python3.12/site-packages/flask/app.py", line 882, in full_dispatch_request',
    '    rv = self.dispatch_request()',
    '  File "/app/shop/views.py", line 88, in checkout',
    `    result = ${func}(request.json)`,
    `  File "/app/shop/${file}", line ${line}, in ${func}`,
    `    return compute(payload["items"])`,
    `${type}: ${message}`,
  ].join('\n');
}

/** Deterministic pseudo-random numbers, so every run seeds the same data. */
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * The standard data set: 60 unresolved groups in `shop-api` (prod), 4 in `billing`
 * (staging; one with the message `<img src=x onerror=alert(1)>`), 3 browser errors in
 * `web-frontend` (two of them in session SESSION_ID). Returns ids worth knowing.
 */
export async function seedStandard(svc, options = {}) {
  const shopGroups = options.shopGroups ?? 60;
  const random = rng(42);
  const ids = {};
  const repeated = [];
  for (let i = 0; i < shopGroups; i++) {
    const [type, message, file, func] = SERVER_TYPES[i % SERVER_TYPES.length];
    const line = 20 + i;
    const report = {
      project: 'shop-api',
      environment: 'prod',
      exception_type: type,
      message: i >= SERVER_TYPES.length ? `${message} (order #${1000 + i})` : message,
      traceback: pythonTraceback(file, func, line, type, message),
      request_url: `https://shop.example.com/api/checkout/${1000 + i}`,
      request_method: i % 3 === 0 ? 'GET' : 'POST',
      request_headers: { 'User-Agent': 'python-requests/2.32.3', 'X-Request-Id': `req-${i}-a1b2`, Accept: 'application/json' },
      user_id: `user-${(i * 37) % 500}`,
      extra: { worker: `web-${i % 4}`, release: '2026.03.1' },
    };
    const res = await svc.api('POST', '/api/errors', report);
    if (i === 0) ids.shopFirst = res.id;
    // A few groups happen again and again; they are reported last (below), so the top of
    // the list shows a realistic mix of counts.
    if (i < 8) repeated.push({ report, times: Math.floor(random() * (i === 0 ? 40 : 12)) + 1 });
  }

  const billing = [
    ['RenderError', XSS_MESSAGE, 'templates.py'],
    ['StripeError', 'Card declined: insufficient funds', 'charges.py'],
    ['DecimalException', 'quantize result has too many digits for current context', 'amounts.py'],
    ['OperationalError', 'database is locked', 'ledger.py'],
  ];
  for (const [type, message, file] of billing) {
    const res = await svc.api('POST', '/api/errors', {
      project: 'billing', environment: 'staging', exception_type: type, message,
      traceback: pythonTraceback(file, 'run', 42, type, message),
      request_url: 'https://billing.internal/jobs/nightly', request_method: 'POST',
      request_headers: { 'X-Job': 'nightly-invoices' }, user_id: XSS_MESSAGE,
      extra: { note: XSS_MESSAGE },
    });
    if (message === XSS_MESSAGE) ids.xss = res.id;
  }

  const chromeStack = (fn, file, line) => [
    `TypeError: Cannot read properties of undefined (reading 'price')`,
    `    at ${fn} (https://shop.example.com/assets/${file}:${line}:17)`,
    '    at HTMLButtonElement.onClick (https://shop.example.com/assets/app-3f9c1e.js:1:48211)',
    '    at HTMLButtonElement.dispatch (https://shop.example.com/assets/vendor-8a7b2d.js:2:43184)',
  ].join('\n');
  const browserReport = (b) => ({
    project: 'web-frontend', environment: 'prod', exception_type: b.type, message: b.message,
    traceback: chromeStack(b.fn, b.file, b.line), request_url: b.page, request_method: 'BROWSER',
    extra: {
      session_id: b.session, page_url: b.page, release: 'web@4.12.0',
      user_agent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
    },
  });
  const browserErrors = [
    { type: 'TypeError', message: "Cannot read properties of undefined (reading 'price')", fn: 'renderCartLine', file: 'cart-5b1d2a.js', line: 214, session: SESSION_ID, page: 'https://shop.example.com/cart' },
    { type: 'ChunkLoadError', message: 'Loading chunk 412 failed. (timeout: https://shop.example.com/assets/412.js)', fn: 'loadChunk', file: 'runtime-0c1f.js', line: 88, session: SESSION_ID, page: 'https://shop.example.com/checkout' },
    { type: 'ReferenceError', message: 'gtag is not defined', fn: 'trackPurchase', file: 'analytics-77aa.js', line: 12, session: 'sess-other-1', page: 'https://shop.example.com/thanks' },
  ];
  for (const b of browserErrors) {
    const res = await svc.api('POST', '/api/errors', browserReport(b));
    if (b.type === 'TypeError') {
      ids.browser = res.id;
      repeated.splice(3, 0, { report: browserReport(b), times: 3 });
    }
  }
  for (const { report, times } of repeated) {
    for (let r = 1; r <= times; r++) {
      await svc.api('POST', '/api/errors', { ...report, user_id: report.user_id && `user-${(r * 53) % 500}` });
    }
  }
  ids.total = shopGroups + billing.length + browserErrors.length;
  return ids;
}

/** A traceback from the error-tracker's test fixtures (real Python and Node output). */
export function fixture(name) {
  return readFileSync(join(REPO_ROOT, 'services/error-tracker/tests/fixtures', name), 'utf8');
}

/**
 * Groups with real tracebacks: a Django view's KeyError (library frames first), Python
 * chains ("During handling…", "direct cause"), a Node error. Returns their ids.
 */
export async function seedTracebacks(svc) {
  const report = async (exception_type, message, file, extra = {}) => (await svc.api('POST', '/api/errors', {
    project: 'shop', environment: 'prod', exception_type, message, traceback: fixture(file),
    request_url: 'https://shop.example.com/api/orders', request_method: 'POST', ...extra,
  })).id;
  return {
    django: await report('KeyError', "'customer_id'", 'python_django.txt'),
    chained: await report('OrderError', 'cart file missing: /var/lib/shop/carts/8f3c2a.json', 'python_chained.txt'),
    cause: await report('OrderError', 'invalid order payload', 'python_cause.txt'),
    node: await report('TypeError', 'Invalid URL', 'node.txt', { project: 'api' }),
  };
}

// ------------------------------------------------------------------ log-viewer: fake Docker

/** Docker's `time`: RFC 3339 with nanoseconds. */
export const dockerTime = (date) => date.toISOString().replace(/Z$/, '000000Z');

/** One line of a json-file log: `{"log":"text\n","stream":...,"time":...}`. */
export function dockerRecord(text, stream = 'stdout', date = new Date()) {
  return JSON.stringify({ log: text + '\n', stream, time: dockerTime(date) }) + '\n';
}

/**
 * A fake Docker container under `root` (laid out like /var/lib/docker/containers):
 * `<id>/config.v2.json` naming it and `<id>/<id>-json.log` holding `lines`, each
 * `{text, stream, date}`. Returns `{id, logPath, append(lines)}`.
 */
export function fakeContainer(root, name, lines = []) {
  const id = createHash('sha256').update(name).digest('hex');
  const folder = join(root, id);
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'config.v2.json'), JSON.stringify({ ID: id, Name: '/' + name }));
  const logPath = join(folder, `${id}-json.log`);
  const render = (items) => items.map((l) => dockerRecord(l.text, l.stream, l.date)).join('');
  writeFileSync(logPath, render(lines));
  return { id, name, logPath, append: (items) => appendFileSync(logPath, render(items)) };
}

/** A TCP port free right now on 127.0.0.1 (for services that must know each other's URL). */
export async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Starts target/debug/log-viewer reading `<temp dir>/containers`, which `write(root)` fills
 * first; polls fast so tests wait little; `env` adds variables (e.g. PORT, UI_LINKS).
 * Resolves with the service plus `root`.
 */
export async function startLogViewer(write, env = {}) {
  let root;
  const svc = await startService({
    service: 'log-viewer',
    apiKey: 'log-viewer-key-' + process.pid,
    setup: async (dir) => {
      root = join(dir, 'containers');
      mkdirSync(root, { recursive: true });
      if (write) await write(root);
    },
    env: () => ({
      LOG_SOURCES: root, POLL_INTERVAL: '0.1', RESCAN_INTERVAL: '0.2', TAIL_BUFFER: '100000000', ...env,
    }),
  });
  return Object.assign(svc, { root });
}

/** Polls `/api/stats` until `count` entries are stored (multiline entries close after 1 s). */
export async function waitForEntries(svc, count, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let last = null;
  while (Date.now() < deadline) {
    last = await svc.api('GET', '/api/stats');
    if (last.total_logs >= count) return last;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`expected ${count} entries, have ${JSON.stringify(last)}\n${svc.log()}`);
}

// ------------------------------------------------------------------ metrics-collector

/**
 * Starts target/debug/metrics-collector rolling minutes up every second (so points of past
 * minutes show soon); `env` adds variables.
 */
export function startMetrics(env = {}) {
  return startService({
    service: 'metrics-collector',
    apiKey: 'metrics-key-' + process.pid,
    env: () => ({ AGGREGATION_INTERVAL: '1', ...env }),
  });
}

/** Posts `points` to `/api/metrics` in batches of 1,000 (the API's limit). */
export async function postMetrics(svc, points) {
  for (let i = 0; i < points.length; i += 1000) {
    await svc.api('POST', '/api/metrics', points.slice(i, i + 1000));
  }
}

/** Polls `GET /api/metrics?<query>` until `ready(answer)` holds (e.g. enough rolled-up
 * buckets); returns the answer. */
export async function waitForMetrics(svc, query, ready, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  const path = '/api/metrics?' + new URLSearchParams(query);
  let last = null;
  while (Date.now() < deadline) {
    last = await svc.api('GET', path);
    if (ready(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${path}: not ready in time, last answer ${JSON.stringify(last).slice(0, 500)}\n${svc.log()}`);
}

/** The start of the minute `minutesAgo` before now, in Unix seconds, plus `second`. */
export function minuteAgo(minutesAgo, second = 0) {
  return Math.floor(Date.now() / 60000) * 60 - minutesAgo * 60 + second;
}

const ROUTES = [
  { route: '/api/products', method: 'GET', share: 0.45, ms: 38 },
  { route: '/api/cart', method: 'POST', share: 0.25, ms: 74 },
  { route: '/api/checkout', method: 'POST', share: 0.12, ms: 240 },
  { route: '/api/search', method: 'GET', share: 0.18, ms: 120 },
];
const PAGES = [
  { page: '/', lcp: 1500, inp: 90, cls: 0.02, fcp: 900, ttfb: 300, views: 9 },
  { page: '/products/{id}', lcp: 2300, inp: 140, cls: 0.06, fcp: 1300, ttfb: 520, views: 6 },
  { page: '/cart', lcp: 2900, inp: 260, cls: 0.04, fcp: 1700, ttfb: 650, views: 3 },
  { page: '/checkout', lcp: 4600, inp: 420, cls: 0.21, fcp: 2400, ttfb: 1100, views: 2 },
];

/**
 * A realistic shop over the last `hours`: request counts and durations (a histogram) per
 * route, a queue-depth gauge, orders, and browser Web Vitals for four pages (project
 * `shop`); a little of project `billing`. Deterministic apart from the current time.
 */
export function demoMetrics(hours = 6) {
  const random = rng(7);
  const points = [];
  const jitter = (base, spread) => base * (1 - spread + 2 * spread * random());
  for (let ago = hours * 60; ago >= 0; ago--) {
    const t = minuteAgo(ago, 5);
    // Traffic follows a slow wave with a busy spell an hour ago.
    const load = 1 + 0.45 * Math.sin(ago / 55) + (ago > 50 && ago < 80 ? 0.8 : 0);
    for (const r of ROUTES) {
      const requests = Math.round(jitter(180 * r.share * load, 0.2));
      const errors = r.route === '/api/checkout' ? Math.round(requests * (ago > 50 && ago < 80 ? 0.12 : 0.02)) : 0;
      const labels = { method: r.method, route: r.route };
      points.push({ name: 'http_requests_total', type: 'counter', value: requests - errors, labels: { ...labels, status: '200' }, project: 'shop', timestamp: t });
      if (errors) points.push({ name: 'http_requests_total', type: 'counter', value: errors, labels: { ...labels, status: '500' }, project: 'shop', timestamp: t });
      for (let i = 0; i < 12; i++) {
        // A long tail: most requests near the route's typical time, a few far slower.
        const slow = random() < 0.04 ? 2 + random() * 3 : 1;
        points.push({ name: 'http_request_duration_ms', type: 'histogram', value: Math.round(jitter(r.ms * load * slow, 0.35)), labels, project: 'shop', timestamp: t + i });
      }
    }
    points.push({ name: 'queue_depth', type: 'gauge', value: Math.max(0, Math.round(jitter(12 * load * load, 0.3))), labels: { queue: 'emails' }, project: 'shop', timestamp: t });
    if (random() < 0.5) points.push({ name: 'orders_created_total', type: 'counter', value: Math.round(jitter(3 * load, 0.5)), project: 'shop', timestamp: t });
    if (ago % 5 === 0) {
      points.push({ name: 'invoices_sent_total', type: 'counter', value: Math.round(jitter(4, 0.5)), project: 'billing', timestamp: t });
      for (const p of PAGES) {
        for (let v = 0; v < p.views; v++) {
          const labels = { source: 'browser', page: p.page };
          for (const vital of ['lcp', 'inp', 'cls', 'fcp', 'ttfb']) {
            const value = jitter(p[vital] * (random() < 0.15 ? 1.8 : 1), 0.3);
            points.push({ name: 'web_vitals_' + vital, type: 'histogram', value: vital === 'cls' ? Number(value.toFixed(3)) : Math.round(value), labels, project: 'shop', timestamp: t + v });
          }
        }
      }
    }
  }
  return points;
}

/**
 * A fresh browser context (own localStorage) and page on `svc`; with `key` the API key is
 * stored before the first load. Collects JS errors, dialogs and CSP violations; `check()`
 * asserts there were none.
 */
export async function openPage(browser, svc, { key, viewport } = {}) {
  const context = await browser.newContext({
    viewport: viewport || { width: 1280, height: 800 },
    storageState: key === undefined ? undefined : {
      cookies: [],
      origins: [{ origin: svc.url, localStorage: [{ name: 'api_key', value: key }] }],
    },
  });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const problems = { pageErrors: [], dialogs: [], csp: [] };
  page.on('pageerror', (error) => problems.pageErrors.push(String(error)));
  page.on('dialog', async (dialog) => {
    problems.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    await dialog.dismiss();
  });
  page.on('console', (message) => {
    if (/Content.Security.Policy/i.test(message.text())) problems.csp.push(message.text());
  });
  return {
    page,
    context,
    problems,
    check() {
      assert.deepEqual(problems.pageErrors, [], 'JavaScript errors on the page');
      assert.deepEqual(problems.dialogs, [], 'dialogs opened (a script ran?)');
      assert.deepEqual(problems.csp, [], 'Content-Security-Policy violations');
    },
    close: () => context.close(),
  };
}

/** Waits until the page's `#range-info` line includes `text` (e.g. "Showing 1–50 of 60"). */
export async function waitForRange(page, text) {
  await page.waitForFunction(
    (expected) => (document.querySelector('#range-info')?.textContent || '').includes(expected),
    text,
  );
}

// ------------------------------------------------------------------ browser-relay

/**
 * Starts target/debug/browser-relay forwarding to the running `errorTracker` and `metrics`
 * services (their URLs and API keys), allowing the browser origins `corsOrigins` (a list).
 * Its `apiKey` is the ADMIN_API_KEY, so `api()` calls the admin endpoints; `createKey(project)`
 * makes a DSN key and resolves with its `public_key`. `env` adds variables.
 */
export async function startRelay({ errorTracker, metrics, corsOrigins = [], env = {} }) {
  const adminKey = 'relay-admin-key-' + process.pid;
  const relay = await startService({
    service: 'browser-relay',
    apiKey: adminKey,
    env: () => ({
      ADMIN_API_KEY: adminKey,
      ERROR_TRACKER_URL: errorTracker.url,
      ERROR_TRACKER_API_KEY: errorTracker.apiKey,
      METRICS_COLLECTOR_URL: metrics.url,
      METRICS_COLLECTOR_API_KEY: metrics.apiKey,
      CORS_ORIGINS: corsOrigins.join(','),
      ...env,
    }),
  });
  async function createKey(project) {
    const key = await relay.api('POST', '/api/dsn-keys', { project });
    assert.equal(key.project, project);
    assert.match(key.public_key, /^[0-9a-f]{32}$/);
    return key.public_key;
  }
  return Object.assign(relay, { createKey });
}
