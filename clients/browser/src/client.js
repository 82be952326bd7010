// The SDK's logic, with the page's globals passed in (`g`, the window) so it can be tested in
// Node with fakes. Every entry point from the page is wrapped: the SDK never throws into it.
import { createTransport } from './transport.js';

export const VERSION = '0.1.0';
const DEDUP_MS = 5000;
const SESSION_KEY = 'monlight_session';

const isError = (x) => !!x && typeof x === 'object' && typeof x.message === 'string'
  && (typeof x.stack === 'string' || typeof x.name === 'string');

/** A value as text for a message: strings as they are, objects as JSON, capped. */
function text(value) {
  let s;
  try {
    s = typeof value === 'string' ? value : value && typeof value === 'object' ? JSON.stringify(value) : String(value);
  } catch (e) {
    s = Object.prototype.toString.call(value);
  }
  return String(s).slice(0, 2000);
}

const random = (g) => (g.crypto && g.crypto.randomUUID ? g.crypto.randomUUID()
  : Date.now().toString(36) + Math.random().toString(36).slice(2));

/** The tab's session id: kept in sessionStorage (per tab, survives reloads), else per page. */
function sessionId(g) {
  try {
    let id = g.sessionStorage.getItem(SESSION_KEY);
    if (!id) g.sessionStorage.setItem(SESSION_KEY, (id = random(g)));
    return id;
  } catch (e) {
    return random(g);
  }
}

/**
 * options: see index.d.ts. vitals: the web-vitals `on*` functions. Returns the client, or
 * null (with a console warning) without dsn/endpoint.
 */
