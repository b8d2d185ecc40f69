// Small DOM and formatting helpers shared by the views. Everything is built with createElement and
// textContent, never innerHTML, so data from the server can never become markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 4 });

export function fmtNumber(n) {
  return typeof n === 'number' ? numberFormat.format(n) : String(n);
}

export function fmtBytes(bytes) {
  if (typeof bytes !== 'number' || !Number.isFinite(bytes)) return '';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i += 1;
  }
  return `${i === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${units[i]}`;
}

export function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

export function fmtMs(ms) {
  if (typeof ms !== 'number') return '';
  return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
}

// A cell value as text: numbers exactly as the API sent them (no rounding in a data table), lists and
// objects as JSON, null visibly null rather than blank.
export function cellText(value) {
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value) || typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

export function isNumericType(type) {
  return /^(u?int\d*|float\d*|decimal|double|real)/i.test(type || '');
}

// A result table in a horizontally scrolling wrapper, so wide results never widen the page on a phone.
export function resultTable(columns, rows, { id, caption } = {}) {
  const numeric = columns.map((c) => isNumericType(c.type));
  const table = h(
    'table',
    { id, class: 'data' },
    caption ? h('caption', { text: caption }) : null,
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        columns.map((c, i) =>
          h('th', { scope: 'col', class: numeric[i] ? 'num' : '' }, c.name, c.type ? h('span', { class: 'type' }, c.type) : null),
        ),
      ),
    ),
    h(
      'tbody',
      {},
      rows.map((row) =>
        h(
          'tr',
          {},
          row.map((value, i) =>
            h('td', { class: [numeric[i] ? 'num' : '', value === null ? 'null' : ''].join(' ').trim() }, cellText(value)),
          ),
        ),
      ),
    ),
  );
  return h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption || 'Result table' }, table);
}

export function errorBox(message, attrs = {}) {
  return h('div', { class: 'error', role: 'alert', ...attrs }, message);
}

export function loading(text = 'Loading…') {
  return h('p', { class: 'muted', role: 'status' }, text);
}

// Double quotes make any dataset name (and the "name@v3" version syntax) a valid SQL identifier.
export function quoteIdent(name) {
  return `"${String(name).replace(/"/g, '""')}"`;
}
