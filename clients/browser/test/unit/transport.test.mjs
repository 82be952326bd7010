// The transport: batching, the queue bound, backoff on 429 (Retry-After), 5xx and network
// errors, and sendBeacon on page hide.
import { beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DSN, ENDPOINT, fakeWindow, settle } from './fake.mjs';
import { createTransport, retryAfterMs } from '../../src/transport.js';

describe('transport', () => {
  beforeEach((t) => t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: Date.parse('2026-03-01T12:00:00Z') }));

  test('Retry-After: seconds or an HTTP date; nothing usable is 0', () => {
    const now = Date.parse('2026-03-01T12:00:00Z');
    assert.equal(retryAfterMs('7', now), 7000);
    assert.equal(retryAfterMs('Sun, 01 Mar 2026 12:00:30 GMT', now), 30000);
    assert.equal(retryAfterMs(null, now), 0);
    assert.equal(retryAfterMs('soon', now), 0);
    assert.equal(retryAfterMs('-5', now), 0);
    assert.equal(retryAfterMs('999999', now), 3600000, 'capped at an hour');
  });

  test('errors go one per request after 0.5 s, metric points in batches of at most 100', async (t) => {
    const w = fakeWindow();
    const c = w.client({ flushInterval: 5000 });
    c.captureMessage('one');
    c.captureMessage('two');
    for (let i = 0; i < 250; i++) c.transport.metric({ name: 'm', type: 'histogram', value: i, labels: { page: '/cart' } });
    // 100 queued points go at once (no need to wait 5 s); errors first.
    t.mock.timers.tick(0);
    await settle();
    assert.deepEqual(w.requests.map((r) => [r.url, r.body.metrics ? r.body.metrics.length : r.body.message]), [
      [ENDPOINT + '/api/browser/errors', 'one'],
      [ENDPOINT + '/api/browser/errors', 'two'],
      [ENDPOINT + '/api/browser/metrics', 100],
      [ENDPOINT + '/api/browser/metrics', 100],
      [ENDPOINT + '/api/browser/metrics', 50],
    ]);
    const first = w.requests[0];
    assert.equal(first.init.method, 'POST');
    assert.equal(first.init.keepalive, true);
    assert.equal(first.init.headers['X-Monlight-Key'], DSN);
    assert.equal(first.init.headers['Content-Type'], 'application/json');
    const metrics = w.requests[2].body;
    assert.deepEqual(Object.keys(metrics).sort(), ['metrics', 'session_id', 'url']);
    assert.equal(metrics.url, w.g.location.href);
    assert.equal(metrics.session_id, c.sessionId());
    assert.deepEqual(metrics.metrics[0], { name: 'm', type: 'histogram', value: 0, labels: { page: '/cart' } });
    assert.equal(c.transport.queued(), 0);
  });

  test('a lone metric point waits flushInterval to be batched', async (t) => {
    const w = fakeWindow();
    const c = w.client({ flushInterval: 5000 });
    c.transport.metric({ name: 'm', type: 'histogram', value: 1, labels: {} });
    t.mock.timers.tick(4999);
    await settle();
    assert.equal(w.requests.length, 0);
    t.mock.timers.tick(1);
    await settle();
    assert.equal(w.requests.length, 1);
  });

  test('the queue is bounded: beyond it new items are dropped and counted', async () => {
    const sent = [];
    const tr = createTransport({
      endpoint: ENDPOINT, dsn: DSN, now: Date.now, setTimeout, clearTimeout, session: 's', url: () => 'u',
      fetch: async (url, init) => { sent.push(JSON.parse(init.body)); return { status: 202, headers: { get: () => null } }; },
      maxErrors: 3, maxMetrics: 5, errorDelay: 500, metricDelay: 5000,
    });
    for (let i = 0; i < 10; i++) tr.error({ type: 'E', message: String(i) });
    for (let i = 0; i < 8; i++) tr.metric({ name: 'm', type: 'histogram', value: i });
    assert.equal(tr.queued(), 8);
    assert.equal(tr.stats.dropped, 10);
  });

  test('429: nothing is sent until Retry-After has passed, then the same event goes', async (t) => {
    let limited = true;
    const w = fakeWindow({ respond: () => (limited ? { status: 429, headers: { 'Retry-After': '3' } } : { status: 202 }) });
    const c = w.client();
    c.captureMessage('rate limited');
    t.mock.timers.tick(500);
    await settle();
    assert.equal(w.requests.length, 1);
    assert.equal(w.requests[0].status, 429);
    c.captureMessage('another');
    t.mock.timers.tick(2900);
    await settle();
    assert.equal(w.requests.length, 1, 'no request during the wait');
    // The page hiding does not beacon into a rate limit either.
    w.g.document.visibilityState = 'hidden';
    w.g.document.dispatchEvent(new Event('visibilitychange'));
    assert.equal(w.beacons.length, 0);
    w.g.document.visibilityState = 'visible';
    limited = false;
    t.mock.timers.tick(100);
    await settle();
    assert.deepEqual(w.requests.slice(1).map((r) => [r.status, r.body.message]), [[202, 'rate limited'], [202, 'another']]);
  });

  test('429 without a readable Retry-After (CORS hides it) waits 60 s', async (t) => {
    let n = 0;
    const w = fakeWindow({ respond: () => (n++ === 0 ? { status: 429 } : { status: 202 }) });
    const c = w.client();
    c.captureMessage('x');
    t.mock.timers.tick(500);
    await settle();
    t.mock.timers.tick(59_000);
    await settle();
    assert.equal(w.requests.length, 1);
    t.mock.timers.tick(1500);
    await settle();
    assert.equal(w.requests.length, 2);
    assert.equal(c.transport.queued(), 0);
  });

  test('network errors and 5xx back off exponentially; a success resets it; 400 is not retried', async (t) => {
    const attempts = [];
    let failing = 4;
    const w = fakeWindow({
      respond: (url, init) => {
        attempts.push(Date.now());
        const body = JSON.parse(init.body);
        if (body.message === 'bad') return { status: 400 };
        if (failing-- > 0) return failing % 2 ? 'network' : { status: 502 };
        return { status: 202 };
      },
    });
    const c = w.client();
    const start = Date.now();
    c.captureMessage('flaky');
    for (let i = 0; i < 40; i++) {
      t.mock.timers.tick(500);
      await settle();
    }
    // 0.5 s delay, then waits of 1, 2, 4, 8 s between attempts.
    assert.deepEqual(attempts.map((at) => at - start), [500, 1500, 3500, 7500, 15500]);
    assert.equal(w.requests.at(-1).body.message, 'flaky');
    assert.equal(c.transport.queued(), 0);
    c.captureMessage('bad');
    t.mock.timers.tick(500);
    await settle();
    t.mock.timers.tick(60_000);
    await settle();
    assert.equal(attempts.length, 6, 'a 400 is dropped, not retried');
    assert.equal(c.transport.stats.dropped, 1);
  });

  test('pagehide and visibilitychange(hidden) send the queue by sendBeacon with ?key=', async (t) => {
    const w = fakeWindow();
    const c = w.client();
    c.captureMessage('closing');
    c.transport.metric({ name: 'web_vitals_cls', type: 'histogram', value: 0.12, labels: { page: '/cart' } });
    w.g.dispatchEvent(new Event('pagehide'));
    assert.deepEqual(w.beacons.map((b) => b.url), [
      `${ENDPOINT}/api/browser/errors?key=${DSN}`,
      `${ENDPOINT}/api/browser/metrics?key=${DSN}`,
    ]);
    assert.equal(w.beacons[0].body.message, 'closing');
    assert.deepEqual(w.beacons[1].body.metrics, [{ name: 'web_vitals_cls', type: 'histogram', value: 0.12, labels: { page: '/cart' } }]);
    assert.equal(c.transport.queued(), 0);
    t.mock.timers.tick(10_000);
    await settle();
    assert.equal(w.requests.length, 0, 'nothing sent twice');
    // A beacon the browser refuses (over its quota) leaves the event queued.
    w.g.navigator.sendBeacon = () => false;
    c.captureMessage('kept');
    w.g.document.visibilityState = 'hidden';
    w.g.document.dispatchEvent(new Event('visibilitychange'));
    assert.equal(c.transport.queued(), 1);
  });
});
