// The unmodified @sentry/browser (npm) in headless Chromium: a minified bundle on a page throws a
// TypeError on a click; the SDK sends it through the browser-relay's Sentry tunnel; the relay maps
// the frames with the bundle's uploaded source map and forwards it; the error-tracker lists it with
// the ORIGINAL file and function names, the release, the environment and the user.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DSN_KEY, PROJECT, RELEASE, launchBrowser, lineOf, sleep, startStack, waitForGroup } from './stack.mjs';

const MESSAGE = "Cannot read properties of undefined (reading 'discount')";

let stack;
let browser;
/** The last event envelope the SDK sent through the tunnel (as text). */
let lastEnvelope;

before(async () => {
  stack = await startStack();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

const frames = (text) => text.split('\n').filter((l) => /^\s+at /.test(l));
const isCheckoutError = (g) => g.exception_type === 'TypeError' && g.message === MESSAGE;

/** One visit: a fresh context, a click on Pay; returns the page's error and the tunnel's answer. */
async function payOnce() {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e));
    await page.goto(stack.pageOrigin + '/checkout?step=pay');
    const tunnelled = page.waitForResponse(
      (r) => r.url() === stack.tunnel && (r.request().postData() || '').includes('"type":"event"'),
      { timeout: 15_000 },
    );
    await page.click('#pay');
    const response = await tunnelled;
    const envelope = response.request().postData();
    lastEnvelope = envelope;
    return { pageErrors, response, envelope, answer: await response.json() };
  } finally {
    await context.close();
  }
}

