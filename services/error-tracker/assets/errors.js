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
      // A control set away from its default looks it, so a narrowed view shows at a glance.
      for (const key of ['search', 'project', 'environment', 'source', 'resolved', 'range']) {
        f[key].classList.toggle('is-active', state[key] !== DEFAULTS[key]);
      }
      f.rangeCustom.classList.toggle('is-active', !preset);
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
      // A selection survives a refresh for the rows still listed.
      const listed = new Set(data.errors.map((g) => g.id));
      for (const selectedId of [...selected.keys()]) if (!listed.has(selectedId)) selected.delete(selectedId);
      const rows = data.errors.map(row);
      const all = el('input', {
        type: 'checkbox', id: 'select-all', 'aria-label': 'Select every error on this page',
        onchange: () => {
          for (const g of data.errors) {
            if (all.checked) selected.set(g.id, g.resolved);
            else selected.delete(g.id);
          }
          for (const box of content.querySelectorAll('input.row-select')) box.checked = all.checked;
          showSelection();
        },
      });
      all.checked = data.errors.every((g) => selected.has(g.id));
      const table = el('table', { class: 'table cards-on-phone errors-table', id: 'errors-table' },
        el('thead', null, el('tr', null,
          el('th', { class: 'c-select', scope: 'col' }, all),
          el('th', { class: 'c-error', scope: 'col' }, 'Error'),
          el('th', { scope: 'col' }, 'Project'),
          el('th', { scope: 'col' }, 'Env'),
          el('th', { scope: 'col' }, 'Source'),
          el('th', { class: 'c-trend', scope: 'col', title: 'Occurrences per hour, last 24 hours' }, '24 h'),
          el('th', { class: 'num', scope: 'col' }, 'Count'),
          el('th', { scope: 'col' }, 'First seen'),
          el('th', { scope: 'col' }, 'Last seen'))),
        el('tbody', null, rows));
      fill(content, el('div', { class: 'table-wrap' },
        el('div', { class: 'table-scroll' }, table), pager(data)));
      showSelection();
    }

    // ---- bulk resolve: the selected rows (id → resolved) and the bar acting on them

    const selected = new Map();
    const bulkBar = $('#bulk-bar');

    function showSelection() {
      bulkBar.hidden = selected.size === 0;
      $('#bulk-count').textContent = selected.size + ' selected';
      const states = [...selected.values()];
      $('#bulk-resolve').disabled = !states.includes(false);
      $('#bulk-reopen').disabled = !states.includes(true);
      const all = $('#select-all');
      if (all) {
        const boxes = [...content.querySelectorAll('input.row-select')];
        all.checked = boxes.length > 0 && boxes.every((b) => b.checked);
        all.indeterminate = !all.checked && boxes.some((b) => b.checked);
      }
    }

    /** Resolves or reopens the selected groups with one bulk call (≤ 200 ids, one page). */
    async function bulkUpdate(resolve) {
      const ids = [...selected.entries()].filter(([, resolved]) => resolved !== resolve).map(([gid]) => gid);
      if (ids.length === 0) return;
      for (const button of bulkBar.querySelectorAll('button')) button.disabled = true;
      try {
        const data = await M.api(resolve ? '/api/errors/resolve' : '/api/errors/unresolve', { method: 'POST', body: { ids } });
        const missing = data.results.filter((r) => r.status === 'not_found').length;
        const done = data.results.length - missing;
        M.toast((resolve ? 'Resolved ' : 'Reopened ') + done + (done === 1 ? ' error' : ' errors') +
          (missing ? ` (${missing} no longer exist)` : ''));
        selected.clear();
        await load();
      } catch (error) {
        M.toast('Could not update: ' + error.message, 'error');
      } finally {
        showSelection();
      }
    }

    function row(g) {
      const href = '/errors/' + encodeURIComponent(g.id);
      const open = (event) => {
        if (event.target instanceof Element && event.target.closest('a, button, input, label')) return;
        if (String(window.getSelection() || '') !== '') return; // the user is selecting text
        if (event.ctrlKey || event.metaKey || event.button === 1) window.open(href, '_blank', 'noopener');
        else window.location.href = href;
      };
      const box = el('input', {
        type: 'checkbox', class: 'row-select', 'aria-label': 'Select ' + g.exception_type + ' #' + g.id,
        checked: selected.has(g.id),
        onchange: () => {
          if (box.checked) selected.set(g.id, g.resolved);
          else selected.delete(g.id);
          showSelection();
        },
      });
      return el('tr', { class: ['clickable', g.resolved && 'is-resolved'], dataset: { id: g.id }, onclick: open },
        el('td', { class: 'c-select' }, el('label', { class: 'select-hit' }, box)),
        el('td', { class: 'c-error' },
          el('div', { class: 'err-head' },
            el('a', { class: 'err-type', href, title: g.exception_type }, g.exception_type),
            g.resolved && state.resolved !== 'true' ? el('span', { class: 'badge badge-ok plain' }, 'resolved') : null),
          g.message
            ? el('div', { class: 'err-message', title: g.message }, g.message)
            : el('div', { class: 'err-message faint' }, '(no message)')),
        el('td', { class: 'c-project' }, el('span', { class: 'tag', title: g.project }, g.project)),
        el('td', { class: 'c-env' }, el('span', { class: 'tag env', title: g.environment }, g.environment)),
        el('td', { class: 'c-source' }, sourceBadge(g.source)),
        el('td', { class: 'c-trend' }, sparkline(g.trend)),
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
    $('#bulk-resolve').addEventListener('click', () => bulkUpdate(true));
    $('#bulk-reopen').addEventListener('click', () => bulkUpdate(false));
    $('#bulk-clear').addEventListener('click', () => {
      selected.clear();
      for (const b of content.querySelectorAll('input.row-select')) b.checked = false;
      showSelection();
    });
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
        el('dl', { class: 'meta-grid detail-meta', id: 'meta' },
          metaItem('Occurrences', M.formatCount(g.count), 'big'),
          metaItem('First seen', timeWithAbsolute(g.first_seen)),
          metaItem('Last seen', timeWithAbsolute(g.last_seen)),
          metaItem('Project', el('span', { class: 'tag' }, g.project)),
          metaItem('Environment', el('span', { class: 'tag env' }, g.environment)),
          g.resolved ? metaItem('Resolved', timeWithAbsolute(g.resolved_at)) : null,
          metaItem('Fingerprint', el('span', { class: 'mono small nowrap', id: 'fingerprint', title: g.fingerprint }, g.fingerprint), 'fingerprint')),
        logsLinks(g)));

      const copy = el('button', {
        type: 'button', class: 'btn btn-sm btn-ghost',
        onclick: async () => M.toast((await M.copyText(g.traceback)) ? 'Traceback copied' : 'Copy failed', 'info'),
      }, M.icon('copy'), 'Copy');
      const structured = g.traceback ? tracebackView(g.traceback, 'trace-view') : null;
      const raw = g.traceback ? traceback(g.traceback, 'traceback') : null;
      if (raw) raw.hidden = true;
      const rawToggle = el('button', {
        type: 'button', class: 'btn btn-sm btn-ghost', id: 'raw-toggle', 'aria-pressed': 'false',
        onclick: () => {
          const showRaw = raw.hidden;
          raw.hidden = !showRaw;
          structured.hidden = showRaw;
          rawToggle.setAttribute('aria-pressed', String(showRaw));
        },
      }, 'Raw');
      const trace = el('section', { class: 'card' },
        el('div', { class: 'card-head' }, el('h2', null, 'Traceback'),
          g.traceback ? el('div', { class: 'row tight' }, rawToggle, copy) : null),
        el('div', { class: 'card-body' },
          g.traceback ? [structured, raw] : el('p', { class: 'faint' }, 'No traceback was reported.')));

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

      fill(content, head, meta, trace, trendCard(g), occ);
    }

    /** The trend card: reports per hour as bars, over 24 hours or 7 days. */
    function trendCard(g) {
      const body = el('div', { class: 'card-body' });
      const buttons = [['24h', '24 h'], ['7d', '7 d']].map(([range, label]) => el('button', {
        type: 'button', class: 'btn btn-sm', dataset: { range }, 'aria-pressed': String(range === '24h'),
        onclick: async (event) => {
          for (const b of buttons) b.setAttribute('aria-pressed', String(b === event.currentTarget));
          try {
            const data = await M.api('/api/errors/' + encodeURIComponent(id), { query: { trend: range } });
            fill(body, trendChart(data.trend, range));
          } catch (error) {
            M.toast('Could not load the trend: ' + error.message, 'error');
          }
        },
      }, label));
      fill(body, trendChart(g.trend || [], '24h'));
      return el('section', { class: 'card', id: 'trend' },
        el('div', { class: 'card-head' }, el('h2', null, 'Occurrences over time'),
          el('div', { class: 'row tight', role: 'group', 'aria-label': 'Trend range' }, buttons)),
        body);
    }

    load();
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';

  function svgEl(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    return node;
  }

  /** Local `HH:00` (with the day for a 7-day range). */
  function hourLabel(value, withDay) {
    const d = new Date(value);
    const hour = String(d.getHours()).padStart(2, '0') + ':00';
    return withDay ? d.toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric' }) + ' ' + hour : hour;
  }

  /** Bars of `points` ([{hour, count}], oldest first): an SVG drawn with DOM calls, an
   * hour's count in each bar's tooltip, the time axis as text under it. */
  function trendChart(points, range) {
    const total = points.reduce((sum, p) => sum + p.count, 0);
    const peak = points.reduce((most, p) => Math.max(most, p.count), 0);
    const max = Math.max(1, peak);
    const width = 720;
    const height = 96;
    const step = width / Math.max(1, points.length);
    const svg = svgEl('svg', {
      class: 'trend-svg', viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none',
      role: 'img', 'aria-label': `${total} occurrences in the last ${range === '7d' ? '7 days' : '24 hours'}`,
    });
    points.forEach((p, i) => {
      const h = p.count ? Math.max(2, (p.count / max) * (height - 4)) : 1;
      const bar = svgEl('rect', {
        class: p.count ? 'bar' : 'bar empty', x: (i * step + step * 0.12).toFixed(2), width: (step * 0.76).toFixed(2),
        y: (height - h).toFixed(2), height: h.toFixed(2), 'data-count': p.count,
      });
      const title = svgEl('title');
      const end = new Date(Date.parse(p.hour) + 3600000);
      title.textContent = `${hourLabel(p.hour, range === '7d')}–${hourLabel(end, false)}: ${p.count} ${p.count === 1 ? 'occurrence' : 'occurrences'}`;
      bar.appendChild(title);
      svg.appendChild(bar);
    });
    const first = points[0];
    const middle = points[Math.floor(points.length / 2)];
    return el('div', { class: 'trend', id: 'trend-chart', dataset: { total, range } },
      el('div', { class: 'trend-summary' },
        el('strong', null, M.formatCount(total)), ` in the last ${range === '7d' ? '7 days' : '24 hours'}`,
        el('span', { class: 'faint' }, ` · at most ${M.formatCount(peak)} in an hour`)),
      svg,
      first ? el('div', { class: 'trend-axis faint small' },
        el('span', null, hourLabel(first.hour, range === '7d')),
        el('span', null, hourLabel(middle.hour, range === '7d')),
        el('span', null, 'now')) : null);
  }

  /** A 24-bar sparkline of a list item's compact trend (counts per hour, oldest first). */
  function sparkline(counts) {
    const values = Array.isArray(counts) ? counts : [];
    const total = values.reduce((sum, n) => sum + n, 0);
    const max = Math.max(1, ...values);
    const svg = svgEl('svg', { class: 'spark', viewBox: `0 0 ${values.length * 3} 20`, preserveAspectRatio: 'none', 'aria-hidden': 'true' });
    values.forEach((n, i) => {
      const h = n ? Math.max(2, (n / max) * 19) : 1;
      svg.appendChild(svgEl('rect', { class: n ? 'bar' : 'bar empty', x: i * 3, width: 2, y: (20 - h).toFixed(2), height: h.toFixed(2) }));
    });
    return el('span', { class: 'spark-wrap', title: `${total} in the last 24 hours`, dataset: { total } }, svg);
  }

  /** `t` (ms) as RFC 3339 UTC to the second. */
  const rfc3339 = (t) => new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');

  /** The log viewer on the 10 minutes around `at`, on the project's containers when known:
   * `<logs-ui>/?since=…&until=…&container=…`; null when no log viewer is configured. */
  function logsAround(at, containers) {
    const t = Date.parse(at);
    if (Number.isNaN(t)) return null;
    const since = rfc3339(Math.floor((t - 5 * 60000) / 1000) * 1000);
    const until = rfc3339(Math.ceil((t + 5 * 60000) / 1000) * 1000);
    const names = (containers || []).map((c) => '&container=' + encodeURIComponent(c)).join('');
    return M.uiLink('logs', '/?since=' + since + '&until=' + until + names);
  }

  function logsLinks(g) {
    const last = logsAround(g.last_seen, g.log_containers);
    const first = logsAround(g.first_seen, g.log_containers);
    if (!last) return null;
    const scope = (g.log_containers || []).length
      ? 'containers ' + g.log_containers.join(', ')
      : 'all containers (set PROJECT_CONTAINERS to narrow it)';
    return el('div', { class: 'logs-links' },
      el('span', { class: 'faint' }, 'Logs around this time:'),
      el('a', { href: last, id: 'logs-last', dataset: { passKey: '' }, title: '10 minutes around the last occurrence, ' + scope }, 'last occurrence →'),
      g.count > 1 && first ? el('a', { href: first, id: 'logs-first', dataset: { passKey: '' }, title: '10 minutes around the first occurrence, ' + scope }, 'first occurrence →') : null);
  }

  function metaItem(label, value, cls) {
    return el('div', { class: cls && 'meta-' + cls }, el('dt', null, label), el('dd', { class: cls }, value));
  }

  function timeWithAbsolute(value) {
    if (!value) return el('span', { class: 'faint' }, '—');
    // The local time to the second; its zone in the tooltip keeps the stats on one row.
    const absolute = M.absoluteTime(value);
    return el('span', { class: 'time-pair' }, M.timeEl(value),
      el('span', { class: 'faint small block', title: absolute }, absolute.replace(/ \(UTC.*\)$/, '')));
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
      if (PY_FRAME.test(line) || JS_FRAME.test(line)) cls = 'frame';
      else if (/^(Traceback \(most recent call last\)|During handling of the above|The above exception)/.test(line)) cls = 'note';
      else if (python && /^\s{4,}\S/.test(line)) cls = 'src';
      if (i === lastIndex && python) cls = 'exc';
      if (i === 0 && !python && cls === null) cls = 'exc';
      return el('span', { class: cls }, line + '\n');
    });
    return el('pre', { class: 'code trace', id }, nodes);
  }

  // ---- tracebacks that lead with the cause

  const PY_FRAME = /^\s*File ".*", line \d+/;
  const JS_FRAME = /^\s+at\s|^[^\s@]*@\S+:\d+:\d+\s*$/;
  /** Frames of code that is not the application's: installed packages and runtimes. */
  const LIBRARY_FRAME = /site-packages|dist-packages|node_modules|<frozen [^>]*>|node:internal/;
  /** Python's chain separators → how the earlier exception relates to the later one. */
  const PY_CHAIN = {
    'The above exception was the direct cause of the following exception:': 'cause',
    'During handling of the above exception, another exception occurred:': 'context',
  };
  const JS_CAUSE = /^\s*(?:Caused by:|\[cause\]:)\s*(.*)$/;

  const trimBlank = (lines) => {
    let a = 0;
    let b = lines.length;
    while (a < b && lines[a].trim() === '') a++;
    while (b > a && lines[b - 1].trim() === '') b--;
    return lines.slice(a, b);
  };

  /** One Python traceback (no chain): its frames (a location line and its source lines),
   * then the exception line(s). */
  function pythonSection(lines) {
    const section = { before: [], frames: [], exception: [], after: [] };
    let frame = null;
    for (const line of trimBlank(lines)) {
      if (PY_FRAME.test(line)) {
        frame = { lines: [line], library: LIBRARY_FRAME.test(line) };
        section.frames.push(frame);
      } else if (frame && section.exception.length === 0 && /^\s{2,}\S/.test(line)) {
        frame.lines.push(line);
      } else if (frame) {
        section.exception.push(line);
      } else if (!/^Traceback \(most recent call last\):/.test(line)) {
        section.before.push(line);
      }
    }
    // Most recent call first: the frame that raised sits right under the exception line.
    section.frames.reverse();
    return section;
  }

  /** One JavaScript stack: what precedes the message (Node's source excerpt), the message,
   * its frames, and what follows (Node's error properties, version line). */
  function jsSection(lines) {
    const all = trimBlank(lines);
    const section = { before: [], frames: [], exception: [], after: [] };
    const first = all.findIndex((line) => JS_FRAME.test(line));
    if (first < 0) {
      section.exception = all;
      return section;
    }
    let start = first;
    while (start > 0 && all[start - 1].trim() !== '') start--;
    section.before = trimBlank(all.slice(0, start));
    section.exception = all.slice(start, first);
    let i = first;
    let properties = [];
    for (; i < all.length && JS_FRAME.test(all[i]); i++) {
      // Node prints an error's own properties after its last frame: `at main (...) {`.
      const line = all[i].replace(/\s\{$/, '');
      section.frames.push({ lines: [line], library: LIBRARY_FRAME.test(line) });
      if (line !== all[i]) {
        properties = ['{'];
        i++;
        break;
      }
    }
    section.after = trimBlank(properties.concat(all.slice(i)));
    return section;
  }

  /**
   * A traceback as sections to show, the exception that was raised last first; each has
   * `label` (how it relates to the one shown above it), `exception` lines and `frames`.
   * Python chains ("During handling…", "The above exception was the direct cause…") and
   * JavaScript causes (`Caused by:`, Node's `[cause]:`) make one section each.
   */
  function parseTraceback(text) {
    const lines = text.replace(/\r\n?/g, '\n').split('\n');
    const python = lines.some((line) => PY_FRAME.test(line));
    const sections = [];
    if (python) {
      let chunk = [];
      let link = null;
      for (const line of lines) {
        const relation = PY_CHAIN[line.trim()];
        if (relation) {
          sections.push(Object.assign(pythonSection(chunk), { link }));
          chunk = [];
          link = relation;
        } else {
          chunk.push(line);
        }
      }
      sections.push(Object.assign(pythonSection(chunk), { link }));
      // Python prints the first exception first; show the last one (the one raised) first.
      const shown = sections.reverse();
      for (let i = 0; i < shown.length; i++) {
        const next = shown[i - 1];
        shown[i].label = !next ? null : next.link === 'cause'
          ? { text: 'Caused by', title: 'The above exception was the direct cause of the following exception' }
          : { text: 'Raised while handling', title: 'During handling of the above exception, another exception occurred' };
      }
      return { python, sections: shown };
    }
    let chunk = [];
    let label = null;
    for (const line of lines) {
      const cause = JS_CAUSE.exec(line);
      if (cause && chunk.some((l) => JS_FRAME.test(l))) {
        sections.push(Object.assign(jsSection(chunk), { label }));
        chunk = [cause[1]];
        label = { text: 'Caused by', title: line.trim() };
      } else {
        chunk.push(line);
      }
    }
    sections.push(Object.assign(jsSection(chunk), { label }));
    return { python, sections };
  }

  function frameNode(frame) {
    const [location, ...source] = frame.lines;
    return el('li', { class: ['tb-frame', frame.library && 'is-library'] },
      el('div', { class: 'tb-loc' }, location.trim()),
      source.map((line) => el('div', { class: /^\s*[~^]+\s*$/.test(line) ? 'tb-src tb-caret' : 'tb-src' },
        line.replace(/^ {4}/, ''))));
  }

  /** Frames in order, each run of library frames folded into one "N library frames" row. */
  function frameList(frames) {
    const items = [];
    for (let i = 0; i < frames.length;) {
      if (!frames[i].library) {
        items.push(frameNode(frames[i]));
        i++;
        continue;
      }
      let j = i;
      while (j < frames.length && frames[j].library) j++;
      const run = frames.slice(i, j);
      const inner = el('ol', { class: 'tb-frames tb-lib-frames', hidden: true }, run.map(frameNode));
      const toggle = el('button', {
        type: 'button', class: 'tb-lib-toggle', 'aria-expanded': 'false',
        onclick: () => {
          const open = toggle.getAttribute('aria-expanded') !== 'true';
          toggle.setAttribute('aria-expanded', String(open));
          inner.hidden = !open;
        },
      }, run.length + (run.length === 1 ? ' library frame' : ' library frames'));
      items.push(el('li', { class: 'tb-lib' }, toggle, inner));
      i = j;
    }
    return el('ol', { class: 'tb-frames' }, items);
  }

  /** The structured view: per section its exception line first, then the frames. */
  function tracebackView(text, id) {
    const parsed = parseTraceback(text);
    const sections = parsed.sections.map((section) => el('section', { class: 'tb-section' },
      section.label ? el('div', { class: 'tb-chain', title: section.label.title }, section.label.text) : null,
      section.exception.length
        ? el('div', { class: 'tb-exc' }, section.exception.join('\n'))
        : null,
      section.before.length ? el('div', { class: 'tb-extra' }, section.before.join('\n')) : null,
      section.frames.length
        ? [el('div', { class: 'tb-order faint small' }, parsed.python ? 'Most recent call first' : 'Call stack'),
            frameList(section.frames)]
        : null,
      section.after.length ? el('div', { class: 'tb-extra' }, section.after.join('\n')) : null,
));
    return el('div', { class: 'tb', id }, sections);
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
      sections.push(disclosure('Traceback of this occurrence', tracebackView(o.traceback), false));
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
