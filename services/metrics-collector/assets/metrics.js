/* metrics-collector web UI (`/`): summary cards, the metric explorer (any metric, optionally
 * one line per value of a label; sum, count, average, last value, or the percentiles of a
 * histogram), Web Vitals when browsers report them (p75 per vital, a trend, a table per page),
 * and the top metrics. Project, period, explorer and auto-refresh are mirrored in the URL.
 * Builds on window.Monlight (monlight.js) and window.MonlightCharts (charts.js); every value
 * from the API goes in as text. */
(function () {
  'use strict';

  const M = window.Monlight;
  const Charts = window.MonlightCharts;
  const { el, fill, $ } = M;

  const PERIODS = ['1h', '6h', '24h', '7d', '30d'];
  const PERIOD_LABELS = {
    '1h': 'the last hour', '6h': 'the last 6 hours', '24h': 'the last 24 hours', '7d': 'the last 7 days', '30d': 'the last 30 days',
  };
  /** The URL parameters. `metric`, `group`, `view`: the explorer; `vital`: the vitals trend. */
  const DEFAULTS = { project: '', period: '24h', metric: '', group: '', view: '', vital: 'lcp', refresh: 'off' };
  /** What the explorer can draw per metric type, the first being the default. */
  const VIEWS = {
    counter: [['sum', 'Sum per bucket'], ['count', 'Datapoints'], ['avg', 'Average']],
    gauge: [['last', 'Last value'], ['avg', 'Average'], ['min', 'Minimum'], ['max', 'Maximum']],
    histogram: [['pct', 'Percentiles'], ['p50', 'Median (p50)'], ['p95', 'p95'], ['p99', 'p99'], ['avg', 'Average'], ['count', 'Datapoints']],
  };
  const PERCENTILES = ['p50', 'p75', 'p90', 'p95', 'p99'];
  /** Lines drawn at most when grouping (the busiest label values). */
  const MAX_SERIES = 12;

  /** web.dev's thresholds on the 75th percentile: good ≤ `good`, poor > `poor`. */
  const VITALS = {
    lcp: { label: 'LCP', title: 'Largest Contentful Paint', good: 2500, poor: 4000, ms: true },
    inp: { label: 'INP', title: 'Interaction to Next Paint', good: 200, poor: 500, ms: true },
    cls: { label: 'CLS', title: 'Cumulative Layout Shift', good: 0.1, poor: 0.25, ms: false },
    fcp: { label: 'FCP', title: 'First Contentful Paint', good: 1800, poor: 3000, ms: true },
    ttfb: { label: 'TTFB', title: 'Time to First Byte', good: 800, poor: 1800, ms: true },
  };
  const TREND_VITALS = ['lcp', 'inp', 'cls'];
  const RATING_LABELS = { good: 'Good', 'needs-improvement': 'Needs improvement', poor: 'Poor', unknown: 'No data' };

  // ================================================================ helpers

  const isNumber = (v) => typeof v === 'number' && Number.isFinite(v);

  /** A value in a table or read-out: four significant digits, thousands separated. */
  function formatValue(v) {
    if (!isNumber(v)) return '—';
    const rounded = Math.abs(v) >= 1000 ? Math.round(v) : Number(v.toPrecision(4));
    return rounded.toLocaleString('en-US', { maximumFractionDigits: 6 });
  }

  /** The rating of a vital's value by web.dev's thresholds (what the by-page table shows). */
  function rating(vital, value) {
    const t = VITALS[vital];
    if (!t || !isNumber(value)) return 'unknown';
    if (value <= t.good) return 'good';
    if (value <= t.poor) return 'needs-improvement';
    return 'poor';
  }

  /** `1.24 s`, `180 ms`, `0.12`. */
  function formatVital(vital, value) {
    if (!isNumber(value)) return '—';
    if (!VITALS[vital].ms) return value < 1 ? value.toFixed(value < 0.01 && value > 0 ? 3 : 2) : value.toFixed(2);
    if (value >= 1000) return (value / 1000).toFixed(value >= 10000 ? 1 : 2) + ' s';
    return Math.round(value) + ' ms';
  }

  const knownRating = (r) => (Object.prototype.hasOwnProperty.call(RATING_LABELS, r) ? r : 'unknown');

  function ratingBadge(r) {
    return el('span', { class: ['rating-badge', 'rating-' + r] }, RATING_LABELS[r]);
  }

  function typeBadge(type) {
    const cls = { counter: 'badge-info', histogram: 'badge-violet', gauge: 'badge-ok' }[type] || 'badge-outline';
    return el('span', { class: ['badge', 'plain', cls] }, String(type || '?'));
  }

  function cleanState(raw) {
    const s = Object.assign({}, raw);
    if (!PERIODS.includes(s.period)) s.period = DEFAULTS.period;
    s.metric = String(s.metric || '').slice(0, 200);
    s.group = s.metric ? String(s.group || '').slice(0, 100) : '';
    if (!/^(sum|count|avg|last|min|max|pct|p50|p95|p99)$/.test(s.view)) s.view = '';
    if (!TREND_VITALS.includes(s.vital)) s.vital = DEFAULTS.vital;
    if (!M.REFRESH_CHOICES.some((c) => c[0] === s.refresh)) s.refresh = 'off';
    return s;
  }

  // ================================================================ the page

  function init() {
    let state = cleanState(M.readUrlState(DEFAULTS));
    const f = {
      project: $('#f-project'), period: $('#f-period'), refresh: $('#f-refresh'),
      metric: $('#x-metric'), group: $('#x-group'), view: $('#x-view'),
    };
    const errorBanner = $('#error-banner');
    const summary = $('#summary');
    const explorerChart = Charts.create($('#x-chart'), { label: 'Metric explorer', format: formatValue, empty: 'No datapoints in this period' });
    const vitalsChart = Charts.create($('#vitals-chart'), { label: 'Web Vitals trend (p75)', empty: 'No vitals in this period' });

    /** Metric name → type, from /api/metrics/names and the explorer's answers. */
    const types = new Map();
    /** Metric name → its label keys (seen in an ungrouped answer), for "Group by". */
    const labelKeys = new Map();
    /** The metric the explorer shows when the URL names none: the busiest one. */
    let autoMetric = '';
    let dashboard = null;
    let busy = 0;
    const sequences = { dashboard: 0, explorer: 0 };
    const controllers = {};
    const refresher = M.autoRefresh(() => loadAll());

    const metric = () => state.metric || autoMetric;
    const periodMs = () => M.parseDuration(state.period);

    function setBusy(delta) {
      busy += delta;
      $('#loading-bar').classList.toggle('active', busy > 0);
      $('#refresh').classList.toggle('busy', busy > 0);
    }

    /** Runs `request(signal)` as the latest of its `kind`: an older one still running is
     * aborted and a stale answer is dropped (resolves with undefined). */
    async function latest(kind, request) {
      const mine = ++sequences[kind];
      if (controllers[kind]) controllers[kind].abort();
      controllers[kind] = new AbortController();
      setBusy(1);
      try {
        const result = await request(controllers[kind].signal);
        return mine === sequences[kind] ? { result } : undefined;
      } catch (error) {
        if ((error && error.name === 'AbortError') || mine !== sequences[kind]) return undefined;
        return { error };
      } finally {
        setBusy(-1);
      }
    }

    function ensureOption(select, value, label) {
      if (value === '' || [...select.options].some((o) => o.value === value)) return;
      select.appendChild(el('option', { value }, label || value));
    }

    /** The form and the explorer's controls show `state`. */
    function showState() {
      ensureOption(f.project, state.project);
      f.project.value = state.project;
      f.project.classList.toggle('is-active', state.project !== '');
      f.period.value = state.period;
      f.refresh.value = state.refresh;
      ensureOption(f.metric, metric());
      f.metric.value = metric();
      showGroupOptions();
      showViewOptions();
      for (const button of document.querySelectorAll('#vital-tabs [data-vital]')) {
        button.setAttribute('aria-pressed', String(button.dataset.vital === state.vital));
      }
    }

    function showGroupOptions() {
      const keys = new Set(labelKeys.get(metric()) || []);
      if (state.group) keys.add(state.group);
      fill(f.group, el('option', { value: '' }, 'No grouping'),
        [...keys].sort().map((key) => el('option', { value: key }, key)));
      f.group.value = state.group;
      f.group.disabled = !metric();
    }

    /** The views of the metric's type; the URL's view if it is one of them. */
    function views() {
      return VIEWS[types.get(metric())] || VIEWS.counter;
    }

    function currentView() {
      const list = views();
      if (list.some(([v]) => v === state.view)) return state.view;
      // Grouped percentiles would be five lines per group: a histogram grouped shows p95.
      const type = types.get(metric());
      return type === 'histogram' && state.group ? 'p95' : list[0][0];
    }

    function showViewOptions() {
      fill(f.view, views().map(([value, label]) =>
        el('option', { value }, value === 'pct' && state.group ? label + ' (all groups)' : label)));
      f.view.value = currentView();
      f.view.disabled = !metric();
    }

    /** Applies a change: URL (pushed for the explorer's choices), controls, reloads. */
    function update(changes, options) {
      const before = state;
      state = cleanState(Object.assign({}, state, changes));
      M.writeUrlState(state, DEFAULTS, options);
      showState();
      const scopeChanged = before.project !== state.project || before.period !== state.period;
      if (scopeChanged) {
        loadAll();
      } else if (before.vital !== state.vital) {
        renderVitalsTrend();
      } else {
        loadExplorer();
      }
    }

    // ------------------------------------------------------------ loading

    function loadAll() {
      loadProjects();
      loadHealth();
      return Promise.all([loadNames(), loadDashboard(), loadExplorer()]);
    }

    async function loadProjects() {
      try {
        const data = await M.api('/api/metrics/projects');
        fill(f.project, el('option', { value: '' }, 'All projects'),
          (data.projects || []).map((p) => el('option', { value: p }, p)));
        ensureOption(f.project, state.project);
        f.project.value = state.project;
      } catch (_) {
        // the dashboard shows the error; the select keeps what it has
      }
    }

    async function loadNames() {
      try {
        const data = await M.api('/api/metrics/names', { query: { project: state.project } });
        const metrics = (data.metrics || []).slice().sort((a, b) => String(a.name).localeCompare(String(b.name)));
        for (const m of metrics) types.set(m.name, m.type);
        const groups = ['counter', 'histogram', 'gauge'].map((type) => {
          const items = metrics.filter((m) => m.type === type);
          return items.length ? el('optgroup', { label: type[0].toUpperCase() + type.slice(1) + 's' },
            items.map((m) => el('option', { value: m.name }, m.name))) : null;
        });
        fill(f.metric, el('option', { value: '' }, metrics.length ? 'Choose a metric…' : 'No metrics yet'), groups);
        showState();
      } catch (_) {
        // as above
      }
    }

    /** `/health` needs no key: the status card. */
    async function loadHealth() {
      const status = $('#stat-status');
      const note = $('#stat-aggregation');
      try {
        const response = await fetch('health', { cache: 'no-store' });
        const health = await response.json();
        const ok = response.ok && health.status === 'ok';
        fill(status, el('span', { class: ['badge', 'badge-lg', ok ? 'badge-ok' : 'badge-danger'] }, ok ? 'Healthy' : String(health.status || response.status)));
        fill(note, M.formatCount(health.metrics_received_24h || 0), ' received in 24 h · rolled up ',
          health.last_aggregation ? M.timeEl(health.last_aggregation) : 'not yet');
      } catch (error) {
        fill(status, el('span', { class: ['badge', 'badge-lg', 'badge-danger'] }, 'Unreachable'));
        fill(note, error.message);
      }
    }

    async function loadDashboard() {
      const answer = await latest('dashboard', (signal) =>
        M.api('/api/dashboard', { query: { period: state.period, project: state.project }, signal }));
      if (!answer) return;
      if (answer.error) {
        showError(answer.error);
        return;
      }
      errorBanner.hidden = true;
      dashboard = answer.result;
      renderSummary();
      renderTop();
      renderVitals();
      refresher.reset();
      // Without a metric in the URL the explorer shows the busiest one (none: nothing).
      const top = (dashboard.top_metrics || [])[0];
      const busiest = top ? top.name : '';
      if (!state.metric && autoMetric !== busiest) {
        autoMetric = busiest;
        if (top) types.set(top.name, top.type);
        showState();
        loadExplorer();
      }
    }

    function showError(error) {
      const retry = el('button', { type: 'button', class: 'btn btn-sm', onclick: () => loadAll() }, 'Retry');
      fill(errorBanner, M.icon('alert'), el('span', { class: 'grow' }, 'Could not load the dashboard: ', error.message), retry);
      errorBanner.hidden = false;
      summary.textContent = 'Could not load the dashboard';
    }

    // ------------------------------------------------------------ summary and top metrics

    function renderSummary() {
      const s = dashboard.summary || {};
      $('#stat-datapoints').textContent = M.formatCount(s.total_datapoints || 0);
      $('#stat-period').textContent = 'in ' + PERIOD_LABELS[state.period];
      $('#stat-metrics').textContent = M.formatCount(s.distinct_metrics || 0);
      fill(summary, el('strong', null, M.formatCount(s.total_datapoints || 0)), ' datapoints in ', PERIOD_LABELS[state.period],
        state.project ? ' · project ' : '', state.project ? el('span', { class: 'mono' }, state.project) : null,
        el('span', { class: 'faint' }, ' · updated '), M.timeEl(new Date(), { class: 'faint' }));
    }

    function renderTop() {
      const host = $('#top-content');
      const top = dashboard.top_metrics || [];
      if (!top.length) {
        fill(host, M.stateBox({ symbol: '∅', title: 'No metrics in this period', text: 'Send points to POST /api/metrics; they show here within a minute.' }));
        return;
      }
      const rows = top.map((m) => el('tr', { class: 'clickable', dataset: { metric: m.name }, onclick: () => explore(m.name) },
        el('td', { class: 'c-name', 'data-label': '' },
          el('button', { type: 'button', class: 'link-button mono break', title: 'Show in the explorer' }, m.name)),
        el('td', { class: 'c-type' }, typeBadge(m.type)),
        el('td', { class: 'num', 'data-label': 'Datapoints' }, M.formatCount(m.count)),
        el('td', { class: 'num', 'data-label': 'Total' }, formatValue(m.total))));
      fill(host, el('div', { class: 'table-scroll' }, el('table', { class: 'table cards-on-phone', id: 'top-table' },
        el('thead', null, el('tr', null, el('th', { scope: 'col' }, 'Metric'), el('th', { scope: 'col' }, 'Type'),
          el('th', { scope: 'col', class: 'num' }, 'Datapoints'), el('th', { scope: 'col', class: 'num', title: 'Sum of the values' }, 'Total'))),
        el('tbody', null, rows))));
    }

    function explore(name) {
      update({ metric: name, group: '', view: '' }, { push: true });
      const card = $('#explorer');
      const header = $('.app-header').getBoundingClientRect().height;
      window.scrollTo({ top: card.getBoundingClientRect().top + window.scrollY - header - 8, behavior: 'smooth' });
    }

    // ------------------------------------------------------------ the explorer

    async function loadExplorer() {
      const name = metric();
      const info = $('#x-info');
      if (!name) {
        info.textContent = '';
        explorerChart.set({ x: [], series: [], empty: 'Choose a metric to chart it' });
        return;
      }
      const query = { name, period: state.period, project: state.project, resolution: 'auto' };
      const group = state.group;
      const answer = await latest('explorer', (signal) => {
        const requests = [M.api('/api/metrics', { query: Object.assign({ group_by: group }, query), signal })];
        // Grouped answers carry only the group's label: ask once for every label key.
        if (group && !labelKeys.has(name)) requests.push(M.api('/api/metrics', { query, signal }));
        return Promise.all(requests);
      });
      if (!answer) return;
      if (answer.error) {
        info.textContent = '';
        explorerChart.set({ x: [], series: [], empty: 'Could not load ' + name + ': ' + answer.error.message });
        return;
      }
      const [data, ungrouped] = answer.result;
      if (data.type) types.set(name, data.type);
      const keysFrom = ungrouped || (group ? null : data);
      if (keysFrom) {
        const keys = new Set();
        for (const s of keysFrom.series || []) for (const key of Object.keys(s.labels || {})) keys.add(key);
        labelKeys.set(name, [...keys]);
      }
      showGroupOptions();
      showViewOptions();
      renderExplorer(data);
    }

    function renderExplorer(data) {
      const view = currentView();
      const step = data.resolution === 'hour' ? 3600000 : 60000;
      const to = Date.now();
      const frame = { step, from: to - periodMs(), to, empty: 'No datapoints for this metric in ' + PERIOD_LABELS[state.period] };
      const merged = data.data || [];
      let chart;
      let note = '';
      if (view === 'pct') {
        chart = {
          x: merged.map((d) => Date.parse(d.bucket)),
          series: PERCENTILES.map((p) => ({ name: p, values: merged.map((d) => d[p]) })),
        };
      } else if (state.group) {
        const all = (data.series || []).map((s) => ({
          name: labelValue(s.labels, state.group),
          points: new Map((s.data || []).map((d) => [Date.parse(d.bucket), d[view]])),
          weight: (s.data || []).reduce((sum, d) => sum + (d.count || 0), 0),
        }));
        const shown = all.sort((a, b) => b.weight - a.weight).slice(0, MAX_SERIES);
        if (all.length > shown.length) note = ' · the ' + MAX_SERIES + ' busiest of ' + all.length + ' values';
        const x = [...new Set(shown.flatMap((s) => [...s.points.keys()]))].sort((a, b) => a - b);
        chart = {
          x,
          series: shown.map((s) => ({ name: s.name, values: x.map((t) => (s.points.has(t) ? s.points.get(t) : null)) })),
        };
      } else {
        const label = (views().find(([v]) => v === view) || [view, view])[1];
        chart = { x: merged.map((d) => Date.parse(d.bucket)), series: [{ name: label, values: merged.map((d) => d[view]) }] };
      }
      const type = types.get(metric()) || data.type || '';
      fill($('#x-info'), type ? typeBadge(type) : null, ' per ' + (data.resolution || 'minute') + note);
      explorerChart.set(Object.assign(frame, chart));
    }

    /** A series' name when grouping: the label's value (a label it lacks shows as such). */
    function labelValue(labels, key) {
      const value = labels ? labels[key] : undefined;
      return value === undefined || value === null || value === '' ? '(no ' + key + ')' : String(value);
    }

    // ------------------------------------------------------------ web vitals

    function renderVitals() {
      const vitals = dashboard.web_vitals;
      const section = $('#vitals');
      section.hidden = !vitals;
      if (!vitals) return;
      const summaries = vitals.summary || {};
      fill($('#vital-cards'), Object.keys(VITALS).map((key) => {
        const v = summaries[key] || {};
        const r = knownRating(v.rating);
        return el('div', { class: ['vital', 'rating-' + r], id: 'vital-' + key, dataset: { rating: r }, title: VITALS[key].title },
          el('div', { class: 'vital-head' }, el('abbr', { class: 'vital-name', title: VITALS[key].title }, VITALS[key].label), ratingBadge(r)),
          el('div', { class: 'vital-value' }, formatVital(key, v.p75)),
          el('div', { class: 'vital-note' }, isNumber(v.count) && v.count > 0
            ? 'avg ' + formatVital(key, v.avg) + ' · ' + M.formatCount(v.count) + (v.count === 1 ? ' sample' : ' samples')
            : 'no samples'));
      }));
      renderVitalsTrend();
      renderVitalPages(vitals.by_page || []);
    }

    function renderVitalsTrend() {
      const vitals = dashboard && dashboard.web_vitals;
      if (!vitals) return;
      const key = state.vital;
      const points = vitals.timeseries || [];
      const t = VITALS[key];
      const to = Date.now();
      vitalsChart.set({
        x: points.map((p) => Date.parse(p.bucket)),
        series: [{ name: t.label + ' p75', values: points.map((p) => p[key]), cls: 'mc-s0' }],
        from: to - periodMs(), to,
        rules: [
          { value: t.good, label: 'good ≤ ' + formatVital(key, t.good), cls: 'good' },
          { value: t.poor, label: 'poor > ' + formatVital(key, t.poor), cls: 'poor' },
        ],
        format: (v) => formatVital(key, v),
        axisFormat: (v) => (t.ms && v >= 1000 ? Charts.compact(v / 1000) + ' s' : t.ms ? v + ' ms' : Charts.compact(v)),
      });
    }

    function renderVitalPages(pages) {
      const host = $('#vitals-pages');
      if (!pages.length) {
        fill(host, el('p', { class: 'faint' }, 'No page views with vitals in this period.'));
        return;
      }
      const cell = (key, value) => {
        const r = rating(key, value);
        return el('td', { class: ['num', 'vital-cell', 'rating-' + r], dataset: { rating: r, vital: key }, 'data-label': VITALS[key].label },
          formatVital(key, value));
      };
      fill(host, el('table', { class: 'table cards-on-phone', id: 'vitals-table' },
        el('thead', null, el('tr', null, el('th', { scope: 'col' }, 'Page'),
          TREND_VITALS.map((key) => el('th', { scope: 'col', class: 'num', title: VITALS[key].title + ', p75' }, VITALS[key].label)),
          el('th', { scope: 'col', class: 'num' }, 'Page views'))),
        el('tbody', null, pages.map((p) => el('tr', null,
          el('td', { class: 'c-page mono break' }, String(p.page)),
          TREND_VITALS.map((key) => cell(key, p[key])),
          el('td', { class: 'num', 'data-label': 'Page views' }, M.formatCount(p.page_views)))))));
    }

    // ------------------------------------------------------------ events

    f.project.addEventListener('change', () => update({ project: f.project.value }));
    f.period.addEventListener('change', () => update({ period: f.period.value }));
    f.metric.addEventListener('change', () => update({ metric: f.metric.value, group: '', view: '' }, { push: true }));
    f.group.addEventListener('change', () => update({ metric: metric(), group: f.group.value, view: '' }, { push: true }));
    f.view.addEventListener('change', () => update({ metric: metric(), view: f.view.value }, { push: true }));
    f.refresh.addEventListener('change', () => {
      state.refresh = f.refresh.value;
      M.writeUrlState(state, DEFAULTS);
      refresher.set(M.refreshMs(state.refresh));
    });
    for (const button of document.querySelectorAll('#vital-tabs [data-vital]')) {
      button.addEventListener('click', () => update({ vital: button.dataset.vital }));
    }
    $('#refresh').addEventListener('click', () => loadAll());
    $('#filters').addEventListener('submit', (event) => event.preventDefault());
    window.addEventListener('popstate', () => {
      state = cleanState(M.readUrlState(DEFAULTS));
      showState();
      refresher.set(M.refreshMs(state.refresh));
      loadAll();
    });

    M.writeUrlState(state, DEFAULTS);
    showState();
    refresher.set(M.refreshMs(state.refresh));
    loadAll();
  }

  init();
})();
