// A fake window for the unit tests: an EventTarget with location, navigator.sendBeacon,
// sessionStorage, document.visibilityState, performance.now and a scripted fetch. Timers and
// Date are node:test's mocks (the test enables them), so backoffs are checked without waiting.
import { createClient } from '../../src/client.js';

export const ENDPOINT = 'https://relay.example.com';
export const DSN = '0123456789abcdef0123456789abcdef';

/** Lets pending promise callbacks run (setImmediate is not mocked). */
export const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
};

/**
 * respond(url, init) → {status, headers} | 'network' (rejects) | undefined (200).
 * Returns {g, requests, beacons, client(options, vitals)}.
 */
export function fakeWindow({ respond = () => undefined, href = 'https://shop.example.com/cart?coupon=X1#top' } = {}) {
  const g = new EventTarget();
  const requests = [];
  const beacons = [];
  const store = new Map();
  const url = new URL(href);
  g.location = { href, pathname: url.pathname };
  g.navigator = {
    userAgent: 'Mozilla/5.0 (test)',
    sendBeacon: (to, body) => {
      beacons.push({ url: to, body: JSON.parse(body) });
      return true;
    },
  };
  g.sessionStorage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, String(v)) };
  g.crypto = globalThis.crypto;
  g.document = new EventTarget();
  g.document.visibilityState = 'visible';
  g.performance = { now: () => Date.now() };
  g.consoleCalls = [];
  g.console = { warn() {}, error: (...args) => g.consoleCalls.push(args) };
  g.setTimeout = (f, ms) => setTimeout(f, ms);
  g.clearTimeout = (id) => clearTimeout(id);
  g.fetch = async (to, init) => {
    const answer = respond(String(to), init);
    if (answer === 'network') throw new TypeError('Failed to fetch');
    const { status = 200, headers = {} } = answer || {};
    if (String(to).startsWith(ENDPOINT)) requests.push({ url: String(to), init, body: JSON.parse(init.body), status });
    return { status, headers: { get: (name) => headers[name] ?? null } };
  };
  return {
    g,
    requests,
    beacons,
    client: (options = {}, vitals = []) => createClient({ dsn: DSN, endpoint: ENDPOINT, ...options }, vitals, g),
  };
}

/** Dispatches what Chromium dispatches for an uncaught error. */
export function throwIn(g, error) {
  const event = new Event('error');
  Object.assign(event, { error, message: 'Uncaught ' + (error && error.message), filename: 'https://shop.example.com/app.js', lineno: 1, colno: 99 });
  g.dispatchEvent(event);
}

export function rejectIn(g, reason) {
  g.dispatchEvent(Object.assign(new Event('unhandledrejection'), { reason }));
}
