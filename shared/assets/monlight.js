/* Monlight — the script shared by the Monlight web UIs (error-tracker, log-viewer, metrics).
 *
 * Loaded as a classic deferred script before the page's own script; everything lives on
 * `window.Monlight`. What it offers:
 *   - el(tag, attrs, ...children): a DOM builder that only ever inserts text as text
 *     (createTextNode / textContent). Nothing here parses HTML, so API data cannot become markup.
 *   - api(path, {method, query, body, signal}): fetch with `X-API-Key` from
 *     localStorage['api_key']; asks for the key on first use and on any 401, then retries.
 *   - relative times with the absolute time on hover, durations `<n>[smhd]`, URL ⇄ state,
 *     auto-refresh, debounce, toasts, copy to clipboard, a few icons.
 *   - the shared header's links to the other UIs (from the page's `data-ui-links`, which the
 *     server fills from UI_LINKS), and the key handed to another origin once through the
 *     link's `#key=` fragment (`uiLink`, `data-pass-key`): read here, stored, then removed
 *     from the address bar. A fragment never reaches a server or its log.
 */
(function () {
  'use strict';

  const KEY_STORAGE = 'api_key';
  const SVG_NS = 'http://www.w3.org/2000/svg';

  // ------------------------------------------------------------------ DOM

  const URL_ATTRIBUTES = new Set(['href', 'src', 'action', 'formaction', 'poster', 'cite']);

  /** A URL that is safe in an href: http(s), mailto or same-origin relative; otherwise '#'. */
  function safeUrl(value) {
    const text = String(value);
    try {
      const url = new URL(text, window.location.href);
      if (url.protocol === 'http:' || url.protocol === 'https:' || url.protocol === 'mailto:') {
        return text;
      }
    } catch (_) {
      // not a URL at all
    }
    return '#';
  }

  function setAttribute(node, name, value) {
    if (value === null || value === undefined || value === false) return;
    if (name === 'class') {
      node.setAttribute('class', Array.isArray(value) ? value.filter(Boolean).join(' ') : String(value));
    } else if (name === 'text') {
      node.textContent = String(value);
    } else if (name === 'dataset') {
      for (const [k, v] of Object.entries(value)) node.dataset[k] = String(v);
    } else if (name.slice(0, 2) === 'on') {
      // Handlers are functions only: a string would be code, and the CSP forbids it anyway.
      if (typeof value === 'function') node.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === 'style') {
      // Inline styles are blocked by the CSP: use classes.
    } else if (name === 'value' || name === 'checked' || name === 'selected') {
      node[name] = value;
    } else {
      const text = value === true ? '' : String(value);
      node.setAttribute(name, URL_ATTRIBUTES.has(name) ? safeUrl(text) : text);
    }
  }

  /** Appends children: nodes as they are, anything else as a text node; null/false skipped. */
  function append(node, children) {
    for (const child of children) {
      if (child === null || child === undefined || child === false || child === true) continue;
      if (Array.isArray(child)) append(node, child);
      else if (child instanceof Node) node.appendChild(child);
      else node.appendChild(document.createTextNode(String(child)));
    }
    return node;
  }

  /** `el('a', {href: '/x', class: 'link'}, 'text', otherNode)` */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    if (attrs) for (const [name, value] of Object.entries(attrs)) setAttribute(node, name, value);
    return append(node, children);
  }

  /** Replaces a node's children (text inserted as text). */
  function fill(node, ...children) {
    node.replaceChildren();
    return append(node, children);
  }

  const $ = (selector, root) => (root || document).querySelector(selector);

  // Icons: fixed path data, never data from the API.
  const ICONS = {
    refresh: ['M20 11a8 8 0 1 0-2.3 5.7', 'M20 4v7h-7'],
    check: ['M5 12.5l4.5 4.5L19 7.5'],
    reopen: ['M4 12a8 8 0 1 0 2.3-5.7', 'M4 4v5h5'],
    back: ['M15 18l-6-6 6-6'],
    next: ['M9 18l6-6-6-6'],
    copy: ['M9 9h10v11H9z', 'M5 15V4h10'],
    key: ['M14.5 9.5a4.5 4.5 0 1 1-9 0 4.5 4.5 0 0 1 9 0z', 'M13 12.5l7 7', 'M17 16.5l2-2'],
    link: ['M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1', 'M14 10a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1'],
    alert: ['M12 8v5', 'M12 16.5v.5', 'M10.3 3.9L2.5 17.5A2 2 0 0 0 4.2 20.5h15.6a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z'],
    filter: ['M4 5h16', 'M7 12h10', 'M10 19h4'],
  };

  function icon(name) {
    const svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('class', 'icon');
    svg.setAttribute('aria-hidden', 'true');
    for (const d of ICONS[name] || []) {
      const path = document.createElementNS(SVG_NS, 'path');
      path.setAttribute('d', d);
      path.setAttribute('fill', 'none');
      path.setAttribute('stroke', 'currentColor');
      path.setAttribute('stroke-width', '2');
      path.setAttribute('stroke-linecap', 'round');
      path.setAttribute('stroke-linejoin', 'round');
      svg.appendChild(path);
    }
    return svg;
  }

  // ------------------------------------------------------------------ time

  function toDate(value) {
    if (value === null || value === undefined || value === '') return null;
    const date = value instanceof Date ? value : new Date(value);
    return Number.isNaN(date.getTime()) ? null : date;
  }

  /** "just now", "42s ago", "5m ago", "3h ago", "2d ago", "4mo ago", "1y ago" (or "in 5m"). */
  function relativeTime(value, now) {
    const date = toDate(value);
    if (!date) return '—';
    const diff = (now === undefined ? Date.now() : now) - date.getTime();
    const seconds = Math.round(Math.abs(diff) / 1000);
    let text;
    if (seconds < 5) return 'just now';
    if (seconds < 60) text = seconds + 's';
    else if (seconds < 3600) text = Math.floor(seconds / 60) + 'm';
    else if (seconds < 86400) text = Math.floor(seconds / 3600) + 'h';
    else if (seconds < 86400 * 30) text = Math.floor(seconds / 86400) + 'd';
    else if (seconds < 86400 * 365) text = Math.floor(seconds / (86400 * 30)) + 'mo';
    else text = Math.floor(seconds / (86400 * 365)) + 'y';
    return diff >= 0 ? text + ' ago' : 'in ' + text;
  }

  const pad = (n, width) => String(n).padStart(width || 2, '0');

  /** Local time `2026-01-01 13:00:05 (UTC+01:00)`, for titles and detail views. */
  function absoluteTime(value) {
    const d = toDate(value);
    if (!d) return '';
    const offset = -d.getTimezoneOffset();
    const sign = offset >= 0 ? '+' : '-';
    const zone = 'UTC' + sign + pad(Math.floor(Math.abs(offset) / 60)) + ':' + pad(Math.abs(offset) % 60);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
      pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()) + ' (' + zone + ')';
  }

  /** `<time>` showing the relative time, the absolute one (and the raw UTC value) on hover. */
  function timeEl(value, attrs) {
    const date = toDate(value);
    if (!date) return el('span', { class: 'faint' }, '—');
    const title = absoluteTime(date) + '\n' + date.toISOString();
    const node = el('time', Object.assign({ datetime: date.toISOString(), title: title }, attrs || {}),
      relativeTime(date));
    node.dataset.relative = '';
    return node;
  }

  // Keep every relative time current without re-rendering the page.
  setInterval(() => {
    for (const node of document.querySelectorAll('time[data-relative]')) {
      node.textContent = relativeTime(node.getAttribute('datetime'));
    }
  }, 15000);

  const DURATION = /^\s*(\d{1,7})\s*([smhd])\s*$/i;
  const UNIT_MS = { s: 1000, m: 60000, h: 3600000, d: 86400000 };

  /** `<n>[smhd]` → milliseconds; anything else (or zero) → null. */
  function parseDuration(text) {
    const m = DURATION.exec(String(text || ''));
    if (!m) return null;
    const ms = Number(m[1]) * UNIT_MS[m[2].toLowerCase()];
    return ms > 0 ? ms : null;
  }

  /** The `since` parameter (RFC 3339 UTC) for a range like `24h`; null for 'all' or invalid. */
  function sinceFor(range, now) {
    const ms = parseDuration(range);
    if (ms === null) return null;
    return new Date((now === undefined ? Date.now() : now) - ms).toISOString();
  }

  // ------------------------------------------------------------------ URL state

  /** Reads `defaults`' keys from the query string (missing → the default). */
  function readUrlState(defaults) {
    const params = new URLSearchParams(window.location.search);
    const state = {};
    for (const key of Object.keys(defaults)) {
      state[key] = params.has(key) ? params.get(key) : defaults[key];
    }
    return state;
  }

  /** A query string (`?a=1&b=x`, or '') of the non-empty values that differ from `defaults`. */
  function stateQuery(state, defaults) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(state)) {
      if (value === null || value === undefined || value === '') continue;
      if (defaults && String(defaults[key]) === String(value)) continue;
      params.set(key, String(value));
    }
    const text = params.toString();
    return text ? '?' + text : '';
  }

  /** Mirrors `state` in the address bar (replace, or push with {push: true}). */
  function writeUrlState(state, defaults, options) {
    const url = window.location.pathname + stateQuery(state, defaults);
    if (url !== window.location.pathname + window.location.search) {
      const method = options && options.push ? 'pushState' : 'replaceState';
      window.history[method](null, '', url);
    }
    return url;
  }

  // ------------------------------------------------------------------ API

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.name = 'ApiError';
      this.status = status;
    }
  }

  function storedKey() {
    try {
      return window.localStorage.getItem(KEY_STORAGE) || '';
    } catch (_) {
      return '';
    }
  }

  function storeKey(key) {
    try {
      window.localStorage.setItem(KEY_STORAGE, key);
    } catch (_) {
      // private mode without storage: the key lives as long as the page
    }
    memoryKey = key;
  }

  let memoryKey = '';
  const currentKey = () => storedKey() || memoryKey;

  // A key handed over by another Monlight UI in the fragment (`#key=...`): keep it, then
  // take it out of the address bar (and so out of the history and of copied URLs).
  (function takeKeyFromFragment() {
    const hash = window.location.hash.slice(1);
    if (!/(^|&)key=/.test(hash)) return;
    const params = new URLSearchParams(hash);
    const key = (params.get('key') || '').trim();
    params.delete('key');
    if (key) storeKey(key);
    const rest = params.toString();
    window.history.replaceState(window.history.state, '',
      window.location.pathname + window.location.search + (rest ? '#' + rest : ''));
  })();

  let pendingPrompt = null;

  /** Shows the key prompt (once, however many requests wait on it); resolves with the key. */
  function askForKey(reason) {
    if (!pendingPrompt) {
      pendingPrompt = showKeyDialog(reason).finally(() => {
        pendingPrompt = null;
      });
    }
    return pendingPrompt;
  }

  let dialog = null;

  function buildKeyDialog() {
    const input = el('input', {
      type: 'password', id: 'ml-key-input', name: 'api_key', autocomplete: 'off',
      spellcheck: 'false', placeholder: 'API key', required: true, 'aria-describedby': 'ml-key-help',
    });
    const error = el('p', { class: 'error-text', id: 'ml-key-error', role: 'alert' });
    const title = el('h2', { id: 'ml-key-title' }, 'Enter your API key');
    const cancel = el('button', { type: 'button', class: 'btn btn-ghost', id: 'ml-key-cancel' }, 'Cancel');
    const form = el('form', { method: 'dialog', novalidate: true },
      el('div', { class: 'row tight' }, icon('key'), title),
      el('p', { id: 'ml-key-help' },
        'This page reads the service\u2019s API with the key set in its ', el('code', null, 'API_KEY'),
        ' variable. It is kept in this browser for ', el('code', null, window.location.origin),
        ' only: a Monlight page on another port or host is another origin and asks again, unless it is' +
        ' opened from this page\u2019s links, which hand the key over once in the address\u2019s #fragment' +
        ' (never sent to a server).'),
      error,
      el('label', { class: 'field' }, el('span', null, 'API key'), input),
      el('div', { class: 'actions' }, cancel,
        el('button', { type: 'submit', class: 'btn btn-primary', id: 'ml-key-save' }, 'Save and continue')));
    const node = el('dialog', { class: 'modal', id: 'ml-key-dialog', 'aria-labelledby': 'ml-key-title' }, form);
    document.body.appendChild(node);
    return { node, form, input, error, title, cancel };
  }

  /**
   * The prompt. `reason`: 'missing' (first visit), 'rejected' (a 401) or 'change' (the user
   * asked; cancellable). Resolves with the saved key; a cancelled 'change' resolves with null.
   */
  function showKeyDialog(reason) {
    if (!dialog) dialog = buildKeyDialog();
    const d = dialog;
    const cancellable = reason === 'change';
    d.title.textContent = reason === 'rejected' ? 'API key rejected' : reason === 'change' ? 'Change API key' : 'Enter your API key';
    d.error.textContent = reason === 'rejected'
      ? 'The server answered 401 (Invalid API key) for the stored key. Enter the current one.'
      : '';
    d.error.hidden = reason !== 'rejected';
    d.cancel.hidden = !cancellable;
    d.input.value = reason === 'change' ? currentKey() : '';
    d.input.classList.remove('invalid');
    return new Promise((resolve) => {
      const onSubmit = (event) => {
        event.preventDefault();
        const key = d.input.value.trim();
        if (!key) {
          d.input.classList.add('invalid');
          d.input.focus();
          return;
        }
        storeKey(key);
        finish(key);
      };
      const onCancel = (event) => {
        // Without a key nothing can load: only a voluntary change can be cancelled.
        event.preventDefault();
        if (cancellable) finish(null);
      };
      const onCancelClick = () => finish(null);
      function finish(value) {
        d.form.removeEventListener('submit', onSubmit);
        d.node.removeEventListener('cancel', onCancel);
        d.cancel.removeEventListener('click', onCancelClick);
        if (d.node.open) d.node.close();
        resolve(value);
      }
      d.form.addEventListener('submit', onSubmit);
      d.node.addEventListener('cancel', onCancel);
      d.cancel.addEventListener('click', onCancelClick);
      if (!d.node.open) d.node.showModal();
      d.input.focus();
    });
  }

  /** `?a=1&b=2` from an object; null, undefined and '' values are left out. */
  function query(params) {
    return stateQuery(params || {}, null);
  }

  /**
   * Calls the service's API and returns the parsed JSON. Non-2xx → throws ApiError(status,
   * detail); network failure → ApiError(0, ...); an aborted request rethrows the AbortError.
   */
  async function api(path, options) {
    const opts = options || {};
    const url = path + query(opts.query);
    for (;;) {
      let key = currentKey();
      if (!key) key = await askForKey('missing');
      const headers = { 'X-API-Key': key, Accept: 'application/json' };
      const init = { method: opts.method || 'GET', headers, signal: opts.signal, cache: 'no-store' };
      if (opts.body !== undefined) {
        headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(opts.body);
      }
      let response;
      try {
        response = await fetch(url, init);
      } catch (error) {
        if (error && error.name === 'AbortError') throw error;
        throw new ApiError(0, 'Cannot reach the server (' + (error && error.message ? error.message : 'network error') + ')');
      }
      if (response.status === 401) {
        // Another request may already have fixed the key; only ask if ours is still current.
        if (currentKey() === key) await askForKey('rejected');
        continue;
      }
      const text = await response.text();
      let data = null;
      if (text) {
        try {
          data = JSON.parse(text);
        } catch (_) {
          data = null;
        }
      }
      if (!response.ok) {
        const detail = data && typeof data.detail === 'string' ? data.detail : 'HTTP ' + response.status;
        throw new ApiError(response.status, detail);
      }
      return data;
    }
  }

  // ------------------------------------------------------------------ helpers

  /** Runs `fn` once typing has paused for `ms`. */
  function debounce(fn, ms) {
    let timer = null;
    const wrapped = (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
    wrapped.cancel = () => clearTimeout(timer);
    return wrapped;
  }

  /** Auto-refresh choices shown by every UI: [value, label, milliseconds]. */
  const REFRESH_CHOICES = [['off', 'Off', 0], ['5s', '5 s', 5000], ['30s', '30 s', 30000], ['1m', '1 min', 60000], ['5m', '5 min', 300000]];

  /**
   * Calls `run` (which may return a promise) every interval while the tab is visible; never
   * two at once. `set(ms)` changes the interval (0 = off); `reset()` restarts the countdown
   * (call it after a manual load); on returning to the tab a due refresh runs at once.
   */
  function autoRefresh(run) {
    let interval = 0;
    let timer = null;
    let running = false;
    let dueAt = 0;
    function schedule() {
      clearTimeout(timer);
      timer = null;
      if (interval > 0 && !document.hidden) {
        dueAt = Date.now() + interval;
        timer = setTimeout(tick, interval);
      }
    }
    async function tick() {
      if (running) return;
      running = true;
      try {
        await run();
      } catch (_) {
        // the page shows its own error state
      } finally {
        running = false;
        schedule();
      }
    }
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) {
        clearTimeout(timer);
      } else if (interval > 0) {
        if (Date.now() >= dueAt) tick();
        else schedule();
      }
    });
    return {
      set(ms) {
        interval = ms;
        schedule();
      },
      reset: schedule,
      get interval() {
        return interval;
      },
    };
  }

  const numberFormat = new Intl.NumberFormat('en-US');
  /** 1234 → "1,234". */
  const formatCount = (n) => (typeof n === 'number' ? numberFormat.format(n) : String(n));

  /** Pretty JSON for display (to be inserted as text). */
  const pretty = (value) => JSON.stringify(value, null, 2);

  function toast(message, kind) {
    let box = document.getElementById('ml-toasts');
    if (!box) {
      box = el('div', { class: 'toasts', id: 'ml-toasts', role: 'status', 'aria-live': 'polite' });
      document.body.appendChild(box);
    }
    const node = el('div', { class: ['toast', kind] }, message);
    box.appendChild(node);
    setTimeout(() => node.remove(), kind === 'error' ? 6000 : 2600);
  }

  /** Copies text; falls back to a hidden textarea where the async clipboard is unavailable. */
  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch (_) {
        // fall through
      }
    }
    const area = el('textarea', { class: 'sr-only', readonly: true });
    area.value = text;
    document.body.appendChild(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch (_) {
      ok = false;
    }
    area.remove();
    return ok;
  }

  /** Milliseconds of an auto-refresh choice (`off`, `5s`...); 0 when off or unknown. */
  function refreshMs(choice) {
    const found = REFRESH_CHOICES.find((c) => c[0] === choice);
    return found ? found[2] : 0;
  }

  /** Pressing `/` (outside a form field) focuses and selects `input`, like most log tools. */
  function focusOnSlash(input) {
    document.addEventListener('keydown', (event) => {
      const typing = event.target instanceof Element && event.target.closest('input, select, textarea, dialog');
      if (event.key === '/' && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
        event.preventDefault();
        input.focus();
        input.select();
      }
    });
  }

  /** A centred state box: loading, empty, error. */
  function stateBox(options) {
    const o = options || {};
    return el('div', { class: ['state', o.kind], role: o.kind === 'error' ? 'alert' : null },
      o.spinner ? el('div', { class: 'spinner' }) : el('div', { class: 'state-icon', 'aria-hidden': 'true' }, o.symbol || '•'),
      o.title ? el('h2', null, o.title) : null,
      o.text ? el('p', null, o.text) : null,
      o.action || null);
  }

  // ------------------------------------------------------------------ the UIs

  const UI_LABELS = { errors: 'Errors', logs: 'Logs', metrics: 'Metrics' };

  /** The page's UI links (`data-ui-links="errors=http://h:5010,logs=:5011"`) as {name: URL};
   * `:<port>` is this page's host on that port, `/path` a path on this page's origin. */
  function uiLinks() {
    const links = {};
    for (const item of (document.body.dataset.uiLinks || '').split(',')) {
      const at = item.indexOf('=');
      if (at < 1) continue;
      const name = item.slice(0, at);
      let url = item.slice(at + 1);
      if (/^:\d+$/.test(url)) url = window.location.protocol + '//' + window.location.hostname + url;
      else if (/^\/(?!\/)/.test(url)) url = window.location.origin + url;
      if (/^https?:\/\//i.test(url)) links[name] = url.replace(/\/+$/, '');
    }
    return links;
  }

  /** The URL of `path` (e.g. '/?since=...') in UI `name`, or null when it is not configured.
   * This page's own UI is this origin's root, or its configured path on this origin. */
  function uiLink(name, path) {
    const base = uiLinks()[name];
    if (name === document.body.dataset.ui) {
      // This UI: where the browser reached it, unless it lives under a path of this origin.
      const underPath = base && base.startsWith(window.location.origin + '/');
      return underPath ? base + (path || '/') : path || '/';
    }
    return base ? base + (path || '/') : null;
  }

  /** Fills the header's `#app-nav` with a link per configured UI, this one marked current. */
  function renderNav() {
    const nav = document.getElementById('app-nav');
    if (!nav) return;
    const links = uiLinks();
    const current = document.body.dataset.ui;
    const names = Object.keys(UI_LABELS).filter((name) => name === current || links[name]);
    fill(nav, names.map((name) => el('a', {
      class: 'app-nav-link', href: uiLink(name), dataset: { ui: name, passKey: '' },
      'aria-current': name === current ? 'page' : null,
    }, UI_LABELS[name])));
  }

  // A link marked data-pass-key to another origin carries the key once, in its fragment: the
  // href gets `#key=` only for the moment of the click, so hovering or copying shows none.
  function passKey(event) {
    const link = event.target instanceof Element ? event.target.closest('a[data-pass-key]') : null;
    const key = currentKey();
    if (!link || !key) return;
    const url = new URL(link.href, window.location.href);
    if (url.origin === window.location.origin) return;
    const plain = link.getAttribute('href');
    url.hash = 'key=' + encodeURIComponent(key);
    link.setAttribute('href', url.toString());
    setTimeout(() => link.setAttribute('href', plain), 0);
  }
  document.addEventListener('click', passKey, true);
  document.addEventListener('auxclick', passKey, true);
  renderNav();

  // Any element with data-action="change-key" opens the prompt; a new key reloads the page.
  document.addEventListener('click', async (event) => {
    const target = event.target instanceof Element ? event.target.closest('[data-action="change-key"]') : null;
    if (!target) return;
    event.preventDefault();
    const key = await askForKey('change');
    if (key) window.location.reload();
  });

  window.Monlight = Object.freeze({
    el, append, fill, $, icon, safeUrl,
    relativeTime, absoluteTime, timeEl, parseDuration, sinceFor,
    readUrlState, writeUrlState, stateQuery, query,
    api, ApiError, askForKey, storedKey: currentKey, uiLink,
    debounce, autoRefresh, REFRESH_CHOICES, refreshMs, focusOnSlash, formatCount, pretty, toast, copyText, stateBox,
  });
})();
