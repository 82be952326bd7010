/* Monlight — the charts shared by the Monlight web UIs: time series as lines or stacked bars,
 * drawn as SVG with no dependency. Everything lives on `window.MonlightCharts`.
 *
 *   const chart = MonlightCharts.create(host, { mode: 'line', format: (v) => v + ' ms' });
 *   chart.set({ x: [ms, ...], series: [{ name: 'GET /', values: [1.5, null, ...] }], step: 60000 });
 *
 * `x` holds bucket starts in milliseconds (ascending), each series one value per bucket; a
 * null value is a gap, and so is a distance between two buckets of more than 1.5 × `step`
 * (sparse data), so a line never bridges time without data. Bars are stacked in series
 * order, bottom up, each `step` wide. Hovering shows a cursor and a read-out of every series
 * at the nearest bucket; the legend (two or more series) hides and shows a series on click.
 * The chart redraws when its container changes size. Colours come from monlight.css
 * (`--chart-1` … `--chart-8` through the classes `mc-s0` … `mc-s7`); a series may bring its
 * own `cls` or `color`. `rules` ([{value, label, cls}]) draws horizontal reference lines
 * (thresholds). Names and values go into the page as text only.
 *
 * What it does not do: zooming, panning, a second y axis, log scales, animation.
 */
