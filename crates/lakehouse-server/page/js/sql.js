// The SQL console: an editor, the datasets and their columns at hand, the result as a table and, when the
// column types allow one, a chart. The query lives in the URL (#/sql?q=…), so a reload or a shared link
// runs it again and shows the same result.

import { api } from './api.js';
import { drawChart } from './chart.js';
import { clear, errorBox, fmtMs, fmtNumber, h, loading, quoteIdent, resultTable } from './dom.js';
import { buildHash, can, recordHash, unavailable } from './state.js';

const MAX_ROWS = 1000;
const PLAIN_IDENT = /^[a-z_][a-z0-9_]*$/;

// Names that SQL would fold or misread (capitals, "@v3", dashes) are inserted quoted.
const sqlName = (name) => (PLAIN_IDENT.test(name) ? name : quoteIdent(name));

function insertAtCursor(editor, text) {
  const { selectionStart, selectionEnd, value } = editor;
  const before = value.slice(0, selectionStart);
  const pad = before && !/[\s(,.]$/.test(before) ? ' ' : '';
  editor.setRangeText(pad + text, selectionStart, selectionEnd, 'end');
  editor.focus();
}

// The datasets at hand come from the catalog, which is its own action: a key with SQL but no catalog gets a
// note instead of a list that could only fail.
function schemaBrowser(editor, signal) {
  const title = h('h2', { id: 'sql-datasets-title', text: 'Datasets' });
  if (!can('datasets.read')) {
    return h('aside', { class: 'schema', 'aria-labelledby': 'sql-datasets-title' }, title, unavailable('sql-datasets-unavailable', 'may not list the datasets', ['datasets.read']));
  }
  const list = h('ul', { class: 'schema-list', id: 'sql-datasets' }, h('li', {}, loading('Loading datasets…')));
  api
    .datasets()
    .then(({ datasets }) => {
      if (signal.aborted) return;
      if (!datasets.length) {
        clear(list, h('li', { class: 'muted' }, 'No datasets yet.'));
        return;
      }
      clear(list, datasets.map((d) => datasetEntry(d, editor)));
    })
    .catch((e) => clear(list, h('li', {}, errorBox(e.message))));
  return h('aside', { class: 'schema', 'aria-labelledby': 'sql-datasets-title' }, title, list);
}

// Columns are fetched when a dataset is opened: one manifest request per dataset the user looks at.
function datasetEntry(d, editor) {
  const columns = h('ul', { class: 'columns' });
  const details = h(
    'details',
    {},
    h('summary', {}, `${d.name} `, h('span', { class: 'muted small' }, `v${d.version}`)),
    h('button', { type: 'button', class: 'link insert', 'data-insert': d.name, onclick: () => insertAtCursor(editor, sqlName(d.name)) }, `Insert ${d.name}`),
    columns,
  );
  let loaded = false;
  details.addEventListener('toggle', () => {
    if (!details.open || loaded) return;
    loaded = true;
    columns.append(h('li', {}, loading()));
    api
      .dataset(d.name)
      .then((m) =>
        clear(
          columns,
          m.schema.map((c) =>
            h('li', {}, h('button', { type: 'button', class: 'link insert', 'data-insert': c.column, onclick: () => insertAtCursor(editor, sqlName(c.column)) }, c.column), ' ', h('span', { class: 'type' }, c.type)),
          ),
        ),
      )
      .catch((e) => clear(columns, h('li', {}, errorBox(e.message))));
  });
  return h('li', {}, details);
}

function showResult(out, result) {
  const meta = h(
    'p',
    { class: 'result-meta', id: 'sql-meta' },
    `${fmtNumber(result.row_count)} row${result.row_count === 1 ? '' : 's'} · `,
    h('span', { id: 'sql-elapsed' }, fmtMs(result.elapsed_ms)),
    result.truncated ? h('span', { class: 'badge warn', id: 'sql-truncated' }, `truncated to ${fmtNumber(result.rows.length)} rows`) : null,
  );
  const chartBox = h('figure', { class: 'chart-box', id: 'sql-chart' });
  clear(out, meta, chartBox, resultTable(result.columns, result.rows, { id: 'sql-result', caption: 'Result' }));
  // Drawn after the box is in the page so the chart can use the width it really has.
  const padding = parseFloat(getComputedStyle(chartBox).paddingLeft) * 2 || 0;
  const chart = drawChart(result.columns, result.rows, (chartBox.clientWidth || out.clientWidth || 640) - padding);
  if (chart) {
    chartBox.dataset.kind = chart.kind;
    chartBox.append(h('figcaption', { class: 'small' }, chart.caption, chart.note ? h('span', { class: 'muted' }, ` · ${chart.note}`) : null), chart.svg);
  } else {
    chartBox.remove();
  }
}

export function render(root, { params, signal }) {
  const initial = params.get('q') || '';
  const editor = h('textarea', {
    id: 'sql-editor',
    name: 'sql',
    rows: 8,
    spellcheck: 'false',
    autocapitalize: 'off',
    'aria-describedby': 'sql-hint',
    placeholder: 'SELECT state, count(*) AS workers FROM workers GROUP BY state ORDER BY workers DESC',
  });
  editor.value = initial;
  const out = h('section', { id: 'sql-output', 'aria-live': 'polite', 'aria-label': 'Result' });
  const runButton = h('button', { type: 'submit', class: 'primary', id: 'sql-run' }, 'Run');

  let runId = 0;
  async function run(sql) {
    const mine = ++runId;
    runButton.disabled = true;
    out.dataset.state = 'running';
    clear(out, loading('Running…'));
    try {
      const result = await api.sql(sql, MAX_ROWS);
      if (signal.aborted || mine !== runId) return;
      showResult(out, result);
      out.dataset.state = 'done';
    } catch (e) {
      if (signal.aborted || mine !== runId) return;
      clear(out, errorBox(e.message, { id: 'sql-error' }));
      out.dataset.state = 'error';
    } finally {
      if (mine === runId) runButton.disabled = false;
    }
  }

  const form = h(
    'form',
    {
      class: 'sql-form',
      onsubmit: (e) => {
        e.preventDefault();
        const sql = editor.value.trim();
        if (!sql) return;
        recordHash(buildHash('sql', { q: sql }));
        run(sql);
      },
    },
    h('label', { for: 'sql-editor' }, 'Query'),
    editor,
    h('div', { class: 'actions' }, runButton, h('span', { id: 'sql-hint', class: 'muted small' }, 'Ctrl+Enter runs. Read-only; "name@v3" reads version 3 of a dataset.')),
  );
  editor.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      form.requestSubmit();
    }
  });

  clear(
    root,
    h('h1', { text: 'SQL console' }),
    h('div', { class: 'sql-layout' }, h('div', { class: 'sql-main' }, form, out), schemaBrowser(editor, signal)),
  );
  if (initial.trim()) run(initial.trim());
  else editor.focus();
}