describe('@sentry/browser through the relay tunnel', () => {
  test("the bundle's source map goes up to the relay", async () => {
    const answer = await stack.relay.api('POST', '/api/source-maps', {
      project: PROJECT, release: RELEASE, file_url: '/assets/app.min.js', map_content: stack.bundle.map,
    });
    assert.equal(answer.file_url, '/assets/app.min.js');
    assert.equal(answer.release, RELEASE);
  });

  test('a TypeError in the minified bundle is one group, with the original file and function', async (t) => {
    for (let visit = 1; visit <= 2; visit++) {
      const { pageErrors, response, envelope, answer } = await payOnce();
      // The SDK does not swallow the error, and what the browser saw was minified.
      assert.equal(pageErrors.length, 1);
      assert.match(pageErrors[0].stack, /app\.min\.js:\d+:\d+/);
      assert.doesNotMatch(pageErrors[0].stack, /applyCoupon/);
      // The tunnel's answer: 200 {"id": the envelope's event_id}, readable by the page (CORS).
      const header = JSON.parse(envelope.split('\n')[0]);
      assert.equal(response.status(), 200, JSON.stringify(answer));
      assert.deepEqual(answer, { id: header.event_id });
      assert.equal(response.headers()['access-control-allow-origin'], stack.pageOrigin);
      assert.equal(header.dsn, stack.dsn);
      await waitForGroup(stack, (g) => isCheckoutError(g) && g.count === visit, `the TypeError, ${visit} time(s)`);
    }

    const { group, detail } = await waitForGroup(stack, isCheckoutError, 'the TypeError');
    const groups = (await stack.tracker.api('GET', `/api/errors?project=${PROJECT}&resolved=all`)).errors;
    assert.deepEqual(groups.filter(isCheckoutError).map((g) => [g.id, g.count]), [[group.id, 2]]);
    assert.equal(detail.environment, 'e2e');

    const traceback = detail.traceback;
    for (const line of traceback.split('\n')) t.diagnostic(line);
    assert.ok(traceback.startsWith(`TypeError: ${MESSAGE}\n`), traceback);
    const lines = frames(traceback);
    assert.match(lines[0], new RegExp(`^    at applyCoupon \\((?:.*/)?src/checkout\\.js:${lineOf('checkout.js', 'coupon.discount')}:\\d+\\)$`), traceback);
    assert.match(lines[1], new RegExp(`^    at checkout \\((?:.*/)?src/checkout\\.js:${lineOf('checkout.js', 'applyCoupon(CART, code)')}:\\d+\\)$`), traceback);
    // The click handler is an arrow function: its position is what counts.
    assert.match(lines[2], new RegExp(`^    at .*\\(?(?:.*/)?src/main\\.js:${lineOf('main.js', 'checkout(document')}:\\d+\\)?$`), traceback);
    assert.doesNotMatch(traceback, /app\.min\.js/, 'every frame mapped');

    assert.equal(detail.occurrences.length, 2);
    for (const occurrence of detail.occurrences) {
      assert.equal(occurrence.user_id, 'u-7', JSON.stringify(occurrence));
      assert.equal(occurrence.extra.release, RELEASE, JSON.stringify(occurrence.extra));
      assert.equal(occurrence.request_url, stack.pageOrigin + '/checkout?step=pay', JSON.stringify(occurrence));
    }
  });

  // What a rebuild does: the SDK's wrapper around the click handler (the outermost frame, which
  // no caller names, so the relay keeps its minified name) gets another short name. As in
  // Sentry, frames that come from node_modules are not the application's, so not in the key.
  test('the same error from a rebuild that renamed the minified SDK wrapper stays in its group', async () => {
    assert.ok(lastEnvelope, 'the SDK sent an event in the test before');
    const [header, item, payload] = lastEnvelope.split('\n');
    const event = JSON.parse(payload);
    const frames = event.exception.values[0].stacktrace.frames;
    assert.match(frames[0].function, /^HTMLButtonElement\.\w+$/, JSON.stringify(frames));
    frames[0].function = frames[0].function === 'HTMLButtonElement.q' ? 'HTMLButtonElement.z' : 'HTMLButtonElement.q';
    event.event_id = crypto.randomUUID().replaceAll('-', '');
    const body = [JSON.stringify({ ...JSON.parse(header), event_id: event.event_id }), item, JSON.stringify(event), ''].join('\n');
    const answer = await fetch(stack.tunnel, {
      method: 'POST', headers: { Origin: stack.pageOrigin, 'Content-Type': 'text/plain;charset=UTF-8' }, body,
    });
    assert.equal(answer.status, 200, await answer.text());
    // Three events by now, in one group or two: wait until all are counted, then look.
    const events = async () => (await stack.tracker.api('GET', `/api/errors?project=${PROJECT}&resolved=all`)).errors.filter(isCheckoutError);
    const deadline = Date.now() + 20_000;
    while ((await events()).reduce((n, g) => n + g.count, 0) < 3) {
      assert.ok(Date.now() < deadline, `the third TypeError not counted in 20 s: ${JSON.stringify(await events())}`);
      await sleep(100);
    }
    assert.deepEqual((await events()).map((g) => g.count), [3]);
  });

  test('the tunnel answers the preflight of its origin and refuses an unknown DSN key', async () => {
    const preflight = await fetch(stack.tunnel, {
      method: 'OPTIONS',
      headers: { Origin: stack.pageOrigin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
    });
    assert.ok(preflight.ok, `${preflight.status}`);
    assert.equal(preflight.headers.get('access-control-allow-origin'), stack.pageOrigin);
    const stranger = await fetch(stack.tunnel, {
      method: 'OPTIONS', headers: { Origin: 'http://evil.example', 'Access-Control-Request-Method': 'POST' },
    });
    assert.equal(stranger.status, 403);
    assert.equal(stranger.headers.get('access-control-allow-origin'), null);

    const forged = (key) => {
      const eventId = crypto.randomUUID().replaceAll('-', '');
      const dsn = `http://${key}@${new URL(stack.relay.url).host}/1`;
      return `${JSON.stringify({ event_id: eventId, dsn, sent_at: new Date().toISOString() })}\n{"type":"event"}\n`
        + `${JSON.stringify({ event_id: eventId, platform: 'javascript', exception: { values: [{ type: 'Error', value: 'forged' }] } })}\n`;
    };
    const refused = await fetch(stack.tunnel, {
      method: 'POST', headers: { Origin: stack.pageOrigin, 'Content-Type': 'text/plain;charset=UTF-8' }, body: forged('f'.repeat(32)),
    });
    assert.equal(refused.status, 401, await refused.text());
    const accepted = await fetch(stack.tunnel, {
      method: 'POST', headers: { Origin: stack.pageOrigin, 'Content-Type': 'text/plain;charset=UTF-8' }, body: forged(DSN_KEY),
    });
    assert.equal(accepted.status, 200, await accepted.text());
  });
});
