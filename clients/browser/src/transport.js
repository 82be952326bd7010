// The way to the relay: two bounded queues (errors, one per request; metric points, up to 100
// per request), sent one request at a time with fetch(keepalive) after a short delay, or all at
// once with navigator.sendBeacon when the page is hidden or closing. A 429 or 503 stops sending
// until Retry-After has passed (60 s when the answer carries none); a network error or another
// 5xx backs off 1 s, 2 s, 4 s … up to 5 min. Nothing here throws.

export const ERRORS_PATH = '/api/browser/errors';
export const METRICS_PATH = '/api/browser/metrics';
export const MAX_BATCH = 100;
const MAX_BACKOFF = 300000;

/** Milliseconds to wait for a Retry-After value (seconds or an HTTP date); 0 when absent or bad. */
export function retryAfterMs(value, now) {
  if (!value) return 0;
  const seconds = Number(value);
  const ms = value.trim() && seconds === seconds ? seconds * 1000 : Date.parse(value) - now;
  return ms > 0 ? Math.min(ms, 3600000) : 0;
}

/**
 * o: {endpoint, dsn, fetch, beacon(url, body) → bool, now(), setTimeout, clearTimeout,
 *     session, url() → page URL, maxErrors, maxMetrics, errorDelay, metricDelay}
 */
export function createTransport(o) {
  const errors = [];
  const metrics = [];
  const stats = { sent: 0, dropped: 0, failed: 0 };
  let timer = null;
  let due = Infinity;
  let busy = false;
  let until = 0; // no request before this time
  let limited = false; // the wait is the relay's (429/503), not a network failure
  let failures = 0;

  const schedule = (delay) => {
    const at = Math.max(o.now() + delay, until);
    if (timer !== null) {
      if (at >= due) return;
      o.clearTimeout(timer);
    }
    due = at;
    timer = o.setTimeout(() => {
      timer = null;
      due = Infinity;
      flush();
    }, at - o.now());
  };

  const add = (queue, max, item, delay) => {
    if (queue.length >= max) stats.dropped++;
    else queue.push(item);
    schedule(delay);
  };

  // The next request: the oldest error alone, or up to 100 metric points. Taken off the queue
  // while in flight (a beacon must not send them again); put back if they are to be retried.
  const take = () => {
    if (errors.length) return [ERRORS_PATH, errors, errors.splice(0, 1)];
    if (metrics.length) return [METRICS_PATH, metrics, metrics.splice(0, MAX_BATCH)];
    return null;
  };
  const body = (path, items) => JSON.stringify(path === ERRORS_PATH ? items[0]
    : { metrics: items, session_id: o.session, url: o.url() });
  const putBack = (queue, items, max) => {
    queue.unshift(...items);
    if (queue.length > max) stats.dropped += queue.splice(max).length;
  };

  async function flush() {
    if (busy) return;
    busy = true;
    try {
      let next;
      while (o.now() >= until && (next = take())) {
        const [path, queue, items] = next;
        let status = 0;
        let retry = null;
        try {
          const response = await o.fetch(o.endpoint + path, {
            method: 'POST',
            keepalive: true,
            headers: { 'Content-Type': 'application/json', 'X-Monlight-Key': o.dsn },
            body: body(path, items),
          });
          status = response.status;
          retry = response.headers.get('Retry-After');
        } catch (e) {
          // network error, CORS refusal, offline: retried below
        }
        if (status === 0 || status === 429 || status >= 500) {
          putBack(queue, items, queue === errors ? o.maxErrors : o.maxMetrics);
          stats.failed++;
          limited = status === 429 || status === 503;
          const asked = retryAfterMs(retry, o.now());
          failures++;
          until = o.now() + (asked || (status === 429 ? 60000 : Math.min(1000 * 2 ** (failures - 1), MAX_BACKOFF)));
        } else {
          failures = 0;
          limited = false;
          // 2xx sent; any other 4xx (bad payload, unknown key, too large) would fail again
          if (status < 300) stats.sent += items.length;
          else stats.dropped += items.length;
        }
      }
    } catch (e) {
      // never into the page
    }
    busy = false;
    if (errors.length || metrics.length) schedule(0);
  }

  /** Everything queued, now, by sendBeacon (?key=, text/plain); what the browser refuses stays. */
  function beacon() {
    try {
      if (!o.beacon || (limited && o.now() < until)) return;
      let next;
      while ((next = take())) {
        const [path, queue, items] = next;
        if (!o.beacon(`${o.endpoint}${path}?key=${encodeURIComponent(o.dsn)}`, body(path, items))) {
          queue.unshift(...items);
          return;
        }
        stats.sent += items.length;
      }
    } catch (e) {
      // never into the page
    }
  }

  return {
    error: (event) => add(errors, o.maxErrors, event, o.errorDelay),
    metric: (point) => add(metrics, o.maxMetrics, point, metrics.length + 1 >= MAX_BATCH ? 0 : o.metricDelay),
    flush,
    beacon,
    stats,
    queued: () => errors.length + metrics.length,
    waitUntil: () => until,
  };
}
