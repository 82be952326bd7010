// Source maps for real: a small multi-file app (fixtures/relay-app) bundled and minified by
// esbuild with a source map, loaded in headless Chromium from its own origin; it throws inside
// a nested function and posts the browser's own error.stack to a real browser-relay (a real
// CORS preflight), which forwards it to a real error-tracker. The stored traceback must name
// the original files, lines and functions; a Firefox-format stack built from the same real
// minified positions must be mapped too; frames of a file without a map stay as they were.
//   cargo build -p error-tracker -p metrics-collector -p browser-relay
//   node --test tests/browser/relay.test.mjs

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as esbuild from 'esbuild';
import { REPO_ROOT, launchBrowser, startMetrics, startRelay, startService } from './harness.mjs';

const APP = join(REPO_ROOT, 'tests/browser/fixtures/relay-app');
const PROJECT = 'shop-web';
const RELEASE = '1.0.0';
const CHROMIUM_SESSION = 'sess-chromium-relay';
const FIREFOX_SESSION = 'sess-firefox-relay';
const UNMAPPED_SESSION = 'sess-no-map-relay';
const MESSAGE = 'unknown discount code: WINTER50';

// A third-party script served as is, with no source map: its frames must be kept unchanged.
const WIDGET_JS = `// A vendor widget, not part of the bundle and without a source map.
window.VendorWidget = {
  guarded(action) {
    return action();
  },
};
`;

let errorTracker;
let metrics;
let relay;
let pageServer;
let pageOrigin;
let dsnKey;
let bundle;
let buildDir;
let browser;

/** 1-based line and column of the first `needle` in a fixture source file. */
function position(file, needle) {
  const text = readFileSync(join(APP, file), 'utf8');
  const index = text.indexOf(needle);
  assert.ok(index >= 0, `${needle} in ${file}`);
  const before = text.slice(0, index).split('\n');
  return { line: before.length, column: before.at(-1).length + 1 };
}

/** The bundle: esbuild, bundled and minified, with a source map, written to a temp dir. The
 * outdir is the fixture folder (nothing written there), so the map's sources read `src/…`. */
async function buildApp() {
  const result = await esbuild.build({
    absWorkingDir: APP,
    entryPoints: { 'app.min': 'src/main.js' },
    outdir: APP,
    bundle: true,
    minify: true,
    sourcemap: true,
    format: 'iife',
    target: 'es2020',
    write: false,
    logLevel: 'silent',
  });
  buildDir = mkdtempSync(join(tmpdir(), 'monlight-relay-app-'));
  const out = {};
  for (const file of result.outputFiles) {
    const name = file.path.slice(APP.length + 1);
    writeFileSync(join(buildDir, name), file.contents);
    out[name] = file.text;
  }
  assert.deepEqual(Object.keys(out).sort(), ['app.min.js', 'app.min.js.map']);
  const map = JSON.parse(out['app.min.js.map']);
  assert.deepEqual(map.sources.sort(), ['src/checkout.js', 'src/main.js', 'src/money.js']);
  // Really minified: the original function names are gone from the code, kept in the map.
  for (const name of ['applyDiscount', 'checkout', 'placeOrder']) {
    assert.doesNotMatch(out['app.min.js'], new RegExp(`function ${name}\\b`));
    assert.ok(map.names.includes(name), `${name} in the map's names`);
  }
  return { js: readFileSync(join(buildDir, 'app.min.js'), 'utf8'), map: out['app.min.js.map'] };
}

