/* error-tracker web UI: the list (`/`) and the detail page (`/errors/{id}`).
 * Builds on window.Monlight (monlight.js). Every value from the API goes in as text. */
(function () {
  'use strict';

  const M = window.Monlight;
  const { el, fill, $ } = M;

  /** The last list URL (with its filters), for the detail page's back link. */
  const LIST_URL_KEY = 'monlight.errors.list';
  const PAGE_SIZE = 50;

  function rememberListUrl(url) {
    try {
      window.sessionStorage.setItem(LIST_URL_KEY, url);
    } catch (_) {
      // no storage: the back link goes to the plain list
    }
  }

  function listUrl() {
    try {
      const url = window.sessionStorage.getItem(LIST_URL_KEY);
      if (url && url.charAt(0) === '/' && url.charAt(1) !== '/') return url;
    } catch (_) {
      // ignore
    }
    return '/';
  }

  function setBusy(busy) {
    const bar = $('#loading-bar');
    if (bar) bar.classList.toggle('active', busy);
  }

  function sourceBadge(source) {
    return source === 'browser'
      ? el('span', { class: 'badge badge-violet' }, 'browser')
      : el('span', { class: 'badge badge-info' }, 'server');
  }

  function statusBadge(resolved, attrs) {
    return resolved
      ? el('span', Object.assign({ class: 'badge badge-ok' }, attrs), 'Resolved')
      : el('span', Object.assign({ class: 'badge badge-danger' }, attrs), 'Unresolved');
  }

  // ================================================================ list

  const DEFAULTS = {
    project: '', environment: '', source: '', resolved: 'false', search: '', range: 'all',
    sort: 'last_seen', session_id: '', page: '1', refresh: 'off',
  };
  const RANGE_PRESETS = ['all', '1h', '24h', '7d', '30d'];
  /** Keys that narrow the result (the "Reset" link and the phone's filter count). */
  const FILTER_KEYS = ['project', 'environment', 'source', 'resolved', 'search', 'range', 'session_id'];

  function cleanState(raw) {
    const s = Object.assign({}, raw);
    if (!['false', 'true', 'all'].includes(s.resolved)) s.resolved = DEFAULTS.resolved;
    if (!['', 'browser', 'server'].includes(s.source)) s.source = DEFAULTS.source;
    if (!['last_seen', 'first_seen', 'count'].includes(s.sort)) s.sort = DEFAULTS.sort;
    if (!/^[1-9]\d{0,6}$/.test(s.page)) s.page = '1';
    if (s.range !== 'all' && M.parseDuration(s.range) === null) s.range = 'all';
    if (!M.REFRESH_CHOICES.some((c) => c[0] === s.refresh)) s.refresh = 'off';
    return s;
  }

  function initList() {
    let state = cleanState(M.readUrlState(DEFAULTS));
    const f = {
      search: $('#f-search'), project: $('#f-project'), environment: $('#f-environment'),
      source: $('#f-source'), resolved: $('#f-resolved'), range: $('#f-range'),
      rangeCustom: $('#f-range-custom'), sort: $('#f-sort'), refresh: $('#f-refresh'),
    };
    const content = $('#content');
    const errorBanner = $('#error-banner');
    const summary = $('#summary');
    let sequence = 0;
    let controller = null;
    let lastLoaded = null;
    let hasRendered = false;

    const refresher = M.autoRefresh(() => load());

    function ensureOption(select, value, label) {
      if (value === '' || [...select.options].some((o) => o.value === value)) return;
      select.appendChild(el('option', { value }, label || value));
    }

    /** The form shows `state`. */
    function showState() {
      f.search.value = state.search;
      ensureOption(f.project, state.project);
      f.project.value = state.project;
      ensureOption(f.environment, state.environment);
      f.environment.value = state.environment;
      f.source.value = state.source;
      f.resolved.value = state.resolved;
      const preset = RANGE_PRESETS.includes(state.range);
      f.range.value = preset ? state.range : 'custom';
      f.rangeCustom.hidden = preset;
      if (!preset) f.rangeCustom.value = state.range;
      f.rangeCustom.classList.remove('invalid');
      f.sort.value = state.sort;
      f.refresh.value = state.refresh;
      const active = FILTER_KEYS.filter((k) => k !== 'session_id' && state[k] !== DEFAULTS[k]).length;
      $('#reset-filters').hidden = active === 0 && !state.session_id;
      $('#reset-filters').setAttribute('href', '/');
      const count = $('#filters-count');
      count.hidden = active === 0;
      count.textContent = String(active);

      const banner = $('#session-banner');
      banner.hidden = !state.session_id;
      if (state.session_id) {
        $('#session-id').textContent = state.session_id;
        const rest = Object.assign({}, state, { session_id: '', page: '1' });
        $('#session-clear').setAttribute('href', '/' + M.stateQuery(rest, DEFAULTS));
      }
    }

    /** Applies a change of filters: URL, form, reload. */
    function update(changes, options) {
      state = cleanState(Object.assign({}, state, changes));
      const url = M.writeUrlState(state, DEFAULTS, options);
      rememberListUrl(url);
      showState();
      load();
    }

    async function loadFilterOptions() {
      try {
        const [projects, environments] = await Promise.all([
          M.api('/api/projects'), M.api('/api/environments'),
        ]);
        fillSelect(f.project, 'All projects', projects.projects || [], state.project);
        fillSelect(f.environment, 'All environments', environments.environments || [], state.environment);
      } catch (_) {
        // the list shows the error; the selects keep what they have
      }
    }

    function fillSelect(select, allLabel, values, current) {
      fill(select, el('option', { value: '' }, allLabel), values.map((v) => el('option', { value: v }, v)));
      ensureOption(select, current);
      select.value = current;
    }

    async function load() {
      const mine = ++sequence;
      if (controller) controller.abort();
      controller = new AbortController();
      setBusy(true);
      $('#refresh').classList.add('busy');
      if (!hasRendered) fill(content, M.stateBox({ spinner: true, text: 'Loading errors…' }));
      const page = Number(state.page);
      const params = {
        project: state.project, environment: state.environment, source: state.source,
        resolved: state.resolved, search: state.search.trim(), session_id: state.session_id,
        sort: state.sort, since: M.sinceFor(state.range), limit: PAGE_SIZE, offset: (page - 1) * PAGE_SIZE,
      };
      try {
        const data = await M.api('/api/errors', { query: params, signal: controller.signal });
        if (mine !== sequence) return;
        const lastPage = Math.max(1, Math.ceil(data.total / PAGE_SIZE));
        if (data.errors.length === 0 && data.total > 0 && page > lastPage) {
          // Past the end (groups were resolved meanwhile): show the last page instead.
          update({ page: String(lastPage) });
          return;
        }
        errorBanner.hidden = true;
        lastLoaded = new Date();
        renderList(data);
        hasRendered = true;
      } catch (error) {
        if ((error && error.name === 'AbortError') || mine !== sequence) return;
        renderLoadError(error);
      } finally {
        if (mine === sequence) {
          setBusy(false);
          $('#refresh').classList.remove('busy');
          refresher.reset();
        }
      }
    }

    function renderLoadError(error) {
      const retry = el('button', { type: 'button', class: 'btn btn-sm', onclick: () => load() }, 'Retry');
      if (hasRendered) {
        fill(errorBanner, M.icon('alert'), el('span', { class: 'grow' }, 'Could not refresh: ', error.message), retry);
        errorBanner.hidden = false;
      } else {
        fill(content, M.stateBox({
          kind: 'error', symbol: '!', title: 'Could not load errors', text: error.message, action: retry,
        }));
      }
      summary.textContent = 'Could not load errors';
    }

    function describeScope() {
      if (state.resolved === 'true') return 'resolved';
      if (state.resolved === 'all') return '';
      return 'unresolved';
    }

    function renderList(data) {
      const scope = describeScope();
      const groups = data.total === 1 ? 'error group' : 'error groups';
      fill(summary, M.formatCount(data.total) + ' ' + (scope ? scope + ' ' : '') + groups,
        el('span', { class: 'faint' }, ' · updated '), M.timeEl(lastLoaded, { class: 'faint' }));
      document.title = (state.resolved === 'false' && data.total > 0 ? '(' + data.total + ') ' : '') + 'Errors · Monlight';

      if (data.errors.length === 0) {
        fill(content, emptyState());
        return;
      }
      const rows = data.errors.map(row);
      const table = el('table', { class: 'table cards-on-phone errors-table', id: 'errors-table' },
        el('thead', null, el('tr', null,
          el('th', { class: 'c-error', scope: 'col' }, 'Error'),
          el('th', { scope: 'col' }, 'Project'),
          el('th', { scope: 'col' }, 'Env'),
          el('th', { scope: 'col' }, 'Source'),
          el('th', { class: 'num', scope: 'col' }, 'Count'),
          el('th', { scope: 'col' }, 'First seen'),
          el('th', { scope: 'col' }, 'Last seen'))),
        el('tbody', null, rows));
      fill(content, el('div', { class: 'table-wrap' },
        el('div', { class: 'table-scroll' }, table), pager(data)));
    }

    function row(g) {
      const href = '/errors/' + encodeURIComponent(g.id);
      const open = (event) => {
        if (event.target instanceof Element && event.target.closest('a, button')) return;
        if (String(window.getSelection() || '') !== '') return; // the user is selecting text
        if (event.ctrlKey || event.metaKey || event.button === 1) window.open(href, '_blank', 'noopener');
        else window.location.href = href;
      };
      return el('tr', { class: ['clickable', g.resolved && 'is-resolved'], dataset: { id: g.id }, onclick: open },
        el('td', { class: 'c-error' },
          el('div', { class: 'err-head' },
            el('a', { class: 'err-type', href }, g.exception_type),
            g.resolved && state.resolved !== 'true' ? el('span', { class: 'badge badge-ok plain' }, 'resolved') : null),
          g.message
            ? el('div', { class: 'err-message', title: g.message }, g.message)
            : el('div', { class: 'err-message faint' }, '(no message)')),
        el('td', { class: 'c-project' }, el('span', { class: 'tag', title: g.project }, g.project)),
        el('td', { class: 'c-env' }, el('span', { class: 'tag env', title: g.environment }, g.environment)),
        el('td', { class: 'c-source' }, sourceBadge(g.source)),
        el('td', { class: 'c-count num', title: g.count + ' occurrences' }, M.formatCount(g.count)),
        el('td', { class: 'c-first nowrap muted' }, M.timeEl(g.first_seen)),
        el('td', { class: 'c-last nowrap' }, M.timeEl(g.last_seen)));
    }

    function pager(data) {
      const page = Number(state.page);
      const lastPage = Math.max(1, Math.ceil(data.total / PAGE_SIZE));
      const first = data.offset + 1;
      const last = data.offset + data.errors.length;
      const go = (p) => () => {
        update({ page: String(p) }, { push: true });
        window.scrollTo({ top: 0 });
      };
      return el('div', { class: 'table-foot' },
        el('span', { id: 'range-info' },
          'Showing ', el('strong', null, M.formatCount(first) + '–' + M.formatCount(last)),
          ' of ', el('strong', null, M.formatCount(data.total))),
        el('div', { class: 'pager' },
          el('button', { type: 'button', class: 'btn btn-sm', id: 'prev-page', disabled: page <= 1, onclick: go(page - 1) },
            M.icon('back'), 'Prev'),
          el('span', { class: 'page-info', id: 'page-info' }, 'Page ' + page + ' of ' + lastPage),
          el('button', { type: 'button', class: 'btn btn-sm', id: 'next-page', disabled: page >= lastPage, onclick: go(page + 1) },
            'Next', M.icon('next'))));
    }

    function emptyState() {
      const filtered = FILTER_KEYS.some((k) => k !== 'resolved' && state[k] !== DEFAULTS[k]);
      if (!filtered && state.resolved === 'false') {
        return el('div', { class: 'table-wrap' }, M.stateBox({
          kind: 'ok', symbol: '✓', title: 'No unresolved errors',
          text: 'Nothing is failing right now (or nothing has reported yet).',
          action: el('a', { href: '/?resolved=all' }, 'Show resolved errors too'),
        }));
      }
      return el('div', { class: 'table-wrap' }, M.stateBox({
        symbol: '∅', title: 'No errors match these filters',
        text: 'Try a longer time range, another status or fewer filters.',
        action: el('a', { class: 'btn btn-sm', href: '/' }, 'Reset filters'),
      }));
    }

    // ---- wiring

    const searchChanged = M.debounce(() => update({ search: f.search.value, page: '1' }), 300);
    f.search.addEventListener('input', searchChanged);
    f.search.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        searchChanged.cancel();
        update({ search: f.search.value, page: '1' });
      } else if (event.key === 'Escape' && f.search.value) {
        f.search.value = '';
        searchChanged.cancel();
        update({ search: '', page: '1' });
      }
    });
    for (const key of ['project', 'environment', 'source', 'resolved', 'sort']) {
      f[key].addEventListener('change', () => update({ [key]: f[key].value, page: '1' }));
    }
    f.range.addEventListener('change', () => {
      if (f.range.value === 'custom') {
        f.rangeCustom.hidden = false;
        f.rangeCustom.focus();
        if (M.parseDuration(f.rangeCustom.value) !== null) update({ range: f.rangeCustom.value.trim(), page: '1' });
      } else {
        update({ range: f.range.value, page: '1' });
      }
    });
    const customChanged = () => {
      const value = f.rangeCustom.value.trim();
      const valid = M.parseDuration(value) !== null;
      f.rangeCustom.classList.toggle('invalid', !valid && value !== '');
      if (valid && value !== state.range) update({ range: value, page: '1' });
    };
    f.rangeCustom.addEventListener('input', M.debounce(customChanged, 500));
    f.rangeCustom.addEventListener('change', customChanged);
    f.refresh.addEventListener('change', () => {
      state.refresh = f.refresh.value;
      rememberListUrl(M.writeUrlState(state, DEFAULTS));
      refresher.set(M.refreshMs(state.refresh));
    });
    $('#refresh').addEventListener('click', () => {
      loadFilterOptions();
      load();
    });
    $('#filters').addEventListener('submit', (event) => event.preventDefault());
    $('#filters-toggle').addEventListener('click', () => {
      const form = $('#filters');
      const open = !form.classList.contains('open');
      form.classList.toggle('open', open);
      $('#filters-toggle').setAttribute('aria-expanded', String(open));
    });
    // The session banner's link and Reset stay on this page: apply them without a reload.
    for (const link of [$('#session-clear'), $('#reset-filters')]) {
      link.addEventListener('click', (event) => {
        event.preventDefault();
        const target = new URL(link.href, window.location.href);
        const next = Object.assign({}, DEFAULTS, { refresh: state.refresh });
        for (const key of Object.keys(DEFAULTS)) {
          if (target.searchParams.has(key)) next[key] = target.searchParams.get(key);
        }
        state = cleanState(next);
        update({}, { push: true });
      });
    }
    window.addEventListener('popstate', () => {
      state = cleanState(M.readUrlState(DEFAULTS));
      rememberListUrl(window.location.pathname + window.location.search);
      showState();
      refresher.set(M.refreshMs(state.refresh));
      load();
    });
    M.focusOnSlash(f.search);

    rememberListUrl(M.writeUrlState(state, DEFAULTS));
    showState();
    refresher.set(M.refreshMs(state.refresh));
    loadFilterOptions();
    load();
  }

  // ================================================================ detail

  function initDetail() {
    const raw = window.location.pathname.split('/').filter(Boolean)[1] || '';
    let id = raw;
    try {
      id = decodeURIComponent(raw);
    } catch (_) {
      // a malformed escape: ask for it as it is, the API answers 404
    }
    const content = $('#content');
    const back = $('#back-link');
    back.setAttribute('href', listUrl());
    let group = null;

    async function load() {
      setBusy(true);
      try {
        group = await M.api('/api/errors/' + encodeURIComponent(id));
        render(group);
      } catch (error) {
        if (error.status === 404) {
          fill(content, el('div', { class: 'card' }, M.stateBox({
            symbol: '?', title: 'Error not found',
            text: 'No error group #' + id + ' (it may have been deleted by retention).',
            action: el('a', { class: 'btn btn-sm', href: listUrl() }, 'Back to the list'),
          })));
          document.title = 'Not found · Monlight';
        } else {
          fill(content, el('div', { class: 'card' }, M.stateBox({
            kind: 'error', symbol: '!', title: 'Could not load this error', text: error.message,
            action: el('button', { type: 'button', class: 'btn btn-sm', onclick: () => load() }, 'Retry'),
          })));
        }
      } finally {
        setBusy(false);
      }
    }

    async function toggleResolved(button) {
      const wasResolved = group.resolved;
      button.disabled = true;
      button.classList.add('busy');
      try {
        await M.api('/api/errors/' + encodeURIComponent(id) + (wasResolved ? '/unresolve' : '/resolve'), { method: 'POST' });
        await load();
        M.toast(wasResolved ? 'Reopened' : 'Marked as resolved');
      } catch (error) {
        M.toast('Could not update: ' + error.message, 'error');
        button.disabled = false;
        button.classList.remove('busy');
      }
    }

    function render(g) {
      document.title = g.exception_type + ' · Errors · Monlight';
      const resolveButton = el('button', {
        type: 'button', id: 'resolve-button',
        class: ['btn', g.resolved ? '' : 'btn-success'],
        onclick: (event) => toggleResolved(event.currentTarget),
      }, M.icon(g.resolved ? 'reopen' : 'check'), g.resolved ? 'Reopen' : 'Resolve');

      const head = el('section', { class: 'detail-head' },
        el('div', { class: 'detail-title' },
          el('div', { class: 'row tight' },
            statusBadge(g.resolved, { id: 'status-badge', class: g.resolved ? 'badge badge-ok badge-lg' : 'badge badge-danger badge-lg' }),
            sourceBadge(g.source),
            el('span', { class: 'faint mono' }, '#' + g.id)),
          el('h1', { class: 'err-title', id: 'err-type' }, g.exception_type),
          g.message
            ? el('p', { class: 'err-full-message', id: 'err-message' }, g.message)
            : el('p', { class: 'err-full-message faint', id: 'err-message' }, '(no message)')),
        el('div', { class: 'detail-actions' }, resolveButton));

      const meta = el('section', { class: 'card' }, el('div', { class: 'card-body' },
        el('dl', { class: 'meta-grid' },
          metaItem('Occurrences', M.formatCount(g.count), 'big'),
          metaItem('First seen', timeWithAbsolute(g.first_seen)),
          metaItem('Last seen', timeWithAbsolute(g.last_seen)),
          metaItem('Project', el('span', { class: 'tag' }, g.project)),
          metaItem('Environment', el('span', { class: 'tag env' }, g.environment)),
          g.resolved ? metaItem('Resolved', timeWithAbsolute(g.resolved_at)) : null,
          metaItem('Fingerprint', el('span', { class: 'mono small break' }, g.fingerprint)))));

      const copy = el('button', {
        type: 'button', class: 'btn btn-sm btn-ghost',
        onclick: async () => M.toast((await M.copyText(g.traceback)) ? 'Traceback copied' : 'Copy failed', 'info'),
      }, M.icon('copy'), 'Copy');
      const trace = el('section', { class: 'card' },
        el('div', { class: 'card-head' }, el('h2', null, 'Traceback'), g.traceback ? copy : null),
        el('div', { class: 'card-body' },
          g.traceback ? traceback(g.traceback, 'traceback') : el('p', { class: 'faint' }, 'No traceback was reported.')));

      const occurrences = g.occurrences || [];
      const occ = el('section', { class: 'card', id: 'occurrences' },
        el('div', { class: 'card-head' },
          el('h2', null, 'Recent occurrences',
            el('span', { class: 'count' }, occurrences.length < g.count
              ? occurrences.length + ' latest of ' + M.formatCount(g.count)
              : String(occurrences.length)))),
        occurrences.length
          ? el('ol', { class: 'occurrences' }, occurrences.map((o, i) => occurrence(o, i, g)))
          : el('div', { class: 'card-body faint' }, 'No occurrences kept.'));

      fill(content, head, meta, trace, occ);
    }

    load();
  }

  function metaItem(label, value, cls) {
    return el('div', null, el('dt', null, label), el('dd', { class: cls }, value));
  }

  function timeWithAbsolute(value) {
    if (!value) return el('span', { class: 'faint' }, '—');
    return el('span', { class: 'time-pair' }, M.timeEl(value),
      el('span', { class: 'faint small block' }, M.absoluteTime(value)));
  }

  /** A traceback as lines of text; frame lines and the final exception line get classes. */
  function traceback(text, id) {
    const lines = text.replace(/\s+$/, '').split('\n');
    let lastIndex = -1;
    for (let i = lines.length - 1; i >= 0; i--) {
      if (lines[i].trim() !== '') {
        lastIndex = i;
        break;
      }
    }
    const python = /^\s*File "/.test(text) || /\n\s*File "/.test(text);
    const nodes = lines.map((line, i) => {
      let cls = null;
      if (/^\s*File ".*", line \d+/.test(line) || /^\s+at\s/.test(line) || /^[^\s@]*@\S+:\d+:\d+\s*$/.test(line)) cls = 'frame';
      else if (/^(Traceback \(most recent call last\)|During handling of the above|The above exception)/.test(line)) cls = 'note';
      else if (python && /^\s{4,}\S/.test(line)) cls = 'src';
      if (i === lastIndex && python) cls = 'exc';
      if (i === 0 && !python && cls === null) cls = 'exc';
      return el('span', { class: cls }, line + '\n');
    });
    return el('pre', { class: 'code trace', id }, nodes);
  }

  function isObjectWithKeys(value) {
    return value !== null && typeof value === 'object' && Object.keys(value).length > 0;
  }

  function occurrence(o, index, group) {
    const extra = o.extra !== null && typeof o.extra === 'object' && !Array.isArray(o.extra) ? o.extra : {};
    const browser = o.request_method === 'BROWSER';
    const methodBadge = browser
      ? el('span', { class: 'badge badge-violet plain' }, 'BROWSER')
      : o.request_method ? el('span', { class: 'badge badge-outline plain mono' }, o.request_method) : null;

    const facts = [];
    const fact = (label, value) => facts.push(el('dt', null, label), el('dd', null, value));
    if (o.user_id) fact('User', el('span', { class: 'mono' }, o.user_id));
    if (browser) {
      if (typeof extra.page_url === 'string' && extra.page_url) {
        fact('Page', /^https?:\/\//i.test(extra.page_url)
          ? el('a', { href: extra.page_url, rel: 'noopener noreferrer nofollow', target: '_blank', class: 'break' }, extra.page_url)
          : el('span', { class: 'break' }, extra.page_url));
      }
      if (typeof extra.user_agent === 'string' && extra.user_agent) fact('User agent', el('span', { class: 'muted break' }, extra.user_agent));
      if (typeof extra.release === 'string' && extra.release) fact('Release', el('span', { class: 'mono' }, extra.release));
      if (typeof extra.session_id === 'string' && extra.session_id) {
        const href = '/?session_id=' + encodeURIComponent(extra.session_id) + '&resolved=all';
        fact('Session', el('span', { class: 'row tight' },
          el('code', { class: 'break' }, extra.session_id),
          el('a', { class: 'session-link', href }, 'All errors in this session →')));
      }
    }

    const sections = [];
    if (isObjectWithKeys(o.request_headers)) {
      sections.push(disclosure('Request headers', el('pre', { class: 'code wrap' }, M.pretty(o.request_headers)), false));
    }
    if (o.extra !== null && o.extra !== undefined && !(typeof o.extra === 'object' && !isObjectWithKeys(o.extra))) {
      sections.push(disclosure('Extra context', el('pre', { class: 'code wrap' }, M.pretty(o.extra)), index === 0));
    }
    if (o.traceback && o.traceback !== group.traceback) {
      sections.push(disclosure('Traceback of this occurrence', traceback(o.traceback), false));
    }

    return el('li', { class: 'occurrence' },
      el('div', { class: 'occ-head' },
        el('div', { class: 'occ-request' },
          methodBadge,
          o.request_url
            ? el('span', { class: 'occ-url mono break' }, o.request_url)
            : el('span', { class: 'faint' }, browser ? 'browser error' : 'no request')),
        el('span', { class: 'occ-time nowrap' }, M.timeEl(o.timestamp),
          el('span', { class: 'faint small hide-phone' }, ' · ' + M.absoluteTime(o.timestamp)))),
      facts.length ? el('dl', { class: 'kv occ-facts' }, facts) : null,
      sections);
  }

  function disclosure(title, body, open) {
    return el('details', { class: 'disclosure', open: open || null },
      el('summary', null, title), el('div', { class: 'disclosure-body' }, body));
  }

  const page = document.body.dataset.page;
  if (page === 'list') initList();
  else if (page === 'detail') initDetail();
})();
