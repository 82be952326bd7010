/* log-viewer web UI (`/`): filters mirrored in the URL, a log-volume histogram, the list with
 * stable "older" paging, and a live tail over Server-Sent Events.
 * Builds on window.Monlight (monlight.js) and window.MonlightCharts (charts.js, the histogram).
 * Every value from the API goes in as text; search terms are highlighted by splitting the
 * text and wrapping matches in <mark> elements. */
(function () {
  'use strict';

  const M = window.Monlight;
  const { el, fill, $ } = M;
  const Charts = window.MonlightCharts;

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
  /** The single-valued URL parameters. `container` may repeat and is kept apart, in
   * `state.containers` (see readState / writeState). `anchor`: the entry "Lines before this"
   * was opened from. */
  const DEFAULTS = {
    search: '', level: '', range: 'all', since: '', until: '', before: '', anchor: '',
    live: '', refresh: 'off',
  };
  /** Keys that narrow the result (the "Reset" link and the phone's filter count). */
  const FILTER_KEYS = ['search', 'level', 'range', 'since'];
  /** Lines shown above the anchor of "Lines before this": what the container wrote next. */
  const AFTER_ANCHOR = 5;
  /** Entry ids are `timestamp × 1000 + n` (see the README): the anchor's time from its id. */
  const ID_PER_MS = 1000;

  // ================================================================ small helpers

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

  /** A leading timestamp, zone and process id (`2026-01-20 10:00:00.123 UTC [81] `,
   * `2026-01-20T10:00:00Z `): it repeats the time column. */
  const TIME_PREFIX = /^\[?\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?\]?(?:\s+(?:UTC|GMT))?(?:\s+\[\d+\])?\s+/;

  const isoOk = (v) => v !== '' && !Number.isNaN(Date.parse(v));

  /** The URL's state: the single-valued keys, and every `container=`. */
  function readState() {
    const state = M.readUrlState(DEFAULTS);
    const params = new URLSearchParams(window.location.search);
    state.containers = params.getAll('container').map((c) => c.trim()).filter((c) => c !== '');
    return state;
  }

  /** Mirrors `state` in the address bar (replace, or push with {push: true}); a query string
   * as M.writeUrlState writes it, with one `container=` per container. */
  function writeState(state, options) {
    const single = Object.assign({}, state);
    delete single.containers;
    const params = new URLSearchParams(M.stateQuery(single, DEFAULTS));
    for (const name of state.containers) params.append('container', name);
    const text = params.toString();
    const url = window.location.pathname + (text ? '?' + text : '');
    if (url !== window.location.pathname + window.location.search) {
      window.history[options && options.push ? 'pushState' : 'replaceState'](null, '', url);
    }
  }

  /** `path` with the query `q` and one `container=` per name (M.query writes one value per
   * key). */
  function withContainers(path, q, containers) {
    const params = new URLSearchParams(M.query(q));
    for (const name of containers || []) params.append('container', name);
    const text = params.toString();
    return path + (text ? '?' + text : '');
  }

  function cleanState(raw) {
    const s = Object.assign({}, raw);
    const level = String(s.level || '').trim().toUpperCase();
    const bare = level.replace(/^>=/, '');
    s.level = LEVELS.includes(bare) ? level : '';
    if (s.range !== 'all' && M.parseDuration(s.range) === null) s.range = DEFAULTS.range;
    // A window: since and until (a deep link may give since alone: until now).
    if (!isoOk(s.since) || (s.until !== '' && !(isoOk(s.until) && Date.parse(s.since) < Date.parse(s.until)))) {
      s.since = '';
      s.until = '';
    }
    s.containers = Array.from(new Set((s.containers || []).map(String).filter((c) => c !== '')));
    if (!/^[1-9]\d{0,15}$/.test(s.before)) s.before = '';
    if (!/^[1-9]\d{0,15}$/.test(s.anchor) || !s.before) s.anchor = '';
    s.live = s.live === '1' ? '1' : '';
    if (s.live) {
      // Live means "from now on": no older page, no fixed window in the past.
      s.before = '';
      s.anchor = '';
      s.since = '';
      s.until = '';
    }
    if (!M.REFRESH_CHOICES.some((c) => c[0] === s.refresh)) s.refresh = 'off';
    return s;
  }

  // ================================================================ the page

  function init() {
    let state = cleanState(readState());
    const f = {
      search: $('#f-search'), container: $('#f-container'), containerList: $('#f-container-list'), level: $('#f-level'),
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

    const zoomed = () => state.since !== '';
    /** Where a return from "Lines before this" goes: the state it was opened from. */
    let anchorReturn = null;
    /** What `/health` says of LOG_SOURCES (the empty state names a problem). */
    let sources = null;

    /** The number of filters that differ from the defaults. */
    function activeFilters() {
      return FILTER_KEYS.filter((k) => state[k] !== DEFAULTS[k]).length + (state.containers.length ? 1 : 0);
    }

    /** The API's filter parameters for the current state (times computed now); the
     * containers go in apart (see withContainers). */
    function filterQuery() {
      const q = { level: state.level, search: state.search.trim() };
      if (zoomed()) {
        q.since = new Date(state.since).toISOString();
        q.until = state.until ? new Date(state.until).toISOString() : null;
      } else {
        q.since = M.sinceFor(state.range);
      }
      return q;
    }

    function setBusy(busy) {
      $('#loading-bar').classList.toggle('active', busy);
      $('#refresh').classList.toggle('busy', busy);
    }

    /** The form shows `state`. */
    function showState() {
      if (document.activeElement !== f.search || f.search.value.trim() !== state.search.trim()) {
        f.search.value = state.search;
      }
      showContainers();
      f.level.value = state.level;
      const zoom = zoomed();
      const preset = RANGE_PRESETS.includes(state.range);
      $('#f-range-zoom').hidden = !zoom;
      f.range.value = zoom ? 'zoom' : preset ? state.range : 'custom';
      f.rangeCustom.hidden = zoom || preset;
      if (!preset) f.rangeCustom.value = state.range;
      f.rangeCustom.classList.remove('invalid');
      f.refresh.value = state.refresh;

      const active = activeFilters();
      $('#reset-filters').hidden = active === 0;
      // A filter that narrows the list looks it (accent border and tint), not like a default.
      f.search.closest('.field').classList.toggle('is-set', state.search.trim() !== '');
      f.container.closest('.field').classList.toggle('is-set', state.containers.length > 0);
      f.level.closest('.field').classList.toggle('is-set', state.level !== '');
      f.range.closest('.field').classList.toggle('is-set', state.range !== 'all' || zoom);
      const count = $('#filters-count');
      count.hidden = active === 0;
      count.textContent = String(active);

      $('#zoom-banner').hidden = !zoom;
      if (zoom) {
        const a = new Date(state.since);
        const b = state.until ? new Date(state.until) : new Date();
        $('#zoom-banner .badge').textContent = 'Time window';
        $('#zoom-text').textContent = spanText(a, b) + (state.until ? '' : ' (until now)') + ' · ' + describeSpan(b - a);
        $('#zoom-out').textContent = 'Back to ' + rangeLabel(state.range);
      }
      showAnchorBanner();

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
      if ('anchor' in changes && changes.anchor && !state.anchor) {
        anchorReturn = Object.assign({}, state, { containers: state.containers.slice() });
      }
      state = cleanState(Object.assign({}, state, changes));
      if (!('before' in changes)) {
        state.before = '';
        newerStack = [];
      } else if (state.before === '') {
        newerStack = [];
      }
      if (!state.before) state.anchor = '';
      if (!state.anchor) anchorReturn = null;
      if (state.before !== before) expanded.clear();
      writeState(state, options);
      showState();
      const listOnly = options && options.listOnly;
      if (state.live) {
        stopStream();
        load({ histogram: !listOnly }).then(() => {
          if (state.live) startStream(listInfo ? listInfo.cursor : null);
        });
      } else {
        if (wasLive) stopStream();
        load({ histogram: !listOnly });
      }
    }

    // ------------------------------------------------------------ loading

    async function loadContainers() {
      loadSources();
      try {
        const data = await M.api('/api/containers');
        containers = data.containers || [];
        showContainers();
      } catch (_) {
        // the list shows the error; the picker keeps what it has
      }
    }

    /** LOG_SOURCES as `/health` reports it (no key needed); only an unreadable one matters. */
    async function loadSources() {
      try {
        const response = await fetch('/health', { cache: 'no-store' });
        const health = await response.json();
        sources = health && health.log_sources ? health.log_sources : null;
      } catch (_) {
        sources = null;
      }
      if (hasRendered && rows.length === 0 && !state.live) fill(content, emptyState());
    }

    /** The container picker: one checkbox per container (those of the URL too), the summary
     * naming the chosen ones. */
    function showContainers() {
      const known = (containers || []).map((c) => c.name);
      const names = known.concat(state.containers.filter((n) => !known.includes(n)));
      const byName = new Map((containers || []).map((c) => [c.name, c]));
      const boxes = [...f.containerList.querySelectorAll('input[type=checkbox]')];
      const same = boxes.length === names.length && boxes.every((box, i) => box.value === names[i]);
      // The same containers: only the ticks change (keeps the keyboard focus in an open picker).
      if (same) boxes.forEach((box) => { box.checked = state.containers.includes(box.value); });
      else fill(f.containerList, names.length ? names.map((name) => {
        const info = byName.get(name);
        const box = el('input', { type: 'checkbox', value: name });
        box.checked = state.containers.includes(name);
        return el('label', {
          class: 'picker-item',
          title: info ? M.formatCount(info.log_count) + ' entries' + (info.watching ? '' : ' (no longer watched)') : 'not seen yet',
        }, box, el('span', { class: ['mono', containerClass(name)] }, name),
        info && !info.watching ? el('span', { class: 'faint' }, ' (stopped)') : null,
        info ? el('span', { class: 'faint picker-count' }, M.formatCount(info.log_count)) : null);
      }) : el('p', { class: 'faint picker-empty' }, 'No containers yet'));
      const chosen = state.containers;
      const summary = $('summary', f.container);
      if (!chosen.length) fill(summary, 'All containers');
      else if (chosen.length <= 2) fill(summary, el('span', { class: 'mono' }, chosen.join(', ')));
      else fill(summary, chosen.length + ' containers');
      summary.title = chosen.length ? chosen.join('\n') : 'Every container';
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
      const list = (q) => M.api(withContainers('/api/logs', q, state.containers), { signal });
      const anchor = Number(state.anchor);
      const firstAnchorPage = anchor && Number(state.before) === anchor + 1;
      try {
        const requests = [list(query)];
        if (state.before) {
          // Where this page sits: the total without `before_id` (one cheap extra request).
          requests.push(list(Object.assign({}, query, { before_id: null, limit: 1 })));
        }
        if (firstAnchorPage) {
          // What the container wrote next: the oldest few lines of the minute after it.
          const at = Math.floor(anchor / ID_PER_MS);
          requests.push(list({
            since: new Date(at).toISOString(), until: new Date(at + 60000).toISOString(), limit: 500,
          }));
        }
        const [data, overall, after] = await Promise.all(requests);
        if (mine !== listSeq) return;
        errorBanner.hidden = true;
        lastLoaded = new Date();
        const next = after ? (after.logs || []).filter((e) => e.id > anchor).slice(-AFTER_ANCHOR) : [];
        next.forEach((e) => { e.afterAnchor = true; });
        rows = next.concat(data.logs || []);
        listInfo = { total: data.total, capped: !!data.total_capped, overall: overall || null, cursor: data.tail_cursor };
        renderList();
        hasRendered = true;
        if (firstAnchorPage) {
          const row = document.querySelector('#log-list > li.anchor');
          if (row) row.scrollIntoView({ block: 'center' });
        }
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
      const buckets = Math.max(12, Math.min(120, Math.floor(($('#histogram').clientWidth || 600) / 12)));
      const query = Object.assign(filterQuery(), { buckets });
      try {
        const data = await M.api(withContainers('/api/logs/histogram', query, state.containers), { signal: histController.signal });
        if (mine !== histSeq) return;
        histData = data;
        renderHistogram();
      } catch (error) {
        if ((error && error.name === 'AbortError') || mine !== histSeq) return;
        histData = null;
        fill($('#hist-legend'));
        histChart.set({ x: [], series: [], empty: 'Could not load the histogram: ' + error.message });
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
      showAnchorBanner();
      $('#list-title').textContent = state.live ? 'Live tail' : 'Entries';
      if (rows.length === 0) {
        fill(content, emptyState());
        return;
      }
      const list = el('ol', { class: 'log-list', id: 'log-list' }, rows.map(rowNode));
      fill(content, list, state.live ? null : pager());
    }

    function emptyState() {
      const filtered = activeFilters() > 0;
      if (sources && sources.readable === false) {
        return M.stateBox({
          kind: 'error', symbol: '!', title: 'LOG_SOURCES cannot be read',
          text: 'The log-viewer reads Docker\u2019s json-file logs from ' + sources.path + ': ' +
            (sources.error || 'unreadable') + '. Mount Docker\u2019s containers directory there (read-only is enough) or set LOG_SOURCES; it is retried every rescan.',
        });
      }
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
        action: filtered ? el('a', { class: 'btn btn-sm', href: window.location.pathname, onclick: resetFilters }, 'Reset filters') : null,
      });
    }

    function rowNode(entry) {
      const message = String(entry.message);
      const newline = message.indexOf('\n');
      let first = newline === -1 ? message : message.slice(0, newline);
      const json = jsonFields(first);
      // A leading timestamp repeats the time column: shown faint, and not at all on a phone.
      const prefix = json ? '' : (first.match(TIME_PREFIX) || [''])[0];
      first = first.slice(prefix.length);
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
      el('span', { class: ['c-msg', json && 'c-json'] },
        prefix ? el('span', { class: 'c-prefix' }, prefix) : null,
        json ? jsonLine(json) : highlighted(first, highlight),
        hit ? el('span', { class: 'c-hit' }, el('span', { class: 'c-sep', 'aria-hidden': 'true' }, ' ⏎ '), highlighted(hit.trim(), highlight)) : null),
      extraLines ? el('span', { class: 'c-more', title: extraLines + ' more lines' }, '+' + extraLines) : null);
      const item = el('li', {
        class: ['log-row', 'lv-' + String(entry.level).toLowerCase(), open && 'open', !sameDay(date, new Date()) && 'dated',
          String(entry.id) === state.anchor && 'anchor', entry.afterAnchor && 'after-anchor'],
        dataset: { id: entry.id },
      }, line);
      if (open) item.appendChild(detailNode(entry));
      return item;
    }

    /** A JSON log line's fields (an object's, in their order), or null for any other line. */
    function jsonFields(line) {
      const text = line.trim();
      if (text.charAt(0) !== '{' || text.charAt(text.length - 1) !== '}') return null;
      try {
        const value = JSON.parse(text);
        return value && typeof value === 'object' && !Array.isArray(value) ? value : null;
      } catch (_) {
        return null;
      }
    }

    /** A field's value as text: strings as they are, anything else as JSON. */
    const fieldText = (value) => (typeof value === 'string' ? value : JSON.stringify(value));

    /** The `msg`/`message` field of a JSON line, if it has one as text. */
    function jsonMessageKey(fields) {
      return ['msg', 'message'].find((k) => typeof fields[k] === 'string') || null;
    }

    /** Fields the row already shows in its own columns (level, time): no chip for them. */
    const SHOWN_IN_COLUMNS = ['level', 'lvl', 'severity', 'time', 'timestamp', 'ts', '@timestamp'];

    /** One line of a JSON entry: its message first, then the other fields as key=value chips
     *  (all of them, level and time included, in the expanded view and the raw line). */
    function jsonLine(fields) {
      const key = jsonMessageKey(fields);
      const chips = Object.keys(fields).filter((k) => k !== key && !SHOWN_IN_COLUMNS.includes(k)).map((k) => {
        let value = fieldText(fields[k]);
        if (value.length > 120) value = value.slice(0, 120) + '…';
        return el('span', { class: 'chip', title: k + '=' + fieldText(fields[k]) },
          el('span', { class: 'chip-key' }, k), '=', highlighted(value, highlight));
      });
      return [key ? el('span', { class: 'json-msg' }, highlighted(fields[key], highlight)) : null, chips];
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
        type: 'button', class: 'btn btn-sm btn-ghost context-button', title: 'This container\u2019s lines around this one: the ones before it, and the next few',
        onclick: () => update({
          containers: [entry.container], search: '', level: '', range: 'all', since: '', until: '', live: '',
          before: String(entry.id + 1), anchor: String(entry.id),
        }, { push: true }),
      }, 'Lines before this in ', el('span', { class: 'mono' }, entry.container));
      // A JSON line: its fields one per row, the raw line one click away.
      const fields = jsonFields(String(entry.message).split('\n')[0]);
      let structured = null;
      let raw = null;
      if (fields && !entry.truncated) {
        const key = jsonMessageKey(fields);
        const keys = (key ? [key] : []).concat(Object.keys(fields).filter((k) => k !== key));
        structured = el('dl', { class: 'json-fields' }, keys.map((k) => el('div', null,
          el('dt', { class: 'mono' }, k), el('dd', { class: 'mono' }, highlighted(fieldText(fields[k]), highlight)))));
        message.hidden = true;
        raw = el('button', {
          type: 'button', class: 'btn btn-sm btn-ghost raw-toggle', 'aria-pressed': 'false',
          onclick: () => {
            const showRaw = message.hidden;
            message.hidden = !showRaw;
            structured.hidden = showRaw;
            raw.setAttribute('aria-pressed', String(showRaw));
            raw.textContent = showRaw ? 'Fields' : 'Raw line';
          },
        }, 'Raw line');
      }
      return el('div', { class: 'log-detail' },
        note,
        structured,
        message,
        el('div', { class: 'detail-foot' },
          el('dl', { class: 'facts' },
            el('div', null, el('dt', null, 'ID'), el('dd', { class: 'mono d-id' }, '#' + entry.id)),
            el('div', null, el('dt', null, 'Stream'), el('dd', { class: 'mono d-stream' }, entry.stream)),
            el('div', null, el('dt', null, 'Container'), el('dd', { class: 'mono d-container' }, entry.container)),
            el('div', null, el('dt', null, 'Time'), el('dd', { class: 'd-time', title: entry.timestamp }, M.absoluteTime(entry.timestamp)))),
          el('div', { class: 'row tight detail-actions' }, raw, context, copy)));
    }

    /** The anchor's first line, quoted (once the list holds it). */
    function anchorLine() {
      const entry = rows.find((r) => String(r.id) === state.anchor);
      if (!entry) return null;
      let line = String(entry.message).split('\n')[0].replace(TIME_PREFIX, '');
      if (line.length > 90) line = line.slice(0, 90) + '…';
      return [': ', el('q', { class: 'mono anchor-line' }, line)];
    }

    /** "Lines before this": which entry the list is anchored at, and the way back. */
    function showAnchorBanner() {
      let banner = $('#anchor-banner');
      if (!state.anchor) {
        if (banner) banner.hidden = true;
        return;
      }
      if (!banner) {
        banner = el('div', { class: 'banner banner-info', id: 'anchor-banner', role: 'status' });
        $('#zoom-banner').after(banner);
      }
      const at = new Date(Math.floor(Number(state.anchor) / ID_PER_MS));
      const back = el('button', {
        type: 'button', class: 'btn btn-sm', id: 'anchor-back',
        onclick: () => {
          const target = anchorReturn || { containers: [], before: '', anchor: '' };
          update(Object.assign({}, target, { anchor: '', before: '' }), { push: true });
        },
      }, anchorReturn ? 'Back to the list' : 'Show all logs');
      fill(banner,
        el('span', { class: 'badge badge-accent plain' }, 'Around a line'),
        el('span', { class: 'grow', id: 'anchor-text' },
          'Lines of ', el('strong', { class: 'mono' }, state.containers.join(', ')), ' before ',
          el('strong', null, entryTime(at)), anchorLine(), ', and the next few'),
        back);
      banner.hidden = false;
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
      const shown = rows.filter((r) => !r.afterAnchor).length;
      const more = shown === PAGE_SIZE && (info.capped || info.total > shown);
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

    /** Volume by level, stacked bars in the level colours (logs.css: `.sw-*`); a click on a
     * bar zooms into its time range. The header's legend (with each level's count) is ours. */
    const histChart = Charts.create($('#histogram'), {
      mode: 'bar',
      label: 'Log volume by level',
      legend: false,
      empty: 'Loading…',
      format: M.formatCount,
      totalFormat: (n) => M.formatCount(n) + (n === 1 ? ' entry' : ' entries'),
      onSelect: (i, start, end) => zoomTo(start, end),
    });

    function renderHistogram() {
      const data = histData;
      if (!data) return;
      const buckets = data.buckets || [];
      // Bars have a round width and start on a multiple of it: the chart spans the bars.
      const barMs = Math.max(1, Math.round((data.bucket_seconds || 60) * 1000));
      const totals = {};
      for (const b of buckets) for (const [lvl, n] of Object.entries(b.by_level || {})) totals[lvl] = (totals[lvl] || 0) + n;

      fill($('#hist-legend'), STACK.slice().reverse().filter((lvl) => totals[lvl]).map((lvl) =>
        el('span', { class: 'legend-item', title: M.formatCount(totals[lvl]) + ' ' + lvl + ' entries' },
          el('span', { class: ['swatch', 'sw-' + lvl.toLowerCase()] }), lvl, ' ',
          el('span', { class: 'faint' }, M.formatCount(totals[lvl])))));
      $('#hist-range').textContent = spanText(new Date(Date.parse(data.since)), new Date(Date.parse(data.until))) + ' · ' +
        describeSpan(barMs) + ' per bar';

      histChart.set({
        x: buckets.map((b) => Date.parse(b.start)),
        step: barMs,
        // Without bars the axis spans the asked range.
        from: buckets.length ? undefined : Date.parse(data.since),
        to: buckets.length ? undefined : Date.parse(data.until),
        series: STACK.filter((lvl) => totals[lvl]).map((lvl) => ({
          name: lvl,
          cls: 'sw-' + lvl.toLowerCase(),
          values: buckets.map((b) => (b.by_level || {})[lvl] || 0),
        })),
        empty: 'No entries in this range',
      });
    }

    function zoomTo(start, end) {
      update({
        since: new Date(start).toISOString(), until: new Date(Math.max(end, start + 1)).toISOString(), live: '',
      }, { push: true });
    }

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
        api_key: key, level: state.level, search: state.search.trim(),
        since_id: sinceId === null || sinceId === undefined ? null : sinceId,
      };
      const es = new EventSource(withContainers('/api/logs/tail', query, state.containers));
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
        // The event id is the stream's cursor (the ingest order), not the entry id.
        lastEventId = event.lastEventId || lastEventId;
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
      // Entries arrive in the order they were stored; the list is in time order (ids sort as
      // time), so a late one (a traceback closed after later lines) goes where it belongs.
      const shown = new Set(rows.map((e) => e.id));
      const fresh = queue.filter((e) => !shown.has(e.id)).sort((a, b) => b.id - a.id);
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

      // Lines newer than the top one are the "new lines" above a reader.
      const onTop = rows.length ? fresh.filter((e) => e.id > rows[0].id).length : fresh.length;
      let index = 0;
      for (const entry of fresh) {
        while (index < rows.length && rows[index].id > entry.id) index++;
        const node = rowNode(entry);
        if (!reading) node.classList.add('fresh');
        list.insertBefore(node, list.children[index] || null);
        rows.splice(index, 0, entry);
        index++;
      }
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
      if (reading && onTop) {
        pendingPill += onTop;
        pill.textContent = '↑ ' + M.formatCount(pendingPill) + (pendingPill === 1 ? ' new line' : ' new lines');
        pill.hidden = false;
      }
      renderSummary();
      countInHistogram(fresh);
      scheduleHistogram();
    }

    /** Adds live entries to the histogram and its legend at once (the periodic reload then
     * replaces the counts with the server's). */
    function countInHistogram(entries) {
      const data = histData;
      if (!data || !data.buckets || !data.buckets.length) return;
      const barMs = Math.max(1, Math.round((data.bucket_seconds || 60) * 1000));
      const first = Date.parse(data.buckets[0].start);
      let added = false;
      for (const entry of entries) {
        const t = Date.parse(entry.timestamp);
        if (!(t >= first)) continue;
        let i = Math.floor((t - first) / barMs);
        // Past the last bar: new bars (at most a few; a reload follows within 5 s).
        while (i >= data.buckets.length && data.buckets.length < 500) {
          const start = first + data.buckets.length * barMs;
          data.buckets.push({ start: new Date(start).toISOString(), count: 0, by_level: {} });
        }
        i = Math.min(i, data.buckets.length - 1);
        const bar = data.buckets[i];
        bar.count += 1;
        bar.by_level = bar.by_level || {};
        bar.by_level[entry.level] = (bar.by_level[entry.level] || 0) + 1;
        if (t > Date.parse(data.until)) data.until = entry.timestamp;
        added = true;
      }
      if (added) renderHistogram();
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
    f.containerList.addEventListener('change', () => {
      const chosen = [...f.containerList.querySelectorAll('input[type=checkbox]:checked')].map((box) => box.value);
      update({ containers: chosen });
    });
    // The picker closes on a click elsewhere or Escape, as a select would.
    document.addEventListener('click', (event) => {
      if (f.container.open && !f.container.contains(event.target)) f.container.open = false;
    });
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && f.container.open) {
        f.container.open = false;
        $('summary', f.container).focus();
      }
    });
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
      writeState(state);
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
      state = cleanState(readState());
      anchorReturn = null;
      newerStack = [];
      showState();
      refresher.set(M.refreshMs(state.refresh));
      stopStream();
      load().then(() => {
        if (state.live) startStream(listInfo ? listInfo.cursor : null);
      });
    });
    M.focusOnSlash(f.search);

    writeState(state);
    showState();
    refresher.set(M.refreshMs(state.refresh));
    loadContainers();
    load().then(() => {
      if (state.live) startStream(listInfo ? listInfo.cursor : null);
    });
  }

  init();
})();