export function createClient(options, vitals = [], g = globalThis) {
  const o = options || {};
  if (!o.dsn || !o.endpoint) {
    if (g.console) g.console.warn('Monlight: init needs {dsn, endpoint}');
    return null;
  }
  const endpoint = String(o.endpoint).replace(/\/+$/, '');
  const nav = g.navigator || {};
  const now = () => Date.now();
  const rand = o.random || Math.random;
  const fetch0 = g.fetch;
  const session = sessionId(g);
  const t = createTransport({
    endpoint,
    dsn: o.dsn,
    fetch: (url, init) => fetch0.call(g, url, init),
    beacon: nav.sendBeacon && ((url, body) => nav.sendBeacon(url, body)),
    now,
    setTimeout: (f, ms) => g.setTimeout(f, ms),
    clearTimeout: (id) => g.clearTimeout(id),
    session,
    url: () => g.location.href,
    maxErrors: o.maxQueue || 30,
    maxMetrics: (o.maxQueue || 30) * 10,
    errorDelay: 500,
    metricDelay: o.flushInterval || 5000,
  });
  const maxErrors = o.maxErrors || 50;
  const sampleRate = o.sampleRate == null ? 1 : o.sampleRate;
  const metricsOn = rand() < (o.metricsSampleRate == null ? 1 : o.metricsSampleRate);
  const recent = new Map();
  const contexts = {};
  let user = null;
  let sent = 0;
  let busy = false;

  function capture(type, message, stack, context) {
    if (busy) return; // an error inside beforeSend or our own console.error
    busy = true;
    try {
      message = String(message).slice(0, 8000);
      // What Sentry ignores by default: cross-origin scripts' errors carry nothing.
      if (/^Script error\.?$/.test(message) && !stack) return;
      const time = now();
      const key = type + '\n' + message + '\n' + (stack || '');
      for (const [k, at] of recent) if (time - at > DEDUP_MS) recent.delete(k);
      if (recent.has(key)) return;
      recent.set(key, time);
      if (sent >= maxErrors || !(rand() < sampleRate)) return;
      let event = {
        type: String(type || 'Error'),
        message,
        stack: stack ? String(stack) : undefined,
        url: g.location.href,
        user_agent: nav.userAgent,
        session_id: session,
        release: o.release,
        timestamp: new Date(time).toISOString(),
        context: {
          ...contexts,
          ...context,
          environment: o.environment,
          user_id: user && user.id != null ? String(user.id) : undefined,
          user: user || undefined,
        },
      };
      if (o.beforeSend) {
        try {
          event = o.beforeSend(event);
        } catch (e) {
          event = null; // a filter that fails keeps nothing it may have meant to scrub
        }
        if (!event) return;
      }
      JSON.stringify(event); // refuse a context that cannot be sent (cycles) here, not later
      sent++;
      t.error(event);
    } catch (e) {
      // never into the page
    } finally {
      busy = false;
    }
  }

  const captureError = (err, mechanism, extra) => (isError(err)
    ? capture(err.name || 'Error', err.message, err.stack, { mechanism, ...extra })
    : capture('Error', 'Non-Error exception captured: ' + text(err), undefined, { mechanism, ...extra }));

  function metric(name, value, labels) {
    try {
      if (!metricsOn || !(value >= 0) || value === Infinity) return;
      t.metric({ name, type: 'histogram', value: Math.round(value * 1000) / 1000, labels: { ...labels, page: g.location.pathname } });
    } catch (e) {
      // never into the page
    }
  }

  // ---- errors
  const on = (target, name, handler, capturePhase) => target && target.addEventListener
    && target.addEventListener(name, handler, capturePhase);
  on(g, 'error', (e) => {
    if (!e || (e.target && e.target !== g)) return; // resource (img, script) load failures
    if (isError(e.error)) return captureError(e.error, 'onerror');
    const where = e.filename ? `\n    at ${e.filename}:${e.lineno}:${e.colno}` : '';
    capture('Error', e.message || text(e.error), where ? (e.message || 'Error') + where : undefined, { mechanism: 'onerror' });
  });
  on(g, 'unhandledrejection', (e) => {
    const reason = e && e.reason;
    if (isError(reason)) captureError(reason, 'unhandledrejection');
    else capture('UnhandledRejection', 'Non-Error promise rejection captured with value: ' + text(reason), undefined, { mechanism: 'unhandledrejection' });
  });
  if (o.captureConsole && g.console) {
    const original = g.console.error;
    g.console.error = function (...args) {
      if (!busy) {
        const err = args.find(isError);
        if (err) captureError(err, 'console');
        else capture('ConsoleError', args.map(text).join(' '), undefined, { mechanism: 'console' });
      }
      return original.apply(this, args);
    };
  }

  // ---- fetch and XHR timings (never the SDK's own requests: those use fetch0, and are skipped by URL too)
  function timing(method, url, status, start) {
    try {
      const u = new URL(url, g.location.href);
      if (!/^https?:$/.test(u.protocol) || u.href.startsWith(endpoint + '/')) return;
      metric('http_client_duration_ms', g.performance.now() - start, {
        method: String(method || 'GET').toUpperCase(),
        host: u.host,
        status_class: status ? ((status / 100) | 0) + 'xx' : 'error',
      });
    } catch (e) {
      // not a URL
    }
  }
  if (o.captureHttp !== false && g.performance) {
    if (fetch0) {
      g.fetch = function (input, init) {
        const start = g.performance.now();
        const promise = fetch0.apply(g, arguments);
        try {
          const url = typeof input === 'string' ? input : input && (input.url || input.href || String(input));
          const method = (init && init.method) || (input && input.method);
          promise.then((r) => timing(method, url, r.status, start), () => timing(method, url, 0, start));
        } catch (e) {
          // never into the page
        }
        return promise;
      };
    }
    const X = g.XMLHttpRequest && g.XMLHttpRequest.prototype;
    if (X) {
      const open = X.open;
      const send = X.send;
      X.open = function (method, url) {
        this.__monlight = [method, String(url)];
        return open.apply(this, arguments);
      };
      X.send = function () {
        const info = this.__monlight;
        if (info) {
          const start = g.performance.now();
          this.addEventListener('loadend', () => timing(info[0], info[1], this.status, start));
        }
        return send.apply(this, arguments);
      };
    }
  }

  // ---- Web Vitals, and sending everything when the page is hidden or closed
  const hidden = () => g.document && g.document.visibilityState === 'hidden';
  for (const onVital of vitals) {
    try {
      onVital((m) => {
        metric('web_vitals_' + m.name.toLowerCase(), m.value);
        if (hidden()) t.beacon(); // reported while hiding: our own listener may have run already
      });
    } catch (e) {
      // a browser without the needed APIs
    }
  }
  on(g.document, 'visibilitychange', () => hidden() && t.beacon());
  on(g, 'pagehide', t.beacon);

  return {
    captureException: (err, context) => captureError(err, 'manual', context),
    captureMessage: (message, level) => capture('Message', text(message), undefined, { mechanism: 'manual', level: level || 'info' }),
    setUser: (u) => { user = u ? { ...u } : null; },
    setContext: (name, value) => {
      if (value == null) delete contexts[name];
      else contexts[name] = value;
    },
    flush: () => t.flush(),
    sessionId: () => session,
    transport: t,
  };
}
