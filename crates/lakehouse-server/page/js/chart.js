// SVG charts for SQL results. The chart is chosen from the result's column types alone: a time-like column
// and a number make a line, a text column and a number make bars, anything else makes no chart, so the
// user never has to configure one and a query that is not chartable shows just its table.

import { cellText, fmtNumber, isNumericType } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';
const TIME_TYPES = /^(date|timestamp)/i;
// Strings like "2024-05", "2024-05-01" or "2024-05-01T00:00:00Z" chart as time too (e.g. to_char results).
const TIME_TEXT = /^\d{4}-\d{2}(-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?)?$/;
const MAX_BARS = 40;

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function isTimeColumn(col, rows, i) {
  if (TIME_TYPES.test(col.type || '')) return true;
  if (col.type !== 'string') return false;
  const values = rows.map((r) => r[i]).filter((v) => v !== null && v !== undefined);
  return values.length > 0 && values.every((v) => typeof v === 'string' && TIME_TEXT.test(v));
}

// → { kind: 'line' | 'bar', x, y } (column indexes) or null when nothing is chartable.
export function chooseChart(columns, rows) {
  if (!rows.length) return null;
  const time = columns.findIndex((c, i) => isTimeColumn(c, rows, i));
  const category = columns.findIndex((c, i) => (c.type === 'string' || c.type === 'boolean') && i !== time);
  const number = (except) => columns.findIndex((c, i) => i !== except && isNumericType(c.type));
  if (time !== -1 && number(time) !== -1) return { kind: 'line', x: time, y: number(time) };
  if (category !== -1 && number(category) !== -1) return { kind: 'bar', x: category, y: number(category) };
  return null;
}

function toNumber(v) {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '') return Number(v); // decimals arrive as strings
  return NaN;
}

function toTime(v) {
  if (typeof v !== 'string') return NaN;
  let text = v.replace(' ', 'T');
  if (/^\d{4}-\d{2}$/.test(text)) text += '-01';
  // Zone-less timestamps are read as UTC so points never shift with the viewer's time zone.
  if (/T\d{2}:\d{2}/.test(text) && !/(Z|[+-]\d{2}:?\d{2})$/.test(text)) text += 'Z';
  return Date.parse(text);
}

// Midnight timestamps show as dates, and first-of-month dates as months, so "2024-05-01T00:00:00"
// (date_trunc('month', …)) reads as "2024-05".
function timeLabels(raw) {
  let labels = raw.map((v) => v.replace(/[T ]00:00(:00(\.0+)?)?(Z|[+-]00:?00)?$/, ''));
  if (labels.every((l) => /^\d{4}-\d{2}-01$/.test(l))) labels = labels.map((l) => l.slice(0, 7));
  return labels;
}

function niceStep(range, count) {
  const raw = range / Math.max(count, 1);
  const mag = 10 ** Math.floor(Math.log10(raw || 1));
  const norm = raw / mag;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
}

function domain(values) {
  let lo = Math.min(0, ...values);
  let hi = Math.max(0, ...values);
  if (lo === hi) hi = lo + 1;
  const step = niceStep(hi - lo, 4);
  lo = Math.floor(lo / step) * step;
  hi = Math.ceil(hi / step) * step;
  const ticks = [];
  for (let t = lo; t <= hi + step / 2; t += step) ticks.push(Number(t.toPrecision(12)));
  return { lo, hi, ticks };
}

function frame(kind, width, height, label) {
  return s(
    'svg',
    { class: `chart chart-${kind}`, 'data-kind': kind, width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label },
    s('title', {}, label),
  );
}

