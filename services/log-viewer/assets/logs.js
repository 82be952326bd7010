/* log-viewer web UI (`/`): filters mirrored in the URL, a log-volume histogram, the list with
 * stable "older" paging, and a live tail over Server-Sent Events.
 * Builds on window.Monlight (monlight.js). Every value from the API goes in as text; search
 * terms are highlighted by splitting the text and wrapping matches in <mark> elements. */
(function () {
  'use strict';

  const M = window.Monlight;
  const { el, fill, $ } = M;
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const PAGE_SIZE = 100;
  /** Lines kept in the list (and waiting to be drawn) while the live tail runs. */
  const LIVE_MAX = 500;
  /** Characters of messages kept in the list (and waiting to be drawn) while the live tail
   * runs. The server cuts each message to 2 KiB, so this rarely binds before LIVE_MAX. */
  const LIVE_MAX_CHARS = 1024 * 1024;
  /** The one-line view shows at most this much of a message (the rest is in the details). */
  const LINE_PREVIEW = 2000;
  const LEVELS = ['DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'];
  /** Stacking order of the histogram, bottom up: the serious levels sit on the baseline. */
  const STACK = ['CRITICAL', 'ERROR', 'WARNING', 'INFO', 'DEBUG'];
  const RANGE_PRESETS = ['all', '30s', '5m', '1h', '24h', '7d', '30d'];
  const RANGE_LABELS = {
    all: 'all time', '30s': 'the last 30 seconds', '5m': 'the last 5 minutes', '1h': 'the last hour',
    '24h': 'the last 24 hours', '7d': 'the last 7 days', '30d': 'the last 30 days',
  };
  const DEFAULTS = {
    search: '', container: '', level: '', range: 'all', since: '', until: '', before: '',
    live: '', refresh: 'off',
  };
  /** Keys that narrow the result (the "Reset" link and the phone's filter count). */
  const FILTER_KEYS = ['search', 'container', 'level', 'range', 'since'];

  // ================================================================ small helpers

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(name, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const pad = (n, w) => String(n).padStart(w || 2, '0');
  const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

  function sameDay(a, b) {
    return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
  }

  const dayLabel = (d) => MONTHS[d.getMonth()] + ' ' + d.getDate();
  const clock = (d) => pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());

  /** `14:02:03.123`, or `Nov 24 14:02:03.123` when not today (local time). */
  function entryTime(d) {
    const time = clock(d) + '.' + pad(d.getMilliseconds(), 3);
    return sameDay(d, new Date()) ? time : dayLabel(d) + ' ' + time;
  }

  /** A short local time for ranges: seconds only when the span is short; the day when asked
   * for or when it is not today. */
  function rangeTime(d, spanMs, withDay) {
    const t = spanMs < 10 * 60000 ? clock(d) : pad(d.getHours()) + ':' + pad(d.getMinutes());
    return withDay || !sameDay(d, new Date()) ? dayLabel(d) + ' ' + t : t;
  }

  /** `Nov 24 23:32 – 23:47`, `14:02:00 – 14:02:30`, `Nov 24 19:40 – Nov 25 19:40`. */
  function spanText(a, b) {
    const span = b - a;
    const end = sameDay(a, b)
      ? (span < 10 * 60000 ? clock(b) : pad(b.getHours()) + ':' + pad(b.getMinutes()))
      : rangeTime(b, span, true);
    return rangeTime(a, span, false) + ' – ' + end;
  }

  function describeSpan(ms) {
    if (ms < 1000) return Math.max(1, Math.round(ms)) + ' ms';
    const s = Math.round(ms / 1000);
    if (s < 120) return s + ' s';
    if (s < 7200) return Math.round(s / 60) + ' min';
    if (s < 172800) return Math.round(s / 3600) + ' h';
    return Math.round(s / 86400) + ' days';
  }

  const formatTotal = (total, capped) => M.formatCount(total) + (capped ? '+' : '');

  /** A stable colour class per container name. */
  function containerClass(name) {
    let h = 0;
    for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
    return 'cc-' + (h % 8);
  }

  function levelBadge(level) {
    const name = LEVELS.includes(level) ? level : 'INFO';
    return el('span', { class: ['lvl', 'lvl-' + name.toLowerCase()] }, name);
  }

  // ================================================================ highlighting

  /**
   * The words a search highlights: FTS5 operators (OR, AND, NOT x, NEAR) and syntax are
   * dropped, phrases give their words, `pre*` highlights as a prefix. Words are what FTS5's
   * unicode61 tokenizer makes of the input (runs of letters and digits).
   */
  function searchTerms(search) {
    const terms = [];
    const tokens = String(search || '').match(/"[^"]*"?|[^\s"]+/g) || [];
    let negate = false;
    for (const token of tokens) {
      if (token === 'NOT') {
        negate = true;
        continue;
      }
      if (token === 'OR' || token === 'AND' || /^NEAR\b/.test(token)) continue;
      if (!negate) {
        const phrase = token.charAt(0) === '"';
        const words = token.match(/[\p{L}\p{N}]+\*?/gu) || [];
        words.forEach((w, i) => {
          const prefix = w.endsWith('*') && (!phrase || i === words.length - 1);
          const word = w.replace(/\*$/, '');
          if (word) terms.push({ word, prefix });
        });
      }
      negate = false;
    }
    return terms;
  }

  function escapeRegExp(text) {
    return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }

  /** A RegExp matching any of the terms at word boundaries, or null. */
  function highlighter(search) {
    const terms = searchTerms(search);
    if (!terms.length) return null;
    const parts = terms
      .sort((a, b) => b.word.length - a.word.length)
      .map((t) => '(?<![\\p{L}\\p{N}])' + escapeRegExp(t.word) + (t.prefix ? '' : '(?![\\p{L}\\p{N}])'));
    try {
      return new RegExp(parts.join('|'), 'giu');
    } catch (_) {
      return null;
    }
  }

  /** `text` as text nodes with every match wrapped in a <mark> (built with DOM methods). */
  function highlighted(text, regex) {
    if (!regex) return [text];
    const out = [];
    let last = 0;
    regex.lastIndex = 0;
    for (const match of text.matchAll(regex)) {
      if (!match[0]) continue;
      if (match.index > last) out.push(text.slice(last, match.index));
      out.push(el('mark', null, match[0]));
      last = match.index + match[0].length;
    }
    if (last < text.length) out.push(text.slice(last));
    return out;
  }

  // ================================================================ state

  const isoOk = (v) => v !== '' && !Number.isNaN(Date.parse(v));

  function cleanState(raw) {
    const s = Object.assign({}, raw);
    const level = String(s.level || '').trim().toUpperCase();
    const bare = level.replace(/^>=/, '');
    s.level = LEVELS.includes(bare) ? level : '';
    if (s.range !== 'all' && M.parseDuration(s.range) === null) s.range = DEFAULTS.range;
    if (!(isoOk(s.since) && isoOk(s.until) && Date.parse(s.since) < Date.parse(s.until))) {
      s.since = '';
      s.until = '';
    }
    if (!/^[1-9]\d{0,15}$/.test(s.before)) s.before = '';
    s.live = s.live === '1' ? '1' : '';
    if (s.live) {
      // Live means "from now on": no older page, no fixed window in the past.
      s.before = '';
      s.since = '';
      s.until = '';
    }
    if (!M.REFRESH_CHOICES.some((c) => c[0] === s.refresh)) s.refresh = 'off';
    return s;
  }

  // ================================================================ the page

  function init() {
    let state = cleanState(M.readUrlState(DEFAULTS));
    const f = {
      search: $('#f-search'), container: $('#f-container'), level: $('#f-level'),
      range: $('#f-range'), rangeCustom: $('#f-range-custom'), refresh: $('#f-refresh'),
    };
    const content = $('#content');
    const errorBanner = $('#error-banner');
    const summary = $('#summary');
    const pill = $('#new-lines');
    const liveButton = $('#live-toggle');
    const liveStatus = $('#live-status');

    /** Entries shown, newest first. */
    let rows = [];
    /** What the list shows: the last response's total, and the overall total when paging. */
    let listInfo = null;
    /** `before` values of the newer pages, to step back through ("Newer"). */
    let newerStack = [];
    const expanded = new Set();
    let containers = null;
    let highlight = null;
    let listSeq = 0;
    let histSeq = 0;
    let listController = null;
    let histController = null;
    let hasRendered = false;
    let lastLoaded = null;
    let histData = null;

    const refresher = M.autoRefresh(() => (state.live ? loadHistogram() : load()));

    const zoomed = () => state.since !== '' && state.until !== '';

    /** The API's filter parameters for the current state (times computed now). */
    function filterQuery() {
      const q = { container: state.container, level: state.level, search: state.search.trim() };
      if (zoomed()) {
        q.since = new Date(state.since).toISOString();
        q.until = new Date(state.until).toISOString();
      } else {
        q.since = M.sinceFor(state.range);
      }
      return q;
    }

    function setBusy(busy) {
      $('#loading-bar').classList.toggle('active', busy);
      $('#refresh').classList.toggle('busy', busy);
    }

    function ensureOption(select, value, label) {
      if (value === '' || [...select.options].some((o) => o.value === value)) return;
      select.appendChild(el('option', { value }, label || value));
    }

    /** The form shows `state`. */
    function showState() {
      if (document.activeElement !== f.search || f.search.value.trim() !== state.search.trim()) {
        f.search.value = state.search;
      }
      ensureOption(f.container, state.container);
      f.container.value = state.container;
      f.level.value = state.level;
      const zoom = zoomed();
      const preset = RANGE_PRESETS.includes(state.range);
      $('#f-range-zoom').hidden = !zoom;
      f.range.value = zoom ? 'zoom' : preset ? state.range : 'custom';
      f.rangeCustom.hidden = zoom || preset;
      if (!preset) f.rangeCustom.value = state.range;
      f.rangeCustom.classList.remove('invalid');
      f.refresh.value = state.refresh;

      const active = FILTER_KEYS.filter((k) => state[k] !== DEFAULTS[k]).length;
      $('#reset-filters').hidden = active === 0;
      const count = $('#filters-count');
      count.hidden = active === 0;
      count.textContent = String(active);

      $('#zoom-banner').hidden = !zoom;
      if (zoom) {
        const a = new Date(state.since);
        const b = new Date(state.until);
        $('#zoom-text').textContent = spanText(a, b) + ' (' + describeSpan(b - a) + ')';
        $('#zoom-out').textContent = 'Back to ' + rangeLabel(state.range);
      }

      liveButton.setAttribute('aria-pressed', String(!!state.live));
      liveButton.classList.toggle('on', !!state.live);
      document.body.classList.toggle('is-live', !!state.live);
      highlight = highlighter(state.search);
    }

    function rangeLabel(range) {
      return RANGE_LABELS[range] || 'the last ' + range;
    }

    /** Applies a change: URL, form, reload (and the live tail follows the filters). */
    function update(changes, options) {
      const wasLive = state.live;
      const before = state.before;
      state = cleanState(Object.assign({}, state, changes));
      if (!('before' in changes)) {
        state.before = '';
        newerStack = [];
      } else if (state.before === '') {
        newerStack = [];
      }
      if (state.before !== before) expanded.clear();
      M.writeUrlState(state, DEFAULTS, options);
      showState();
      const listOnly = options && options.listOnly;
      if (state.live) {
        stopStream();
        load({ histogram: !listOnly }).then(() => {
          if (state.live) startStream(rows.length ? rows[0].id : null);
        });
      } else {
        if (wasLive) stopStream();
        load({ histogram: !listOnly });
      }
    }

    // ------------------------------------------------------------ loading

    async function loadContainers() {
      try {
        const data = await M.api('/api/containers');
        containers = data.containers || [];
        const options = containers.map((c) => el('option', {
          value: c.name, title: M.formatCount(c.log_count) + ' entries' + (c.watching ? '' : ' (no longer watched)'),
        }, c.watching ? c.name : c.name + ' (stopped)'));
        fill(f.container, el('option', { value: '' }, 'All containers'), options);
        ensureOption(f.container, state.container);
        f.container.value = state.container;
      } catch (_) {
        // the list shows the error; the select keeps what it has
      }
    }

    /** Loads the list (and, unless told otherwise, the histogram). */
    async function load(options) {
      const withHistogram = !options || options.histogram !== false;
      if (withHistogram) loadHistogram();
      const mine = ++listSeq;
      if (listController) listController.abort();
      listController = new AbortController();
      const signal = listController.signal;
      setBusy(true);
      if (!hasRendered) fill(content, M.stateBox({ spinner: true, text: 'Loading logs…' }));
      const query = Object.assign(filterQuery(), { limit: PAGE_SIZE, before_id: state.before || null });
      try {
        const requests = [M.api('/api/logs', { query, signal })];
        if (state.before) {
          // Where this page sits: the total without `before_id` (one cheap extra request).
          requests.push(M.api('/api/logs', { query: Object.assign({}, query, { before_id: null, limit: 1 }), signal }));
        }
        const [data, overall] = await Promise.all(requests);
        if (mine !== listSeq) return;
        errorBanner.hidden = true;
        lastLoaded = new Date();
        rows = data.logs || [];
        listInfo = { total: data.total, capped: !!data.total_capped, overall: overall || null };
        renderList();
        hasRendered = true;
      } catch (error) {
        if ((error && error.name === 'AbortError') || mine !== listSeq) return;
        renderLoadError(error);
      } finally {
        if (mine === listSeq) {
          setBusy(false);
          refresher.reset();
        }
      }
    }

    async function loadHistogram() {
      const mine = ++histSeq;
      if (histController) histController.abort();
      histController = new AbortController();
      const host = $('#histogram');
      const buckets = Math.max(12, Math.min(120, Math.floor((host.clientWidth || 600) / 12)));
      const query = Object.assign(filterQuery(), { buckets });
      try {
        const data = await M.api('/api/logs/histogram', { query, signal: histController.signal });
        if (mine !== histSeq) return;
        histData = data;
        renderHistogram();
      } catch (error) {
        if ((error && error.name === 'AbortError') || mine !== histSeq) return;
        histData = null;
        fill(host, el('p', { class: 'hist-empty' }, 'Could not load the histogram: ', error.message));
      }
    }

    function renderLoadError(error) {
      const retry = el('button', { type: 'button', class: 'btn btn-sm', onclick: () => load() }, 'Retry');
      if (hasRendered) {
        fill(errorBanner, M.icon('alert'), el('span', { class: 'grow' }, 'Could not refresh: ', error.message), retry);
        errorBanner.hidden = false;
      } else {
        fill(content, M.stateBox({ kind: 'error', symbol: '!', title: 'Could not load logs', text: error.message, action: retry }));
      }
      summary.textContent = 'Could not load logs';
    }

    // ------------------------------------------------------------ the list

    function scopeText() {
      if (zoomed()) return 'in the zoomed range';
      return 'in ' + rangeLabel(state.range);
    }

    function renderSummary() {
      if (state.live) {
        fill(summary, el('strong', null, M.formatCount(rows.length)), ' ',
          rows.length === 1 ? 'line' : 'lines', ' shown · newest at the top, up to ' + LIVE_MAX + ' kept');
        return;
      }
      if (!listInfo) return;
      const total = state.before && listInfo.overall
        ? formatTotal(listInfo.overall.total, listInfo.overall.total_capped) : formatTotal(listInfo.total, listInfo.capped);
      fill(summary, el('strong', { id: 'total' }, total), ' ', listInfo.total === 1 && !state.before ? 'entry ' : 'entries ',
        scopeText(), el('span', { class: 'faint' }, ' · updated '), M.timeEl(lastLoaded, { class: 'faint' }));
    }

    function renderList() {
      renderSummary();
      $('#list-title').textContent = state.live ? 'Live tail' : 'Entries';
      if (rows.length === 0) {
        fill(content, emptyState());
        return;
      }
      const list = el('ol', { class: 'log-list', id: 'log-list' }, rows.map(rowNode));
      fill(content, list, state.live ? null : pager());
    }

    function emptyState() {
      const filtered = FILTER_KEYS.some((k) => state[k] !== DEFAULTS[k]);
      if (state.live) {
        return M.stateBox({ symbol: '…', title: 'Waiting for new lines', text: 'Lines matching the filters appear here as the containers write them.' });
      }
      if (!filtered && containers && containers.length === 0) {
        return M.stateBox({
          symbol: '∅', title: 'No containers found',
          text: 'The log-viewer reads Docker\u2019s json-file logs from LOG_SOURCES; no container has been found there yet.',
        });
      }
      return M.stateBox({
        symbol: '∅', title: filtered ? 'No log entries match these filters' : 'No log entries yet',
        text: filtered ? 'Try a longer time range, another level or fewer words.' : 'Entries appear as the containers write them.',
        action: filtered ? el('a', { class: 'btn btn-sm', href: '/', onclick: resetFilters }, 'Reset filters') : null,
      });
    }

    function rowNode(entry) {
      const message = String(entry.message);
      const newline = message.indexOf('\n');
      let first = newline === -1 ? message : message.slice(0, newline);
      if (first.length > LINE_PREVIEW) first = first.slice(0, LINE_PREVIEW) + '…';
      const lines = newline === -1 ? null : message.split('\n');
      const extraLines = lines ? lines.length - 1 : 0;
      // A multi-line entry found by a word further down shows that line too.
      let hit = lines && !matches(first) ? lines.slice(1).find(matches) || null : null;
      if (hit && hit.length > LINE_PREVIEW) hit = hit.slice(0, LINE_PREVIEW) + '…';
      const date = new Date(entry.timestamp);
      const open = expanded.has(entry.id);
      const line = el('div', {
        class: 'log-line', role: 'button', tabindex: '0', 'aria-expanded': String(open),
        onclick: (event) => {
          if (String(window.getSelection() || '') !== '') return; // the user is selecting text
          if (event.target instanceof Element && event.target.closest('a, button')) return;
          toggle(item, entry);
        },
        onkeydown: (event) => {
          if (event.target !== event.currentTarget) return;
          if (event.key === 'Enter' || event.key === ' ') {
            event.preventDefault();
            toggle(item, entry);
          }
        },
      },
      el('time', { class: 'c-time', datetime: entry.timestamp, title: M.absoluteTime(date) + '\n' + entry.timestamp }, entryTime(date)),
      el('span', { class: 'c-level' }, levelBadge(entry.level)),
      el('span', { class: ['c-container', containerClass(entry.container)], title: entry.container }, entry.container),
      el('span', { class: 'c-msg' }, highlighted(first, highlight),
        hit ? el('span', { class: 'c-hit' }, el('span', { class: 'c-sep', 'aria-hidden': 'true' }, ' ⏎ '), highlighted(hit.trim(), highlight)) : null),
      extraLines ? el('span', { class: 'c-more', title: extraLines + ' more lines' }, '+' + extraLines) : null);
      const item = el('li', {
        class: ['log-row', 'lv-' + String(entry.level).toLowerCase(), open && 'open', !sameDay(date, new Date()) && 'dated'],
        dataset: { id: entry.id },
      }, line);
      if (open) item.appendChild(detailNode(entry));
      return item;
    }

    /** Whether the current search highlights anything in `text`. */
    function matches(text) {
      if (!highlight) return false;
      highlight.lastIndex = 0;
      const found = highlight.test(text);
      highlight.lastIndex = 0;
      return found;
    }

    function toggle(item, entry) {
      const open = !item.classList.contains('open');
      item.classList.toggle('open', open);
      item.querySelector('.log-line').setAttribute('aria-expanded', String(open));
      const existing = item.querySelector('.log-detail');
      if (open) {
        expanded.add(entry.id);
        if (!existing) item.appendChild(detailNode(entry));
      } else {
        expanded.delete(entry.id);
        if (existing) existing.remove();
      }
    }

    function detailNode(entry) {
      // A cut message (see the README) is fetched whole when its details open.
      let whole = entry.truncated ? null : String(entry.message);
      const message = el('pre', { class: 'code wrap log-message' }, highlighted(String(entry.message), highlight));
      const note = entry.truncated
        ? el('p', { class: 'faint d-cut' }, 'Showing the first ' + M.formatCount(String(entry.message).length) + ' characters of ' +
          M.formatCount(entry.message_bytes) + ' bytes; loading the whole message…')
        : null;
      if (entry.truncated) {
        M.api('/api/logs/' + encodeURIComponent(entry.id)).then((full) => {
          whole = String(full.message);
          fill(message, highlighted(whole, highlight));
          note.remove();
        }, (error) => {
          note.textContent = 'Showing the start of the message only; the whole message could not be loaded: ' + error.message;
        });
      }
      const copy = el('button', {
        type: 'button', class: 'btn btn-sm btn-ghost',
        onclick: async () => M.toast((await M.copyText(whole === null ? entry.message : whole)) ? 'Message copied' : 'Copy failed', 'info'),
      }, M.icon('copy'), 'Copy');
      const context = el('button', {
        type: 'button', class: 'btn btn-sm btn-ghost', title: 'This entry and the ones before it, from this container only',
        onclick: () => update({
          container: entry.container, search: '', level: '', range: 'all', since: '', until: '', live: '',
          before: String(entry.id + 1),
        }, { push: true }),
      }, 'Lines before this in ', el('span', { class: 'mono' }, entry.container));
      return el('div', { class: 'log-detail' },
        note,
        message,
        el('div', { class: 'detail-foot' },
          el('dl', { class: 'facts' },
            el('div', null, el('dt', null, 'ID'), el('dd', { class: 'mono d-id' }, '#' + entry.id)),
            el('div', null, el('dt', null, 'Stream'), el('dd', { class: 'mono d-stream' }, entry.stream)),
            el('div', null, el('dt', null, 'Container'), el('dd', { class: 'mono d-container' }, entry.container)),
            el('div', null, el('dt', null, 'Time'), el('dd', { class: 'd-time', title: entry.timestamp }, M.absoluteTime(entry.timestamp)))),
          el('div', { class: 'row tight detail-actions' }, context, copy)));
    }

    function pager() {
      const info = listInfo;
      let text;
      if (!state.before) {
        text = ['Showing ', el('strong', null, '1–' + M.formatCount(rows.length)),
          ' of ', el('strong', null, formatTotal(info.total, info.capped))];
      } else if (info.overall && !info.overall.total_capped && !info.capped) {
        const start = info.overall.total - info.total + 1;
        text = ['Showing ', el('strong', null, M.formatCount(start) + '–' + M.formatCount(start + rows.length - 1)),
          ' of ', el('strong', null, M.formatCount(info.overall.total))];
      } else {
        text = [el('strong', null, M.formatCount(rows.length)), ' entries before #' + state.before + ' · ',
          el('strong', null, formatTotal(info.total, info.capped)), ' older in all'];
      }
      const more = rows.length === PAGE_SIZE && (info.capped || info.total > rows.length);
      const newer = () => {
        const previous = newerStack.pop();
        const stack = newerStack;
        update({ before: previous || '' }, { push: true, listOnly: true });
        newerStack = stack;
        scrollToList();
      };
      const older = () => {
        const stack = newerStack.concat([state.before]);
        update({ before: String(rows[rows.length - 1].id) }, { push: true, listOnly: true });
        newerStack = stack;
        scrollToList();
      };
      return el('div', { class: 'table-foot' },
        el('span', { id: 'range-info' }, text),
        el('div', { class: 'pager' },
          state.before ? el('button', { type: 'button', class: 'btn btn-sm btn-ghost', id: 'newest-page', onclick: () => update({ before: '' }, { push: true, listOnly: true }) }, 'Newest') : null,
          el('button', { type: 'button', class: 'btn btn-sm', id: 'newer-page', disabled: !state.before, onclick: newer },
            M.icon('back'), 'Newer'),
          el('button', { type: 'button', class: 'btn btn-sm', id: 'older-page', disabled: !more, onclick: older },
            'Older', M.icon('next'))));
    }

    function scrollToList() {
      const card = $('#logs-card');
      const header = $('.app-header').getBoundingClientRect().height;
      const top = card.getBoundingClientRect().top + window.scrollY - header - 8;
      if (window.scrollY > top) window.scrollTo({ top });
    }

    // ------------------------------------------------------------ histogram

    const LEVEL_FILL = {
      DEBUG: '#5d6780', INFO: '#4f86d9', WARNING: '#e0a93f', ERROR: '#e5566a', CRITICAL: '#b57bff',
    };

    function niceStep(spanMs, maxTicks) {
      const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
        172800, 604800, 1209600, 2592000].map((s) => s * 1000);
      return steps.find((s) => spanMs / s <= maxTicks) || steps[steps.length - 1];
    }

    function renderHistogram() {
      const host = $('#histogram');
      const data = histData;
      if (!data) return;
      const buckets = data.buckets || [];
      const since = Date.parse(data.since);
      const until = Date.parse(data.until);
      const span = Math.max(1, until - since);
      const phone = window.matchMedia('(max-width: 640px)').matches;
      const width = Math.max(200, host.clientWidth);
      const height = phone ? 96 : 132;
      const m = { left: 38, right: 6, top: 8, bottom: 20 };
      const plotW = width - m.left - m.right;
      const plotH = height - m.top - m.bottom;
      const maxCount = buckets.reduce((a, b) => Math.max(a, b.count), 0);
      const totals = {};
      for (const b of buckets) for (const [lvl, n] of Object.entries(b.by_level || {})) totals[lvl] = (totals[lvl] || 0) + n;

      fill($('#hist-legend'), STACK.slice().reverse().filter((lvl) => totals[lvl]).map((lvl) =>
        el('span', { class: 'legend-item', title: M.formatCount(totals[lvl]) + ' ' + lvl + ' entries' },
          el('span', { class: ['swatch', 'sw-' + lvl.toLowerCase()] }), lvl, ' ',
          el('span', { class: 'faint' }, M.formatCount(totals[lvl])))));
      const withDays = !sameDay(new Date(since), new Date(until));
      $('#hist-range').textContent = spanText(new Date(since), new Date(until)) + ' · ' +
        describeSpan(span / Math.max(1, buckets.length)) + ' per bar';

      const chart = svg('svg', {
        class: 'hist-svg', id: 'hist-svg', width, height, viewBox: `0 0 ${width} ${height}`,
        role: 'img', 'aria-label': 'Log volume by level: ' + M.formatCount(buckets.reduce((a, b) => a + b.count, 0)) + ' entries',
      });
      // Grid lines at round counts, at most three above the baseline.
      const { top: yMax, ticks } = yScale(maxCount);
      for (const value of [0].concat(ticks)) {
        const y = Math.round(m.top + plotH - (value / yMax) * plotH) + 0.5;
        chart.appendChild(svg('line', { class: 'grid', x1: m.left, x2: width - m.right, y1: y, y2: y }));
        if (value > 0) {
          chart.appendChild(svg('text', { class: 'axis', x: m.left - 6, y: y + 3.5, 'text-anchor': 'end' }, compactCount(value)));
        }
      }
      // x ticks at round local times.
      const step = niceStep(span, Math.max(2, Math.floor(plotW / 90)));
      const zone = -new Date(since).getTimezoneOffset() * 60000;
      const align = step >= 3600000 ? zone : 0;
      for (let t = Math.ceil((since + align) / step) * step - align; t <= until; t += step) {
        const x = m.left + ((t - since) / span) * plotW;
        const d = new Date(t);
        let label;
        if (step >= 86400000) label = dayLabel(d);
        else if (step < 60000) label = clock(d);
        else if (d.getHours() === 0 && d.getMinutes() === 0 && withDays) label = dayLabel(d);
        else label = pad(d.getHours()) + ':' + pad(d.getMinutes());
        chart.appendChild(svg('line', { class: 'tick', x1: x, x2: x, y1: m.top + plotH, y2: m.top + plotH + 4 }));
        chart.appendChild(svg('text', { class: 'axis', x, y: height - 4, 'text-anchor': 'middle' }, label));
      }
      // Bars.
      const n = Math.max(1, buckets.length);
      const slot = plotW / n;
      const gap = slot > 6 ? Math.min(3, slot * 0.18) : 0;
      buckets.forEach((b, i) => {
        const start = Date.parse(b.start);
        const end = i + 1 < buckets.length ? Date.parse(buckets[i + 1].start) : until;
        const x = m.left + i * slot;
        const group = svg('g', { class: b.count ? 'bar' : 'bar empty', 'data-index': i });
        group.appendChild(svg('rect', { class: 'hit', x, y: m.top, width: slot, height: plotH }));
        let y = m.top + plotH;
        for (const lvl of STACK) {
          const count = (b.by_level || {})[lvl] || 0;
          if (!count) continue;
          let h = (count / yMax) * plotH;
          if (h < 1.5) h = 1.5;
          y -= h;
          group.appendChild(svg('rect', {
            class: 'seg', 'data-level': lvl, x: x + gap / 2, y, width: Math.max(1, slot - gap), height: h, fill: LEVEL_FILL[lvl],
          }));
        }
        group.addEventListener('mouseenter', () => showTip(b, start, end, x + slot / 2, width));
        group.addEventListener('mouseleave', hideTip);
        group.addEventListener('click', () => {
          if (!b.count) return;
          hideTip();
          zoomTo(start, end);
        });
        chart.appendChild(group);
      });
      const tip = el('div', { class: 'hist-tip', id: 'hist-tip', hidden: true });
      const nodes = [chart, tip];
      if (maxCount === 0) nodes.push(el('p', { class: 'hist-empty overlay' }, 'No entries in this range'));
      fill(host, nodes);
    }

    /** The axis top and its grid values: steps of 1, 2, 2.5 or 5 × 10ⁿ, integers only. */
    function yScale(maxCount) {
      if (maxCount <= 0) return { top: 1, ticks: [] };
      const raw = maxCount / 3;
      const pow = Math.pow(10, Math.floor(Math.log10(raw)));
      const step = Math.max(1, [1, 2, 2.5, 5, 10].map((f) => f * pow).find((v) => v >= raw && Number.isInteger(v)) || Math.ceil(raw));
      const top = step * Math.ceil(maxCount / step);
      const ticks = [];
      for (let v = step; v <= top; v += step) ticks.push(v);
      return { top, ticks };
    }

    function compactCount(n) {
      if (n >= 1e6) return (n / 1e6).toFixed(n >= 1e7 ? 0 : 1) + 'M';
      if (n >= 1e3) return (n / 1e3).toFixed(n >= 1e4 ? 0 : 1) + 'k';
      return String(n);
    }

    function showTip(bucket, start, end, x, width) {
      const tip = $('#hist-tip');
      if (!tip) return;
      const levels = STACK.slice().reverse().filter((l) => (bucket.by_level || {})[l]);
      fill(tip,
        el('div', { class: 'tip-time' }, spanText(new Date(start), new Date(end))),
        el('div', { class: 'tip-total' }, M.formatCount(bucket.count) + (bucket.count === 1 ? ' entry' : ' entries')),
        levels.map((l) => el('div', { class: 'tip-level' }, el('span', { class: ['swatch', 'sw-' + l.toLowerCase()] }), l,
          el('span', { class: 'num' }, M.formatCount(bucket.by_level[l])))),
        bucket.count ? el('div', { class: 'tip-hint' }, 'Click to zoom in') : null);
      tip.hidden = false;
      // Position with CSSOM (allowed by the CSP, unlike style attributes).
      const w = tip.offsetWidth;
      tip.style.left = Math.max(0, Math.min(width - w, x - w / 2)) + 'px';
    }

    function hideTip() {
      const tip = $('#hist-tip');
      if (tip) tip.hidden = true;
    }

    function zoomTo(start, end) {
      update({
        since: new Date(start).toISOString(), until: new Date(Math.max(end, start + 1)).toISOString(), live: '',
      }, { push: true });
    }

    let resizeFrame = 0;
    let lastWidth = 0;
    new ResizeObserver(() => {
      const width = $('#histogram').clientWidth;
      if (width === lastWidth) return;
      lastWidth = width;
      cancelAnimationFrame(resizeFrame);
      resizeFrame = requestAnimationFrame(renderHistogram);
    }).observe($('#histogram'));

    // ------------------------------------------------------------ live tail

    let source = null;
    let lastEventId = null;
    let retryTimer = null;
    let retryDelay = 1000;
    /** Entries received but not drawn yet (a background tab draws no frames): the newest
     * LIVE_MAX / LIVE_MAX_CHARS at most, as only those would be kept anyway. */
    let queue = [];
    let queueChars = 0;
    let flushFrame = 0;
    let pendingPill = 0;
    let histTimer = null;

    function setLiveStatus(kind, text) {
      liveStatus.hidden = false;
      liveStatus.className = 'live-status ' + kind;
      liveStatus.textContent = text;
    }

    function startStream(sinceId) {
      stopStream();
      let key = M.storedKey();
      if (!key) {
        M.askForKey('missing').then(() => state.live && startStream(sinceId));
        return;
      }
      lastEventId = sinceId;
      const query = {
        api_key: key, container: state.container, level: state.level, search: state.search.trim(),
        since_id: sinceId === null || sinceId === undefined ? null : sinceId,
      };
      const es = new EventSource('/api/logs/tail' + M.query(query));
      source = es;
      setLiveStatus('connecting', 'Connecting…');
      es.addEventListener('open', () => {
        if (source !== es) return;
        retryDelay = 1000;
        setLiveStatus('on', 'Live');
      });
      es.addEventListener('log', (event) => {
        if (source !== es) return;
        let entry;
        try {
          entry = JSON.parse(event.data);
        } catch (_) {
          return;
        }
        lastEventId = entry.id;
        queue.push(entry);
        queueChars += messageChars(entry);
        while (queue.length > LIVE_MAX || (queueChars > LIVE_MAX_CHARS && queue.length > 1)) {
          queueChars -= messageChars(queue.shift());
        }
        if (!flushFrame) flushFrame = requestAnimationFrame(flushQueue);
      });
      es.addEventListener('close', () => {
        // The server ends a stream after 30 minutes: pick up where it stopped.
        if (source !== es) return;
        es.close();
        startStream(lastEventId);
      });
      es.addEventListener('error', () => {
        if (source !== es) return;
        if (es.readyState === EventSource.CLOSED) {
          // Refused (401, 503 too many tails...) or gone: retry ourselves, with backoff.
          setLiveStatus('off', 'Disconnected — retrying in ' + Math.round(retryDelay / 1000) + ' s');
          es.close();
          source = null;
          retryTimer = setTimeout(() => {
            if (state.live) {
              // A 401 shows the key prompt through an ordinary request first.
              M.api('/api/stats').then(() => startStream(lastEventId), () => startStream(lastEventId));
            }
          }, retryDelay);
          retryDelay = Math.min(retryDelay * 2, 30000);
        } else {
          setLiveStatus('connecting', 'Reconnecting…');
        }
      });
    }

    function stopStream() {
      clearTimeout(retryTimer);
      retryTimer = null;
      if (source) source.close();
      source = null;
      queue = [];
      queueChars = 0;
      cancelAnimationFrame(flushFrame);
      flushFrame = 0;
      liveStatus.hidden = true;
      hidePill();
    }

    /** Whether the user has scrolled into the list (its first line is out of sight). */
    function isReading() {
      const list = $('#log-list');
      if (!list) return false;
      const header = $('.app-header').getBoundingClientRect().bottom;
      return list.getBoundingClientRect().top < header - 2;
    }

    /** The first list row visible below the header: the anchor the view must not move. */
    function anchorRow() {
      const header = $('.app-header').getBoundingClientRect().bottom;
      for (const row of document.querySelectorAll('#log-list > li')) {
        if (row.getBoundingClientRect().bottom > header) return row;
      }
      return null;
    }

    function flushQueue() {
      flushFrame = 0;
      if (!state.live || !queue.length) return;
      const newest = rows.length ? rows[0].id : 0;
      const fresh = queue.filter((e) => e.id > newest).sort((a, b) => b.id - a.id);
      queue = [];
      queueChars = 0;
      if (!fresh.length) return;
      let list = $('#log-list');
      if (!list) {
        list = el('ol', { class: 'log-list', id: 'log-list' });
        fill(content, list);
      }
      const reading = isReading();
      const anchor = reading ? anchorRow() : null;
      const anchorTop = anchor ? anchor.getBoundingClientRect().top : 0;

      const nodes = fresh.map((entry) => {
        const node = rowNode(entry);
        if (!reading) node.classList.add('fresh');
        return node;
      });
      list.prepend(...nodes);
      rows = fresh.concat(rows);
      let rowChars = rows.reduce((sum, e) => sum + messageChars(e), 0);
      while (rows.length > LIVE_MAX || (rowChars > LIVE_MAX_CHARS && rows.length > 1)) {
        const gone = rows.pop();
        rowChars -= messageChars(gone);
        expanded.delete(gone.id);
        if (list.lastElementChild) list.lastElementChild.remove();
      }
      if (anchor && anchor.isConnected) {
        // Keep what the user is reading where it was.
        const delta = anchor.getBoundingClientRect().top - anchorTop;
        if (delta) window.scrollBy(0, delta);
      }
      if (reading) {
        pendingPill += fresh.length;
        pill.textContent = '↑ ' + M.formatCount(pendingPill) + (pendingPill === 1 ? ' new line' : ' new lines');
        pill.hidden = false;
      }
      renderSummary();
      scheduleHistogram();
    }

    function messageChars(entry) {
      return String(entry.message).length;
    }

    function hidePill() {
      pendingPill = 0;
      pill.hidden = true;
    }

    /** While live, the histogram follows at most every 5 s. */
    function scheduleHistogram() {
      if (histTimer) return;
      histTimer = setTimeout(() => {
        histTimer = null;
        if (state.live) loadHistogram();
      }, 5000);
    }

    pill.addEventListener('click', () => {
      hidePill();
      const list = $('#log-list');
      if (!list) return;
      const header = $('.app-header').getBoundingClientRect().height;
      window.scrollTo({ top: list.getBoundingClientRect().top + window.scrollY - header - 48, behavior: 'smooth' });
    });
    window.addEventListener('scroll', () => {
      if (!pill.hidden && !isReading()) hidePill();
    }, { passive: true });

    liveButton.addEventListener('click', () => {
      if (state.live) {
        update({ live: '' }, { push: false });
      } else {
        update({ live: '1', before: '', since: '', until: '' });
      }
    });

    // ------------------------------------------------------------ wiring

    function resetFilters(event) {
      if (event) event.preventDefault();
      state = cleanState(Object.assign({}, DEFAULTS, { refresh: state.refresh, live: state.live }));
      update({}, { push: true });
    }

    const searchChanged = M.debounce(() => update({ search: f.search.value }), 350);
    f.search.addEventListener('input', searchChanged);
    f.search.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        searchChanged.cancel();
        update({ search: f.search.value });
      } else if (event.key === 'Escape' && f.search.value) {
        f.search.value = '';
        searchChanged.cancel();
        update({ search: '' });
      }
    });
    f.container.addEventListener('change', () => update({ container: f.container.value }));
    f.level.addEventListener('change', () => update({ level: f.level.value }));
    f.range.addEventListener('change', () => {
      if (f.range.value === 'zoom') return;
      if (f.range.value === 'custom') {
        f.rangeCustom.hidden = false;
        f.rangeCustom.focus();
        const value = f.rangeCustom.value.trim();
        if (M.parseDuration(value) !== null) update({ range: value, since: '', until: '' });
      } else {
        update({ range: f.range.value, since: '', until: '' });
      }
    });
    const customChanged = () => {
      const value = f.rangeCustom.value.trim();
      const valid = M.parseDuration(value) !== null;
      f.rangeCustom.classList.toggle('invalid', !valid && value !== '');
      if (valid && (value !== state.range || zoomed())) update({ range: value, since: '', until: '' });
    };
    f.rangeCustom.addEventListener('input', M.debounce(customChanged, 500));
    f.rangeCustom.addEventListener('change', customChanged);
    $('#zoom-out').addEventListener('click', () => update({ since: '', until: '' }, { push: true }));
    f.refresh.addEventListener('change', () => {
      state.refresh = f.refresh.value;
      M.writeUrlState(state, DEFAULTS);
      refresher.set(M.refreshMs(state.refresh));
    });
    $('#refresh').addEventListener('click', () => {
      loadContainers();
      if (state.live) loadHistogram();
      else load();
    });
    $('#filters').addEventListener('submit', (event) => event.preventDefault());
    $('#reset-filters').addEventListener('click', resetFilters);
    $('#filters-toggle').addEventListener('click', () => {
      const form = $('#filters');
      const open = !form.classList.contains('open');
      form.classList.toggle('open', open);
      $('#filters-toggle').setAttribute('aria-expanded', String(open));
    });
    window.addEventListener('popstate', () => {
      state = cleanState(M.readUrlState(DEFAULTS));
      newerStack = [];
      showState();
      refresher.set(M.refreshMs(state.refresh));
      stopStream();
      load().then(() => {
        if (state.live) startStream(rows.length ? rows[0].id : null);
      });
    });
    M.focusOnSlash(f.search);

    M.writeUrlState(state, DEFAULTS);
    showState();
    refresher.set(M.refreshMs(state.refresh));
    loadContainers();
    load().then(() => {
      if (state.live) startStream(rows.length ? rows[0].id : null);
    });
  }

  init();
})();