/** The page's origin: the page, the bundle and the vendor widget. */
async function startPageServer() {
  const server = createServer((request, response) => {
    const path = new URL(request.url, 'http://x').pathname;
    const send = (type, body) => {
      response.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      response.end(body);
    };
    if (path === '/checkout') {
      const config = { relay: relay.url, key: dsnKey, release: RELEASE, session: CHROMIUM_SESSION };
      send('text/html; charset=utf-8', `<!doctype html>
<html><head><meta charset="utf-8"><title>Shop checkout</title></head>
<body>
<button id="order">Place order</button> <span id="total"></span>
<script>window.RELAY_CONFIG = ${JSON.stringify(config)};</script>
<script src="/vendor/widget.js"></script>
<script src="/assets/app.min.js" defer></script>
</body></html>`);
    } else if (path === '/assets/app.min.js') {
      send('text/javascript; charset=utf-8', bundle.js);
    } else if (path === '/vendor/widget.js') {
      send('text/javascript; charset=utf-8', WIDGET_JS);
    } else {
      response.writeHead(404, { 'Content-Type': 'text/plain' });
      response.end('not found');
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls the error-tracker until a group has an occurrence of `session`; resolves with the
 * group's detail and that occurrence. */
async function waitForOccurrence(session, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let list = null;
  while (Date.now() < deadline) {
    list = await errorTracker.api('GET', '/api/errors?' + new URLSearchParams({ session_id: session, resolved: 'all' }));
    if (list.errors.length > 0) {
      assert.equal(list.errors.length, 1, `one group for ${session}: ${JSON.stringify(list)}`);
      const detail = await errorTracker.api('GET', `/api/errors/${list.errors[0].id}`);
      const occurrence = detail.occurrences.find((o) => o.extra?.session_id === session);
      if (occurrence) return { group: list.errors[0], detail, occurrence };
    }
    await sleep(100);
  }
  const health = await fetch(relay.url + '/health').then((r) => r.text()).catch((e) => String(e));
  throw new Error(`no error of session ${session} reached the error-tracker in ${timeoutMs} ms; `
    + `last list ${JSON.stringify(list)}; relay health ${health}\n--- relay log\n${relay.log()}`);
}

/** The frame lines of a stack (V8 `    at …` or Firefox `fn@url:l:c`). */
const frames = (stack) => stack.split('\n').filter((l) => /^\s+at /.test(l) || /@.+:\d+:\d+$/.test(l));

/** Posts a report to the relay from node (no Origin: no CORS involved). */
async function postError(report) {
  const response = await fetch(relay.url + '/api/browser/errors', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Monlight-Key': dsnKey },
    body: JSON.stringify(report),
  });
  assert.equal(response.status, 202, await response.clone().text());
  assert.deepEqual(await response.json(), { status: 'accepted' });
}

// The original positions, read from the sources themselves: V8 places a frame at the `new` of
// `throw new`, at the callee's name of a call, and at the property of a method call.
const THROW = position('src/checkout.js', 'new RangeError');
const CALL_DISCOUNT = position('src/checkout.js', 'applyDiscount(subtotal');
const CALL_CHECKOUT = position('src/main.js', 'checkout(cart)');
const CALL_WIDGET = position('src/main.js', 'guarded(() =>');
const CALL_PLACE_ORDER = position('src/main.js', 'placeOrder();');

before(async () => {
  errorTracker = await startService({ service: 'error-tracker' });
  metrics = await startMetrics();
  bundle = await buildApp();
  pageServer = await startPageServer();
  pageOrigin = `http://127.0.0.1:${pageServer.address().port}`;
  relay = await startRelay({ errorTracker, metrics, corsOrigins: [pageOrigin] });
  dsnKey = await relay.createKey(PROJECT);
  const uploaded = await relay.api('POST', '/api/source-maps', {
    project: PROJECT, release: RELEASE, file_url: `${pageOrigin}/assets/app.min.js`, map_content: bundle.map,
  });
  assert.equal(uploaded.status, 'uploaded');
  assert.equal(uploaded.file_url, `${pageOrigin}/assets/app.min.js`);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  pageServer?.close();
  await relay?.stop();
  await metrics?.stop();
  await errorTracker?.stop();
  if (buildDir) rmSync(buildDir, { recursive: true, force: true });
});

/** Loads the page in Chromium and clicks "Place order" (once): the app throws, catches and
 * reports. Resolves with the browser's own stack, the relay's answer as the page saw it, and
 * the headers Chromium received with it. */
let chromiumRun = null;
function runInChromium() {
  chromiumRun ??= (async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      page.setDefaultTimeout(10_000);
      const pageErrors = [];
      page.on('pageerror', (error) => pageErrors.push(String(error)));
      const relayAnswer = page.waitForResponse((r) => r.url() === relay.url + '/api/browser/errors'
        && r.request().method() === 'POST');
      await page.goto(pageOrigin + '/checkout');
      await page.click('#order');
      await page.waitForFunction(() => window.orderOutcome !== undefined);
      const outcome = await page.evaluate(() => window.orderOutcome);
      const response = await relayAnswer;
      assert.deepEqual(pageErrors, [], 'JavaScript errors on the page');
      return { outcome, headers: await response.allHeaders(), requestHeaders: await response.request().allHeaders() };
    } finally {
      await context.close();
    }
  })();
  return chromiumRun;
}

describe('browser-relay with a real bundle, source map and browser', () => {
  test('the relay answers the page origin\'s preflight, and nobody else\'s', async () => {
    const preflight = (origin) => fetch(relay.url + '/api/browser/errors', {
      method: 'OPTIONS',
      headers: {
        Origin: origin, 'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type,x-monlight-key',
      },
    });
    const allowed = await preflight(pageOrigin);
    assert.equal(allowed.status, 204);
    assert.equal(allowed.headers.get('access-control-allow-origin'), pageOrigin);
    assert.match(allowed.headers.get('access-control-allow-methods'), /\bPOST\b/);
    assert.match(allowed.headers.get('access-control-allow-headers').toLowerCase(), /x-monlight-key/);
    assert.match(allowed.headers.get('vary') || '', /Origin/);
    const other = await preflight('http://127.0.0.1:1');
    assert.equal(other.headers.get('access-control-allow-origin'), null);
  });

  test('Chromium\'s error.stack from the minified bundle is stored with the original files, lines and functions', async (t) => {
    const { outcome, headers, requestHeaders } = await runInChromium();
    assert.equal(outcome.thrown, true);
    // The page could read the relay's answer: the preflight passed and the 202 carried
    // Access-Control-Allow-Origin (Chromium would have refused it otherwise).
    assert.equal(outcome.failed, undefined, `the page's fetch failed: ${outcome.failed}`);
    assert.deepEqual(outcome.sent, { status: 202, body: { status: 'accepted' } });
    assert.equal(requestHeaders.origin, pageOrigin);
    assert.equal(headers['access-control-allow-origin'], pageOrigin);
    assert.match(headers.vary || '', /Origin/);

    // The browser's own stack: minified names and positions in the bundle.
    const bundleUrl = `${pageOrigin}/assets/app.min.js`;
    assert.match(outcome.stack, new RegExp(`^RangeError: ${MESSAGE}\\n`));
    assert.ok(frames(outcome.stack).filter((f) => f.includes(bundleUrl + ':1:')).length >= 4, outcome.stack);
    assert.doesNotMatch(outcome.stack, /applyDiscount|placeOrder|src\/checkout\.js/);

    const { group, detail, occurrence } = await waitForOccurrence(CHROMIUM_SESSION);
    assert.equal(group.project, PROJECT);
    assert.equal(group.exception_type, 'RangeError');
    assert.equal(group.message, MESSAGE);
    assert.equal(group.source, 'browser');
    assert.equal(occurrence.request_method, 'BROWSER');
    assert.equal(occurrence.request_url, pageOrigin + '/checkout');
    assert.equal(occurrence.user_id, 'u-42');
    assert.equal(occurrence.extra.release, RELEASE);
    assert.equal(occurrence.extra.page_url, pageOrigin + '/checkout');
    assert.match(occurrence.extra.user_agent, /Chrome\//);

    const stored = occurrence.traceback;
    const show = `\n--- stored traceback\n${stored}\n--- browser stack\n${outcome.stack}`;
    for (const line of show.split('\n')) t.diagnostic(line);
    assert.equal(detail.traceback, stored, 'the group\'s traceback is its first occurrence\'s');
    assert.equal(stored.split('\n')[0], `RangeError: ${MESSAGE}`, show);
    const lines = frames(stored);
    assert.equal(lines.length, frames(outcome.stack).length, 'one line per frame' + show);
    // Innermost first: the nested function, its caller, the arrow placeOrder hands to the
    // widget, the widget (no map: as the browser wrote it), placeOrder, the click handler.
    assert.match(lines[0], new RegExp(`^    at applyDiscount \\((?:.*/)?src/checkout\\.js:${THROW.line}:${THROW.column}\\)$`), show);
    assert.match(lines[1], new RegExp(`^    at checkout \\((?:.*/)?src/checkout\\.js:${CALL_DISCOUNT.line}:${CALL_DISCOUNT.column}\\)$`), show);
    assert.match(lines[2], new RegExp(`\\((?:.*/)?src/main\\.js:${CALL_CHECKOUT.line}:${CALL_CHECKOUT.column}\\)$|^    at (?:.*/)?src/main\\.js:${CALL_CHECKOUT.line}:${CALL_CHECKOUT.column}$`), show);
    const widgetFrame = frames(outcome.stack).find((f) => f.includes('/vendor/widget.js:'));
    assert.ok(widgetFrame, outcome.stack);
    assert.equal(lines[3], widgetFrame, 'the unmapped frame is kept as it was' + show);
    assert.match(lines[4], new RegExp(`^    at placeOrder \\((?:.*/)?src/main\\.js:${CALL_WIDGET.line}:${CALL_WIDGET.column}\\)$`), show);
    assert.match(lines[5], new RegExp(`\\((?:.*/)?src/main\\.js:${CALL_PLACE_ORDER.line}:${CALL_PLACE_ORDER.column}\\)$`), show);
    assert.doesNotMatch(stored, /app\.min\.js/, 'every frame of the bundle is mapped' + show);
  });

  test('a Firefox-format stack with the same real minified positions is mapped too', async (t) => {
    const { outcome } = await runInChromium();
    // What Firefox prints for the same frames: `name@url:line:column`, no message line.
    const firefoxStack = frames(outcome.stack).map((frame) => {
      const named = /^\s+at (.+) \((.+:\d+:\d+)\)$/.exec(frame);
      if (named) return `${named[1].replace(/^.*\./, '').replace('<anonymous>', '')}@${named[2]}`;
      return '@' + /^\s+at (.+:\d+:\d+)$/.exec(frame)[1];
    }).join('\n') + '\n';
    const widgetFrame = firefoxStack.split('\n').find((f) => f.includes('/vendor/widget.js:'));
    assert.match(widgetFrame, /^guarded@http:\/\/127\.0\.0\.1:\d+\/vendor\/widget\.js:\d+:\d+$/);
    await postError({
      type: 'RangeError', message: MESSAGE, stack: firefoxStack, release: RELEASE,
      url: pageOrigin + '/checkout', session_id: FIREFOX_SESSION,
      user_agent: 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
      project: 'someone-else',
    });
    const { group, occurrence } = await waitForOccurrence(FIREFOX_SESSION);
    assert.equal(group.project, PROJECT, 'the project is the DSN key\'s, never the body\'s');
    assert.equal(occurrence.request_method, 'BROWSER');
    const stored = occurrence.traceback;
    const show = `\n--- stored traceback\n${stored}\n--- posted\n${firefoxStack}`;
    for (const line of show.split('\n')) t.diagnostic(line);
    const lines = stored.split('\n').filter((l) => l !== '');
    assert.equal(lines.length, firefoxStack.split('\n').filter((l) => l !== '').length, show);
    assert.match(lines[0], new RegExp(`^applyDiscount@(?:.*/)?src/checkout\\.js:${THROW.line}:${THROW.column}$`), show);
    assert.match(lines[1], new RegExp(`^checkout@(?:.*/)?src/checkout\\.js:${CALL_DISCOUNT.line}:${CALL_DISCOUNT.column}$`), show);
    assert.match(lines[2], new RegExp(`@(?:.*/)?src/main\\.js:${CALL_CHECKOUT.line}:${CALL_CHECKOUT.column}$`), show);
    assert.equal(lines[3], widgetFrame, 'the unmapped frame is kept as it was' + show);
    assert.match(lines[4], new RegExp(`^placeOrder@(?:.*/)?src/main\\.js:${CALL_WIDGET.line}:${CALL_WIDGET.column}$`), show);
    assert.match(lines[5], new RegExp(`@(?:.*/)?src/main\\.js:${CALL_PLACE_ORDER.line}:${CALL_PLACE_ORDER.column}$`), show);
    assert.doesNotMatch(stored, /app\.min\.js/, show);
  });

  test('a release without source maps keeps the stack exactly as the browser wrote it', async () => {
    const { outcome } = await runInChromium();
    await postError({
      type: 'RangeError', message: MESSAGE, stack: outcome.stack, release: '0.9.0',
      url: pageOrigin + '/checkout', session_id: UNMAPPED_SESSION,
    });
    const { occurrence } = await waitForOccurrence(UNMAPPED_SESSION);
    assert.equal(occurrence.traceback, outcome.stack);
    assert.equal(occurrence.extra.release, '0.9.0');
  });
});
