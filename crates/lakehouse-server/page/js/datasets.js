// Datasets: the catalog's list, and one dataset at any version (#/datasets/workers?v=3) with its schema,
// files, history and a preview of its rows at that version, read with SQL's "name@v3" syntax.

import { api } from './api.js';
import { clear, errorBox, fmtBytes, fmtNumber, fmtTime, h, loading, quoteIdent, resultTable } from './dom.js';
import { buildHash, can, unavailable } from './state.js';

const PREVIEW_ROWS = 50;

function simpleTable(id, caption, headers, rows, numericCols = []) {
  return h(
    'div',
    { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption },
    h(
      'table',
      { id, class: 'data' },
      h('caption', { text: caption }),
      h('thead', {}, h('tr', {}, headers.map((t, i) => h('th', { scope: 'col', class: numericCols.includes(i) ? 'num' : '' }, t)))),
      h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((c, i) => h(i === 0 ? 'th' : 'td', { scope: i === 0 ? 'row' : null, class: numericCols.includes(i) ? 'num' : '' }, c))))),
    ),
  );
}

async function renderList(root, signal) {
  clear(root, h('h1', { text: 'Datasets' }), loading());
  let list;
  try {
    list = (await api.datasets()).datasets;
  } catch (e) {
    if (!signal.aborted) clear(root, h('h1', { text: 'Datasets' }), errorBox(e.message));
    return;
  }
  if (signal.aborted) return;
  if (!list.length) {
    clear(root, h('h1', { text: 'Datasets' }), h('p', {}, 'No datasets yet.', can('datasets.write') ? [' ', h('a', { href: '#/upload' }, 'Upload one'), '.'] : null));
    return;
  }
  clear(
    root,
    h('h1', { text: 'Datasets' }),
    simpleTable(
      'datasets-table',
      `${list.length} dataset${list.length === 1 ? '' : 's'}`,
      ['Name', 'Rows', 'Size', 'Version', 'Updated'],
      list.map((d) => [h('a', { href: buildHash(['datasets', d.name]) }, d.name), fmtNumber(d.rows), fmtBytes(d.bytes), `v${d.version}`, fmtTime(d.updated_at)]),
      [1, 2],
    ),
  );
}

// The history always comes from the newest manifest (an older version's manifest stops at itself), with the
// version on screen marked as current.
function historyList(name, history, shownVersion, latest) {
  return h(
    'ol',
    { id: 'dataset-history', class: 'history' },
    (history || []).map((entry) => {
      const current = entry.version === shownVersion;
      return h(
        'li',
        { 'data-version': String(entry.version) },
        h(
          'a',
          { href: buildHash(['datasets', name], entry.version === latest ? {} : { v: entry.version }), 'aria-current': current ? 'page' : null },
          `v${entry.version}`,
        ),
        ' ',
        h('span', { class: 'op' }, entry.operation || ''),
        entry.mode ? h('span', { class: 'muted small' }, ` (${entry.mode})`) : null,
        ' · ',
        typeof entry.rows_added === 'number' ? `${fmtNumber(entry.rows_added)} rows added · ` : '',
        h('span', { class: 'muted' }, fmtTime(entry.timestamp)),
      );
    }),
  );
}

function preview(name, version, signal) {
  const box = h('section', { id: 'dataset-preview', 'aria-labelledby': 'preview-title', 'data-version': String(version) });
  const sql = `SELECT * FROM ${quoteIdent(`${name}@v${version}`)} LIMIT ${PREVIEW_ROWS}`;
  box.append(
    h('h2', { id: 'preview-title' }, `Rows at v${version}`),
    h('p', { class: 'muted small' }, h('code', {}, sql), ' · ', h('a', { href: buildHash('sql', { q: sql }) }, 'open in the SQL console')),
    loading('Reading rows…'),
  );
  api
    .sql(sql, PREVIEW_ROWS)
    .then((r) => {
      if (signal.aborted) return;
      box.lastChild.replaceWith(resultTable(r.columns, r.rows, { id: 'preview-table', caption: `First ${r.rows.length} rows of ${name} at v${version}` }));
      box.dataset.state = 'done';
    })
    .catch((e) => {
      if (signal.aborted) return;
      box.lastChild.replaceWith(errorBox(e.message));
      box.dataset.state = 'error';
    });
  return box;
}

async function renderOne(root, name, version, signal) {
  clear(root, h('p', {}, h('a', { href: '#/datasets' }, '← All datasets')), h('h1', { text: name }), loading());
  let manifest;
  let newest;
  try {
    // The latest manifest tells which version is newest, so history links and the heading can say so.
    newest = await api.dataset(name);
    manifest = version === null || version === newest.version ? newest : await api.dataset(name, version);
  } catch (e) {
    if (!signal.aborted) clear(root, h('p', {}, h('a', { href: '#/datasets' }, '← All datasets')), h('h1', { text: name }), errorBox(e.message, { id: 'dataset-error' }));
    return;
  }
  if (signal.aborted) return;
  const latest = newest.version;

  clear(
    root,
    h('p', {}, h('a', { href: '#/datasets' }, '← All datasets')),
    h('h1', { id: 'dataset-title' }, name, ' ', h('span', { class: 'badge', id: 'dataset-version', 'data-version': String(manifest.version) }, `v${manifest.version}`)),
    h(
      'p',
      { class: 'result-meta' },
      `${fmtNumber(manifest.rows)} rows · ${fmtBytes(manifest.bytes)}`,
      manifest.version === latest ? ' · latest version' : [' · ', h('a', { href: buildHash(['datasets', name]) }, `latest is v${latest}`)],
    ),
    h(
      'div',
      { class: 'two-col' },
      h(
        'section',
        { 'aria-labelledby': 'schema-title' },
        h('h2', { id: 'schema-title' }, 'Schema'),
        simpleTable('dataset-schema', `${manifest.schema.length} columns`, ['Column', 'Type', 'Nullable'], manifest.schema.map((c) => [c.column, c.type, c.nullable ? 'yes' : 'no'])),
      ),
      h('section', { 'aria-labelledby': 'history-title' }, h('h2', { id: 'history-title' }, 'History'), historyList(name, newest.history, manifest.version, latest)),
    ),
    h(
      'section',
      { 'aria-labelledby': 'files-title' },
      h('h2', { id: 'files-title' }, 'Files'),
      simpleTable('dataset-files', `${manifest.files.length} file${manifest.files.length === 1 ? '' : 's'} at v${manifest.version}`, ['Path', 'Rows', 'Size'], manifest.files.map((f) => [f.path, fmtNumber(f.rows), fmtBytes(f.bytes)]), [1, 2]),
    ),
    // The preview is a SQL query: without `sql` there is none to show.
    can('sql') ? preview(name, manifest.version, signal) : unavailable('dataset-preview-unavailable', 'may not preview rows', ['sql']),
  );
}

export function render(root, { path, params, signal }) {
  if (!path.length) {
    renderList(root, signal);
    return;
  }
  const v = params.get('v');
  const version = v !== null && /^\d+$/.test(v) ? Number(v) : null;
  renderOne(root, path[0], version, signal);
}
