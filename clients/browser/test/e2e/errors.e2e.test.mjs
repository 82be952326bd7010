// End to end in headless Chromium against the real stack: the built IIFE on a page, an uncaught
// TypeError from a minified bundle whose source map went up with monlight-upload-sourcemaps →
// listed in the error-tracker with the original file, line and function; an error right
// before the tab closes → delivered by the beacon.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser } from '../../../../tests/browser/harness.mjs';
import { PROJECT, RELEASE, lineOf, sleep, startStack, uploadMaps, waitForSession } from './stack.mjs';

const SHOP = () => `<button id="pay">Pay</button> <span id="total"></span>
<script src="/assets/app.min.js"></script>`;

let stack;
let browser;

before(async () => {
  stack = await startStack({ pages: { '/cart': SHOP, '/leave': SHOP } });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

const frames = (stack) => stack.split('\n').filter((l) => /^\s+at /.test(l));

describe('@monlight/browser errors in Chromium', () => {
  test('the upload helper posts the bundle\'s map', async () => {
    const out = await uploadMaps(stack);
    assert.match(out, /app\.min\.js\.map → \/assets\/app\.min\.js/);
    assert.match(out, /1 source map\(s\) uploaded/);
    const list = await stack.relay.api('GET', '/api/source-maps?project=' + PROJECT);
    assert.deepEqual(list.source_maps.map((m) => [m.release, m.file_url]), [[RELEASE, '/assets/app.min.js']]);
  });

  test('an uncaught error in the minified bundle is listed with the original file, line and function', async (t) => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e));
    await page.goto(stack.pageOrigin + '/cart?step=pay');
    const session = await page.evaluate(() => Monlight.getSessionId());
    assert.equal(session, await page.evaluate(() => sessionStorage.getItem('monlight_session')));
    await page.click('#pay');
    const { group, occurrence } = await waitForSession(stack, session);
    // The page saw its own error (the SDK does not swallow it) and the browser stack was minified.
    assert.equal(pageErrors.length, 1);
    const browserStack = pageErrors[0].stack;
    assert.match(browserStack, /app\.min\.js:1:\d+/);

    assert.equal(group.project, PROJECT);
    assert.equal(group.exception_type, 'TypeError');
    assert.equal(group.message, "Cannot read properties of undefined (reading 'amount')");
    assert.equal(occurrence.request_method, 'BROWSER');
    assert.equal(occurrence.request_url, stack.pageOrigin + '/cart?step=pay');
    assert.equal(occurrence.user_id, 'u-7');
    assert.equal(occurrence.extra.release, RELEASE);
    assert.equal(occurrence.extra.session_id, session);
    assert.match(occurrence.extra.user_agent, /Chrome\//);
    assert.equal(occurrence.extra.context.environment, 'e2e');
    assert.equal(occurrence.extra.context.mechanism, 'onerror');

    const stored = occurrence.traceback;
    for (const line of stored.split('\n')) t.diagnostic(line);
    const lines = frames(stored);
    assert.equal(lines.length, frames(browserStack).length, stored);
    assert.match(lines[0], new RegExp(`^    at lineTotal \\((?:.*/)?src/cart\\.js:${lineOf('src/cart.js', 'line.quantity * line.price.amount')}:\\d+\\)$`), stored);
    assert.match(lines[1], new RegExp(`^    at computeTotal \\((?:.*/)?src/cart\\.js:${lineOf('src/cart.js', 'total += lineTotal(line)')}:\\d+\\)$`), stored);
    // The click handler: V8 names it after its receiver and minified name (HTMLButtonElement.c);
    // the relay maps its position, not that name.
    assert.match(lines[2], new RegExp(`^    at \\S+ \\((?:.*/)?src/main\\.js:${lineOf('src/main.js', 'computeTotal(CART)')}:\\d+\\)$`), stored);
    assert.doesNotMatch(stored, /app\.min\.js/, 'every frame mapped');

    // Sent once, by fetch (JSON, the key in the header; a beacon would be text/plain with ?key=).
    await sleep(300);
    const sent = stack.received.filter((r) => r.path.startsWith('/api/browser/errors') && r.body.includes(session));
    assert.equal(sent.length, 1, JSON.stringify(stack.received));
    assert.deepEqual([sent[0].path, sent[0].type, sent[0].key, sent[0].status], ['/api/browser/errors', 'application/json', stack.dsnKey, 202]);
    assert.equal(JSON.parse(sent[0].body).stack, browserStack, 'the browser\'s own stack, untouched');
    await context.close();
  });

  test('closing the tab right after an error: the beacon still delivers it', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(stack.pageOrigin + '/leave');
    const session = await page.evaluate(() => Monlight.getSessionId());
    // The error and the close in one go: the SDK's 0.5 s batching delay has not passed.
    await page.evaluate(() => {
      setTimeout(() => document.getElementById('pay').click(), 0);
    });
    await page.close({ runBeforeUnload: true });
    const { group, occurrence } = await waitForSession(stack, session);
    assert.equal(group.exception_type, 'TypeError');
    assert.equal(occurrence.extra.release, RELEASE);
    assert.match(occurrence.traceback, /at lineTotal \((?:.*\/)?src\/cart\.js:/, 'mapped too');
    const sent = stack.received.filter((r) => r.path.startsWith('/api/browser/errors') && r.body.includes(session));
    assert.equal(sent.length, 1, JSON.stringify(stack.received));
    // navigator.sendBeacon: the key in the query (no headers possible), a text/plain body.
    assert.equal(sent[0].path, `/api/browser/errors?key=${stack.dsnKey}`);
    assert.match(sent[0].type, /^text\/plain/);
    assert.equal(sent[0].key, null);
    assert.equal(sent[0].status, 202);
    await context.close();
  });
});