(function () {
  'use strict';

  const SVG_NS = 'http://www.w3.org/2000/svg';
  const PALETTE_SIZE = 8;
  const SECOND = 1000;
  const MINUTE = 60 * SECOND;
  const HOUR = 60 * MINUTE;
  const DAY = 24 * HOUR;
  const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  /** Round distances between x ticks, smallest first. */
  const TIME_STEPS = [1, 2, 5, 10, 15, 30].map((s) => s * SECOND)
    .concat([1, 2, 5, 10, 15, 30].map((m) => m * MINUTE))
    .concat([1, 2, 3, 6, 12].map((h) => h * HOUR))
    .concat([1, 2, 7, 14, 30].map((d) => d * DAY));
  const MARGIN = { top: 8, right: 8, bottom: 22, left: 44 };

  // ------------------------------------------------------------------ DOM

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(name, String(value));
    }
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function html(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  // ------------------------------------------------------------------ numbers and times

  const short = (v) => String(Number(v.toPrecision(3)));

  /** 1234 → "1.23k", 2500000 → "2.5M", 0.051 → "0.051"; anything but a number → "—". */
  function compact(value) {
    if (typeof value !== 'number' || !Number.isFinite(value)) return '—';
    const a = Math.abs(value);
    for (const [limit, suffix] of [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']]) {
      if (a >= limit) return short(value / limit) + suffix;
    }
    return short(value);
  }

  /** Round grid values covering [min, max]: steps of 1, 2, 2.5 or 5 × 10ⁿ, about `count`;
   * whole steps only when `integers` (counts). */
  function niceTicks(min, max, count, integers) {
    const raw = (max - min) / Math.max(1, count);
    const pow = Math.pow(10, Math.floor(Math.log10(raw)));
    const nice = [1, 2, 2.5, 5, 10].map((f) => f * pow).find((s) => s >= raw && (!integers || Number.isInteger(s)));
    const step = integers ? Math.max(1, nice || Math.ceil(raw)) : nice;
    const ticks = [];
    for (let v = Math.floor(min / step) * step; v < max + step * 0.999; v += step) {
      ticks.push(Number(v.toPrecision(12)));
    }
    return ticks;
  }

  const pad = (n) => String(n).padStart(2, '0');
  const dayLabel = (d) => MONTHS[d.getMonth()] + ' ' + d.getDate();
  const sameDay = (a, b) => a.toDateString() === b.toDateString();

  /** An x tick's label: a day for day steps, seconds for sub-minute steps, else HH:MM — and
   * the day at midnight when the chart spans several days. */
  function tickLabel(t, step, severalDays) {
    const d = new Date(t);
    if (step >= DAY) return dayLabel(d);
    const hm = pad(d.getHours()) + ':' + pad(d.getMinutes());
    if (step < MINUTE) return hm + ':' + pad(d.getSeconds());
    if (severalDays && d.getHours() === 0 && d.getMinutes() === 0) return dayLabel(d);
    return hm;
  }

  /** The read-out's time: `Dec 1 17:05` (seconds for sub-minute buckets). */
  function pointLabel(t, step) {
    const d = new Date(t);
    const seconds = step && step < MINUTE ? ':' + pad(d.getSeconds()) : '';
    const time = pad(d.getHours()) + ':' + pad(d.getMinutes()) + seconds;
    return step >= DAY ? dayLabel(d) : dayLabel(d) + ' ' + time;
  }

  /** Tick times between `from` and `to` at a round step (local hours and days). */
  function timeTicks(from, to, maxTicks) {
    const span = Math.max(1, to - from);
    const step = TIME_STEPS.find((s) => span / s <= maxTicks) || TIME_STEPS[TIME_STEPS.length - 1];
    // Hours and days start at local midnight, not UTC's.
    const zone = step >= HOUR ? -new Date(from).getTimezoneOffset() * MINUTE : 0;
    const ticks = [];
    for (let t = Math.ceil((from + zone) / step) * step - zone; t <= to; t += step) ticks.push(t);
    return { step, ticks };
  }

  /** The index in sorted `xs` nearest to `t`. */
  function nearest(xs, t) {
    let lo = 0;
    let hi = xs.length - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (xs[mid] <= t) lo = mid;
      else hi = mid;
    }
    return Math.abs(xs[hi] - t) < Math.abs(xs[lo] - t) ? hi : lo;
  }

  /** The smallest distance between neighbouring buckets (the step when none is given). */
  function guessStep(xs) {
    let step = Infinity;
    for (let i = 1; i < xs.length; i++) step = Math.min(step, xs[i] - xs[i - 1]);
    return Number.isFinite(step) && step > 0 ? step : MINUTE;
  }

  // ------------------------------------------------------------------ the chart

  /**
   * A chart in `host` (its content is replaced). Options: `mode` 'line' (default) or 'bar'
   * (stacked); `format(value)` for the read-out (default `compact`); `axisFormat(value)` for
   * the y axis (default `compact`); `totalFormat(value)` for the read-out's total of a
   * stack (default `format`); `label` for screen readers; `empty` the text shown without
   * data; `legend` true to show it for one series, false to leave it out (the page draws its
   * own); `onSelect(index, from, to)` when a bar with a value is clicked. Returns
   * `{set(data), redraw(), destroy(), element}`. `set` takes `{x, series, step, from, to,
   * rules}` and may override `empty`, `format` and `axisFormat` for that data.
   */
  function create(host, options) {
    const opts = Object.assign({ mode: 'line', format: compact, axisFormat: compact, empty: 'No data' }, options || {});
    const root = html('div', 'mchart' + (opts.mode === 'bar' ? ' mchart-bars' : ''));
    const plot = html('div', 'mchart-plot');
    const tip = html('div', 'mchart-tip');
    tip.hidden = true;
    const legend = html('div', 'mchart-legend');
    root.append(plot, legend);
    plot.appendChild(tip);
    host.replaceChildren(root);

    const hidden = new Set();
    let data = { x: [], series: [] };
    let geometry = null;
    let lastSize = '';

    function set(next) {
      data = Object.assign({ x: [], series: [] }, next);
      drawLegend();
      draw();
    }

    function visible() {
      return data.series.map((s, i) => Object.assign({ index: i }, s)).filter((s) => !hidden.has(s.name));
    }

    /** A series' class: its own, none when it brings its `color`, else the palette's by
     * position (a class's colour would override the `color` attribute). */
    const seriesClass = (s) => s.cls || (s.color ? '' : 'mc-s' + (s.index % PALETTE_SIZE));

    function drawLegend() {
      legend.replaceChildren();
      legend.hidden = opts.legend === false || (data.series.length < 2 && !opts.legend);
      if (legend.hidden) return;
      data.series.forEach((s, index) => {
        const swatch = html('span', 'mchart-swatch ' + seriesClass(Object.assign({ index }, s)));
        if (s.color) swatch.style.background = s.color;
        const button = html('button', 'mchart-key');
        button.type = 'button';
        button.dataset.series = s.name;
        button.setAttribute('aria-pressed', String(!hidden.has(s.name)));
        button.title = 'Show or hide this series';
        button.append(swatch, html('span', 'mchart-key-name', s.name));
        button.addEventListener('click', () => {
          if (hidden.has(s.name)) hidden.delete(s.name);
          else hidden.add(s.name);
          button.setAttribute('aria-pressed', String(!hidden.has(s.name)));
          draw();
        });
        legend.appendChild(button);
      });
    }

    /** The y range: from 0 (or below, for negative values) to the largest value or stack. */
    function yRange(series) {
      let min = 0;
      let max = -Infinity;
      const integers = series.every((s) => s.values.every((v) => v === null || v === undefined || Number.isInteger(v)));
      if (opts.mode === 'bar') {
        data.x.forEach((_, i) => {
          max = Math.max(max, series.reduce((sum, s) => sum + (s.values[i] || 0), 0));
        });
      } else {
        for (const s of series) {
          for (const v of s.values) {
            if (typeof v === 'number' && Number.isFinite(v)) {
              min = Math.min(min, v);
              max = Math.max(max, v);
            }
          }
        }
      }
      // Reference lines stay in view when they are near the data (within twice its top).
      for (const rule of data.rules || []) {
        if (rule.value <= Math.max(max, 0) * 2 || max === -Infinity) max = Math.max(max, rule.value);
      }
      if (!(max > min)) max = min + 1;
      return { min, max, integers };
    }

    function draw() {
      const width = plot.clientWidth;
      const height = plot.clientHeight;
      lastSize = width + 'x' + height;
      for (const old of plot.querySelectorAll('svg, .mchart-empty')) old.remove();
      tip.hidden = true;
      geometry = null;
      if (!width || !height) return;
      const xs = data.x;
      const step = data.step || guessStep(xs);
      const series = visible();
      const hasData = xs.length > 0 && data.series.some((s) => s.values.some((v) => typeof v === 'number'));
      const from = data.from !== undefined ? data.from : xs.length ? xs[0] : Date.now() - HOUR;
      let to = data.to !== undefined ? data.to : xs.length ? xs[xs.length - 1] : Date.now();
      if (opts.mode === 'bar' && data.to === undefined && xs.length) to += step;
      if (to <= from) to = from + step;

      const m = MARGIN;
      const plotW = width - m.left - m.right;
      const plotH = height - m.top - m.bottom;
      const range = yRange(series);
      // A grid line every 30 to 50 px or so.
      const yTicks = niceTicks(range.min, range.max, plotH < 60 ? 2 : plotH < 120 ? 3 : 4, range.integers);
      const yMin = yTicks[0];
      const yMax = yTicks[yTicks.length - 1];
      const xOf = (t) => m.left + ((t - from) / (to - from)) * plotW;
      const yOf = (v) => m.top + plotH - ((v - yMin) / (yMax - yMin)) * plotH;

      const chart = svg('svg', {
        class: 'mchart-svg', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img',
        'aria-label': opts.label || 'Chart',
      });
      for (const v of yTicks) {
        const y = Math.round(yOf(v)) + 0.5;
        chart.appendChild(svg('line', { class: 'mchart-grid', x1: m.left, x2: width - m.right, y1: y, y2: y }));
        chart.appendChild(svg('text', { class: 'mchart-axis', x: m.left - 6, y: y + 3.5, 'text-anchor': 'end' }, (data.axisFormat || opts.axisFormat)(v)));
      }
      const { step: tickStep, ticks } = timeTicks(from, to, Math.max(2, Math.floor(plotW / 80)));
      const severalDays = !sameDay(new Date(from), new Date(to));
      for (const t of ticks) {
        const x = Math.round(xOf(t)) + 0.5;
        chart.appendChild(svg('line', { class: 'mchart-tick', x1: x, x2: x, y1: m.top + plotH, y2: m.top + plotH + 4 }));
        // A label at either edge stays inside the chart.
        const anchor = x > width - 18 ? 'end' : 'middle';
        chart.appendChild(svg('text', { class: 'mchart-axis', x, y: height - 5, 'text-anchor': anchor }, tickLabel(t, tickStep, severalDays)));
      }

      for (const rule of data.rules || []) {
        const y = Math.round(yOf(rule.value)) + 0.5;
        if (y < m.top || y > m.top + plotH + 1) continue;
        chart.appendChild(svg('line', { class: 'mchart-rule ' + (rule.cls || ''), x1: m.left, x2: width - m.right, y1: y, y2: y }));
        if (rule.label) chart.appendChild(svg('text', { class: 'mchart-rule-label ' + (rule.cls || ''), x: m.left + 4, y: y - 3 }, rule.label));
      }
      const layer = svg('g', { class: 'mchart-series' });
      if (opts.mode === 'bar') drawBars(layer, series, xs, step, xOf, yOf);
      else drawLines(layer, series, xs, step, xOf, yOf);
      chart.appendChild(layer);

      const band = svg('rect', { class: 'mchart-band', y: m.top, height: plotH, width: 0, visibility: 'hidden' });
      const cursor = svg('line', { class: 'mchart-cursor', y1: m.top, y2: m.top + plotH, visibility: 'hidden' });
      const marks = svg('g', { class: 'mchart-marks' });
      chart.insertBefore(band, layer);
      chart.append(cursor, marks);
      const hit = svg('rect', { class: 'mchart-hit', x: m.left, y: m.top, width: Math.max(0, plotW), height: Math.max(0, plotH) });
      chart.appendChild(hit);
      plot.insertBefore(chart, tip);
      if (!hasData) plot.insertBefore(html('p', 'mchart-empty', data.empty || opts.empty), tip);
      geometry = { xs, step, series, xOf, yOf, band, cursor, marks, width, from, to };
      if (hasData) {
        hit.addEventListener('pointermove', hover);
        hit.addEventListener('pointerdown', hover);
        hit.addEventListener('pointerleave', unhover);
        if (opts.mode === 'bar' && opts.onSelect) hit.addEventListener('click', select);
      }
    }

    /** One path per series; a run of one point is a dot. */
    function drawLines(layer, series, xs, step, xOf, yOf) {
      for (const s of series) {
        let d = '';
        let run = [];
        let lastT = 0;
        const flush = () => {
          if (run.length === 1) {
            layer.appendChild(svg('circle', {
              class: 'mchart-dot ' + seriesClass(s), cx: run[0][0], cy: run[0][1], r: 2.5, fill: s.color, 'data-series': s.name,
            }));
          } else if (run.length > 1) {
            d += run.map((p, i) => (i ? 'L' : 'M') + p[0].toFixed(1) + ' ' + p[1].toFixed(1)).join('');
          }
          run = [];
        };
        xs.forEach((t, i) => {
          const v = s.values[i];
          if (typeof v !== 'number' || !Number.isFinite(v)) return flush();
          if (run.length && t - lastT > step * 1.5) flush();
          run.push([xOf(t), yOf(v)]);
          lastT = t;
        });
        flush();
        if (d) {
          layer.insertBefore(svg('path', { class: 'mchart-line ' + seriesClass(s), d, stroke: s.color, 'data-series': s.name }), layer.firstChild);
        }
      }
    }

    /** Stacked bars, one column per bucket, each `step` wide less a small gap. */
    function drawBars(layer, series, xs, step, xOf, yOf) {
      xs.forEach((t, i) => {
        const x0 = xOf(t);
        const w = xOf(t + step) - x0;
        const gap = w > 6 ? Math.min(3, w * 0.18) : 0;
        let base = 0;
        for (const s of series) {
          const v = s.values[i];
          if (!v) continue;
          const top = yOf(base + v);
          const h = Math.max(1.5, yOf(base) - top);
          layer.appendChild(svg('rect', {
            class: 'mchart-bar ' + seriesClass(s), x: x0 + gap / 2, y: yOf(base) - h, width: Math.max(1, w - gap), height: h,
            fill: s.color, 'data-series': s.name, 'data-index': i,
          }));
          base += v;
        }
      });
    }

    function indexAt(event) {
      const g = geometry;
      const box = event.currentTarget.ownerSVGElement.getBoundingClientRect();
      const px = event.clientX - box.left;
      const t = g.from + ((px - MARGIN.left) / (g.xOf(g.to) - MARGIN.left)) * (g.to - g.from);
      return opts.mode === 'bar' ? nearest(g.xs, t - g.step / 2) : nearest(g.xs, t);
    }

    function hover(event) {
      const g = geometry;
      if (!g || !g.xs.length) return;
      const i = indexAt(event);
      const t = g.xs[i];
      g.marks.replaceChildren();
      let x;
      if (opts.mode === 'bar') {
        const x0 = g.xOf(t);
        x = x0 + (g.xOf(t + g.step) - x0) / 2;
        g.band.setAttribute('x', x0);
        g.band.setAttribute('width', Math.max(1, g.xOf(t + g.step) - x0));
        g.band.setAttribute('visibility', 'visible');
      } else {
        x = g.xOf(t);
        g.cursor.setAttribute('x1', x);
        g.cursor.setAttribute('x2', x);
        g.cursor.setAttribute('visibility', 'visible');
        for (const s of g.series) {
          const v = s.values[i];
          if (typeof v === 'number' && Number.isFinite(v)) {
            g.marks.appendChild(svg('circle', { class: 'mchart-mark ' + seriesClass(s), cx: x, cy: g.yOf(v), r: 3.5, fill: s.color }));
          }
        }
      }
      showTip(i, t, x);
    }

    /** The read-out: the bucket's time, then each visible series' value (— without one). */
    function showTip(i, t, x) {
      const g = geometry;
      const end = opts.mode === 'bar' ? ' – ' + pointLabel(t + g.step, g.step).replace(/^\w+ \d+ /, '') : '';
      const format = data.format || opts.format;
      const rows = [html('div', 'mchart-tip-time', pointLabel(t, g.step) + end)];
      let total = 0;
      // Bars list top down as they stack; lines from the highest value down, as drawn.
      const valueOf = (s) => (typeof s.values[i] === 'number' ? s.values[i] : -Infinity);
      const shown = opts.mode === 'bar' ? g.series.slice().reverse() : g.series.slice().sort((a, b) => valueOf(b) - valueOf(a));
      for (const s of shown) {
        const v = s.values[i];
        if (typeof v === 'number') total += v;
        if (opts.mode === 'bar' && !v) continue;
        const swatch = html('span', 'mchart-swatch ' + seriesClass(s));
        if (s.color) swatch.style.background = s.color;
        const row = html('div', 'mchart-tip-row');
        row.append(swatch, html('span', 'mchart-tip-name', s.name), html('span', 'mchart-tip-value', typeof v === 'number' ? format(v) : '—'));
        rows.push(row);
      }
      if (opts.mode === 'bar' && g.series.length > 1) rows.splice(1, 0, html('div', 'mchart-tip-total', (opts.totalFormat || format)(total)));
      const selectable = opts.mode === 'bar' && opts.onSelect && total > 0;
      if (selectable) rows.push(html('div', 'mchart-tip-hint', 'Click to zoom in'));
      root.classList.toggle('mchart-selectable', Boolean(selectable));
      tip.replaceChildren(...rows);
      tip.hidden = false;
      // Beside the cursor, on the side with room (CSSOM positions are allowed by the CSP).
      const w = tip.offsetWidth;
      const left = x + 14 + w <= g.width ? x + 14 : Math.max(0, x - 14 - w);
      tip.style.left = left + 'px';
    }

    function unhover(event) {
      // A finger lifted keeps the read-out it asked for (the next touch moves it).
      if (!geometry || (event && event.pointerType === 'touch')) return;
      geometry.cursor.setAttribute('visibility', 'hidden');
      geometry.band.setAttribute('visibility', 'hidden');
      geometry.marks.replaceChildren();
      tip.hidden = true;
      root.classList.remove('mchart-selectable');
    }

    /** A click on a bar zooms into its bucket; an empty bucket has nothing to show. */
    function select(event) {
      const i = indexAt(event);
      const t = geometry.xs[i];
      if (!geometry.series.some((s) => s.values[i] > 0)) return;
      unhover();
      opts.onSelect(i, t, t + geometry.step);
    }

    const observer = new ResizeObserver(() => {
      if (plot.clientWidth + 'x' + plot.clientHeight !== lastSize) draw();
    });
    observer.observe(plot);

    return {
      set,
      redraw: draw,
      destroy() {
        observer.disconnect();
        root.remove();
      },
      element: root,
    };
  }

  window.MonlightCharts = Object.freeze({ create, compact, niceTicks, timeTicks, tickLabel, pointLabel });
})();