export function lineChart(columns, rows, x, y, width) {
  const points = rows
    .map((r) => ({ raw: r[x], t: toTime(r[x]), v: toNumber(r[y]) }))
    .filter((p) => Number.isFinite(p.t) && Number.isFinite(p.v))
    .sort((a, b) => a.t - b.t);
  if (!points.length) return null;
  const labels = timeLabels(points.map((p) => p.raw));
  const height = 280;
  const m = { top: 16, right: 20, bottom: 36, left: 64 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const t0 = points[0].t;
  const t1 = points[points.length - 1].t;
  const px = (t) => m.left + (t1 === t0 ? plotW / 2 : ((t - t0) / (t1 - t0)) * plotW);
  const { lo, hi, ticks } = domain(points.map((p) => p.v));
  const py = (v) => m.top + plotH - ((v - lo) / (hi - lo)) * plotH;

  const label = `Line chart of ${columns[y].name} by ${columns[x].name}`;
  const svg = frame('line', width, height, label);
  const grid = s('g', { class: 'grid' });
  for (const t of ticks) {
    grid.append(
      s('line', { x1: m.left, x2: width - m.right, y1: py(t), y2: py(t) }),
      s('text', { x: m.left - 6, y: py(t), 'text-anchor': 'end', 'dominant-baseline': 'middle' }, fmtNumber(t)),
    );
  }
  svg.append(grid);

  // As many x labels as fit (about one per 90 px), spread evenly over the points.
  const axis = s('g', { class: 'axis' });
  const room = Math.max(2, Math.floor(plotW / 90));
  const every = Math.max(1, Math.ceil(points.length / room));
  points.forEach((p, i) => {
    if (i % every !== 0) return;
    // A label that would run off the right edge is right-aligned to its point instead (~7 px a character).
    const anchor = px(p.t) + labels[i].length * 3.5 > width ? 'end' : 'middle';
    axis.append(s('text', { x: px(p.t), y: height - m.bottom + 18, 'text-anchor': anchor }, labels[i]));
  });
  svg.append(axis);

  const d = points.map((p, i) => `${i ? 'L' : 'M'}${px(p.t).toFixed(1)},${py(p.v).toFixed(1)}`).join(' ');
  svg.append(s('path', { class: 'series', d }));
  const dots = s('g', { class: 'dots' });
  points.forEach((p, i) => {
    dots.append(s('circle', { cx: px(p.t), cy: py(p.v), r: 3.5 }, s('title', {}, `${labels[i]}: ${fmtNumber(p.v)}`)));
  });
  svg.append(dots);
  return svg;
}

export function barChart(columns, rows, x, y, width) {
  const bars = rows
    .map((r) => ({ label: cellText(r[x]), v: toNumber(r[y]) }))
    .filter((b) => Number.isFinite(b.v))
    .slice(0, MAX_BARS);
  if (!bars.length) return null;
  const rowH = 24;
  const m = { top: 8, right: 64, bottom: 8 };
  const labelW = Math.min(Math.round(width * 0.35), Math.max(...bars.map((b) => b.label.length)) * 7 + 12);
  const height = m.top + m.bottom + bars.length * rowH;
  const plotW = Math.max(40, width - labelW - m.right);
  const { lo, hi } = domain(bars.map((b) => b.v));
  const px = (v) => labelW + ((v - lo) / (hi - lo)) * plotW;
  const maxChars = Math.max(3, Math.floor((labelW - 12) / 7));

  const label = `Bar chart of ${columns[y].name} by ${columns[x].name}`;
  const svg = frame('bar', width, height, label);
  bars.forEach((b, i) => {
    const top = m.top + i * rowH;
    const short = b.label.length > maxChars ? `${b.label.slice(0, maxChars - 1)}…` : b.label;
    const x0 = Math.min(px(0), px(b.v));
    const w = Math.max(1, Math.abs(px(b.v) - px(0)));
    svg.append(
      s('g', { class: 'bar-row' },
        s('title', {}, `${b.label}: ${fmtNumber(b.v)}`),
        s('text', { class: 'bar-label', x: labelW - 8, y: top + rowH / 2, 'text-anchor': 'end', 'dominant-baseline': 'middle' }, short),
        s('rect', { class: 'bar', x: x0, y: top + 3, width: w, height: rowH - 6, rx: 2 }),
        s('text', { class: 'bar-value', x: Math.max(px(0), px(b.v)) + 6, y: top + rowH / 2, 'dominant-baseline': 'middle' }, fmtNumber(b.v)),
      ),
    );
  });
  return svg;
}

// The chart for a result, or null. `width` is the pixel width available, so text keeps its real size on a
// phone instead of being scaled down with the drawing.
export function drawChart(columns, rows, width) {
  const spec = chooseChart(columns, rows);
  if (!spec) return null;
  const w = Math.max(280, Math.min(960, Math.floor(width)));
  const svg = spec.kind === 'line' ? lineChart(columns, rows, spec.x, spec.y, w) : barChart(columns, rows, spec.x, spec.y, w);
  if (!svg) return null;
  const note = spec.kind === 'bar' && rows.length > MAX_BARS ? `The first ${MAX_BARS} of ${rows.length} rows.` : null;
  return { svg, kind: spec.kind, note, caption: `${columns[spec.y].name} by ${columns[spec.x].name}` };
}
