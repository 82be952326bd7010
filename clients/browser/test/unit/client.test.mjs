// The client: error payloads, dedup, the per-page cap, beforeSend, sampling, console capture,
// Web Vitals points, fetch/XHR timings; and that nothing throws into the page.
import { beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ENDPOINT, fakeWindow, rejectIn, settle, throwIn } from './fake.mjs';

/** Everything sent (requests and beacons) after the queue has been flushed. */
async function sent(t, w) {
  t.mock.timers.tick(10_000);
  await settle();
  return w.requests.map((r) => r.body);
}
const errorsOf = async (t, w) => (await sent(t, w)).filter((b) => !b.metrics);
const pointsOf = async (t, w) => (await sent(t, w)).flatMap((b) => b.metrics || []);

describe('client', () => {
  beforeEach((t) => t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.parse('2026-03-01T12:00:00Z') }));

  test('an uncaught Error: the relay\'s payload, with the browser\'s stack untouched', async (t) => {
    const w = fakeWindow();
    const c = w.client({ release: 'web@1.2.3', environment: 'prod' });
    c.setUser({ id: 42, email: 'ann@example.com' });
    c.setContext('cart', { items: 3 });
    const error = new TypeError("Cannot read properties of undefined (reading 'price')");
    error.stack = "TypeError: Cannot read properties of undefined (reading 'price')\n    at a (https://shop.example.com/app.min.js:1:234)\n    at https://shop.example.com/app.min.js:1:99";
    throwIn(w.g, error);
    const [event] = await errorsOf(t, w);
    assert.deepEqual(event, {
      type: 'TypeError',
      message: "Cannot read properties of undefined (reading 'price')",
      stack: error.stack,
      url: 'https://shop.example.com/cart?coupon=X1#top',
      user_agent: 'Mozilla/5.0 (test)',
      session_id: c.sessionId(),
      release: 'web@1.2.3',
      timestamp: '2026-03-01T12:00:00.000Z',
      context: { cart: { items: 3 }, mechanism: 'onerror', environment: 'prod', user_id: '42', user: { id: 42, email: 'ann@example.com' } },
    });
  });

  test('the session id is per tab: kept in sessionStorage, reused by the next page load', () => {
    const w = fakeWindow();
    const first = w.client().sessionId();
    assert.match(first, /^[0-9a-f-]{36}$/);
    assert.equal(w.g.sessionStorage.getItem('monlight_session'), first);
    assert.equal(w.client().sessionId(), first);
    const broken = fakeWindow();
    broken.g.sessionStorage = { getItem() { throw new Error('SecurityError'); } };
    assert.match(broken.client().sessionId(), /^[0-9a-f-]{36}$/, 'no storage: one id for the page');
  });

  test('unhandled rejections, with an Error or any other reason; thrown non-Errors; Script error. ignored', async (t) => {
    const w = fakeWindow();
    w.client();
    rejectIn(w.g, new RangeError('too far'));
    rejectIn(w.g, { code: 'E_TIMEOUT', retry: false });
    rejectIn(w.g, undefined);
    const thrown = new Event('error');
    Object.assign(thrown, { error: 'just a string', message: 'Uncaught just a string', filename: 'https://shop.example.com/a.js', lineno: 3, colno: 7 });
    w.g.dispatchEvent(thrown);
    w.g.dispatchEvent(Object.assign(new Event('error'), { error: null, message: 'Script error.' }));
    const events = await errorsOf(t, w);
    assert.deepEqual(events.map((e) => [e.type, e.message, e.context.mechanism]), [
      ['RangeError', 'too far', 'unhandledrejection'],
      ['UnhandledRejection', 'Non-Error promise rejection captured with value: {"code":"E_TIMEOUT","retry":false}', 'unhandledrejection'],
      ['UnhandledRejection', 'Non-Error promise rejection captured with value: undefined', 'unhandledrejection'],
      ['Error', 'Uncaught just a string', 'onerror'],
    ]);
    assert.equal(events[3].stack, 'Uncaught just a string\n    at https://shop.example.com/a.js:3:7');
  });

  test('captureException and captureMessage', async (t) => {
    const w = fakeWindow();
    const c = w.client();
    c.captureException(new SyntaxError('bad json'), { order: 'A-1' });
    c.captureException('a plain string');
    c.captureMessage('checkout took 3 tries', 'warning');
    const events = await errorsOf(t, w);
    assert.deepEqual(events.map((e) => [e.type, e.message, e.context]), [
      ['SyntaxError', 'bad json', { mechanism: 'manual', order: 'A-1' }],
      ['Error', 'Non-Error exception captured: a plain string', { mechanism: 'manual' }],
      ['Message', 'checkout took 3 tries', { mechanism: 'manual', level: 'warning' }],
    ]);
    assert.equal(events[2].stack, undefined);
  });

  test('dedup: the same error within 5 s is sent once; again after that, and other errors meanwhile', async (t) => {
    const w = fakeWindow();
    const c = w.client();
    const boom = new Error('boom');
    for (let i = 0; i < 20; i++) throwIn(w.g, boom);
    c.captureException(new Error('other'));
    t.mock.timers.tick(4000);
    throwIn(w.g, boom);
    t.mock.timers.tick(1500);
    throwIn(w.g, boom);
    const events = await errorsOf(t, w);
    assert.deepEqual(events.map((e) => e.message), ['boom', 'other', 'boom']);
  });

  test('at most maxErrors errors per page load', async (t) => {
    const w = fakeWindow();
    const c = w.client({ maxErrors: 3 });
    for (let i = 0; i < 10; i++) c.captureMessage('event ' + i);
    assert.deepEqual((await errorsOf(t, w)).map((e) => e.message), ['event 0', 'event 1', 'event 2']);
  });

  test('beforeSend may change an event or drop it; one that throws drops it; the page never sees it', async (t) => {
    const w = fakeWindow();
    const c = w.client({
      beforeSend(event) {
        if (event.message.includes('ignore me')) return null;
        if (event.message.includes('explode')) throw new Error('bug in beforeSend');
        if (event.message.includes('false')) return false;
        event.message = event.message.replace(/\d{16}/, '[card]');
        event.context.scrubbed = true;
        return event;
      },
    });
    c.captureMessage('paid with 4111111111111111');
    c.captureMessage('please ignore me');
    c.captureMessage('explode');
    c.captureMessage('return false');
    const events = await errorsOf(t, w);
    assert.deepEqual(events.map((e) => [e.message, e.context.scrubbed]), [['paid with [card]', true]]);
  });

  test('sampleRate: the share of errors sent (Math.random below it)', async (t) => {
    let i = 0;
    const values = [0, 0.1, 0.9, 0.3, 0.7, 0.49]; // the first draw: metrics sampling for the page load
    const w = fakeWindow();
    const c = w.client({ sampleRate: 0.5, random: () => values[i++] });
    for (let n = 0; n < 5; n++) c.captureMessage('m' + n);
    assert.deepEqual((await errorsOf(t, w)).map((e) => e.message), ['m0', 'm2', 'm4']);
    const none = fakeWindow();
    const c0 = none.client({ sampleRate: 0 });
    c0.captureMessage('never');
    assert.deepEqual(await errorsOf(t, none), []);
  });

  test('metricsSampleRate: a page load sends all its points or none', async (t) => {
    const fire = (cb) => cb({ name: 'LCP', value: 1200 });
    const on = fakeWindow();
    on.client({ metricsSampleRate: 0.5, random: () => 0.2 }, [fire]);
    assert.equal((await pointsOf(t, on)).length, 1);
    const off = fakeWindow();
    off.client({ metricsSampleRate: 0.5, random: () => 0.8 }, [fire]);
    assert.equal((await pointsOf(t, off)).length, 0);
  });

  test('Web Vitals become web_vitals_* histogram points with the page label; reported while hidden, beaconed at once', async (t) => {
    const callbacks = {};
    const vital = (name) => (cb) => { callbacks[name] = cb; };
    const w = fakeWindow({ href: 'https://shop.example.com/products/42?ref=mail' });
    w.client({}, ['LCP', 'INP', 'CLS', 'FCP', 'TTFB'].map(vital));
    callbacks.TTFB({ name: 'TTFB', value: 312.4 });
    callbacks.FCP({ name: 'FCP', value: 880 });
    const points = await pointsOf(t, w);
    assert.deepEqual(points, [
      { name: 'web_vitals_ttfb', type: 'histogram', value: 312.4, labels: { page: '/products/42' } },
      { name: 'web_vitals_fcp', type: 'histogram', value: 880, labels: { page: '/products/42' } },
    ]);
    // web-vitals reports LCP, CLS and INP when the page is hidden.
    w.g.document.visibilityState = 'hidden';
    callbacks.LCP({ name: 'LCP', value: 2480.123456 });
    callbacks.CLS({ name: 'CLS', value: 0.1834 });
    callbacks.INP({ name: 'INP', value: 96 });
    assert.deepEqual(w.beacons.flatMap((b) => b.body.metrics.map((m) => [m.name, m.value])), [
      ['web_vitals_lcp', 2480.123], ['web_vitals_cls', 0.183], ['web_vitals_inp', 96],
    ]);
  });

  test('fetch timings: method, host and status class only (no path, no query); the SDK\'s own requests untimed', async (t) => {
    const w = fakeWindow({
      respond: (url) => {
        if (url.includes('fail')) return 'network';
        if (url.includes('/api/orders')) return { status: 503 };
        return undefined;
      },
    });
    w.client();
    const page = w.g;
    await page.fetch('https://api.partner.com/v2/users/ann@example.com?token=secret');
    await page.fetch('/api/orders/17?debug=1', { method: 'post' });
    await assert.rejects(page.fetch('https://cdn.example.com/fail.js'));
    await page.fetch(ENDPOINT + '/api/browser/errors', { method: 'POST', body: '{}' });
    await page.fetch(new URL('https://shop.example.com/api/cart'));
    await settle();
    const points = (await pointsOf(t, w)).filter((p) => p.name === 'http_client_duration_ms');
    assert.deepEqual(points.map((p) => p.labels), [
      { method: 'GET', host: 'api.partner.com', status_class: '2xx', page: '/cart' },
      { method: 'POST', host: 'shop.example.com', status_class: '5xx', page: '/cart' },
      { method: 'GET', host: 'cdn.example.com', status_class: 'error', page: '/cart' },
      { method: 'GET', host: 'shop.example.com', status_class: '2xx', page: '/cart' },
    ]);
    assert.ok(points.every((p) => p.type === 'histogram' && p.value >= 0));
    const everything = JSON.stringify(w.requests.filter((r) => r.body.metrics).map((r) => r.body.metrics));
    assert.doesNotMatch(everything, /token|secret|ann@|users|debug|orders/);
  });

  test('XMLHttpRequest timings', async (t) => {
    const w = fakeWindow();
    class FakeXHR extends EventTarget {
      open(method, url) { this.url = url; }
      send() { setTimeout(() => { this.status = 404; this.dispatchEvent(new Event('loadend')); }, 30); }
    }
    w.g.XMLHttpRequest = FakeXHR;
    w.client();
    const xhr = new FakeXHR();
    xhr.open('delete', 'https://api.example.com/items/9?x=1');
    xhr.send();
    t.mock.timers.tick(30);
    const [point] = (await pointsOf(t, w));
    assert.deepEqual(point, { name: 'http_client_duration_ms', type: 'histogram', value: 30, labels: { method: 'DELETE', host: 'api.example.com', status_class: '4xx', page: '/cart' } });
  });

  test('captureConsole reports console.error calls and still prints them', async (t) => {
    const w = fakeWindow();
    w.client({ captureConsole: true });
    w.g.console.error('payment failed:', { code: 402 });
    w.g.console.error(new TypeError('from console'));
    assert.equal(w.g.consoleCalls.length, 2);
    assert.deepEqual((await errorsOf(t, w)).map((e) => [e.type, e.message, e.context.mechanism]), [
      ['ConsoleError', 'payment failed: {"code":402}', 'console'],
      ['TypeError', 'from console', 'console'],
    ]);
    const off = fakeWindow();
    off.client();
    off.g.console.error('not captured');
    assert.deepEqual(await errorsOf(t, off), []);
  });

  test('nothing throws into the page: cyclic context, a throwing fetch, no dsn', async (t) => {
    const w = fakeWindow({ respond: () => { throw new Error('fetch exploded'); } });
    const c = w.client();
    const cyclic = {};
    cyclic.self = cyclic;
    c.setContext('cyclic', cyclic);
    assert.doesNotThrow(() => c.captureMessage('with a cycle'));
    c.setContext('cyclic', null);
    c.captureMessage('fine');
    t.mock.timers.tick(500);
    await settle();
    assert.equal(c.transport.queued(), 1, 'kept for a retry after the failure');
    assert.equal(fakeWindow().client({ dsn: '' }), null);
  });
});
