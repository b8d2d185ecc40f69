// Upload a CSV (or NDJSON, or Parquet) file as a new version of a dataset. The progress bar follows the
// bytes actually sent (XMLHttpRequest upload events); a 409 schema_drift shows what differs and, when the
// file only adds columns, offers to send it again with evolve=add_columns.

import { api, uploadFile } from './api.js';
import { clear, errorBox, fmtBytes, fmtNumber, h } from './dom.js';
import { buildHash, can } from './state.js';

// Each mode with the action it needs; overwrite is its own action, as it replaces what others loaded.
const MODES = [
  ['create', 'create: a new dataset', 'datasets.write'],
  ['append', 'append: add these rows', 'datasets.write'],
  ['overwrite', 'overwrite: replace every row', 'datasets.overwrite'],
];

// The format comes from the file's name, never from File.type: browsers call a CSV
// application/vnd.ms-excel, or nothing, depending on the system. Any other name is sent as CSV.
const FORMATS = [
  [/\.(ndjson|jsonl)$/i, 'ndjson', 'application/x-ndjson'],
  [/\.parquet$/i, 'parquet', 'application/vnd.apache.parquet'],
  [/$/, 'csv', 'text/csv'],
];

function formatOf(fileName) {
  const [, format, contentType] = FORMATS.find(([pattern]) => pattern.test(fileName));
  return { format, contentType };
}

// "Workers Export (2).csv" → "workers_export_2": a dataset name starts with a lowercase letter or "_".
function nameFromFile(fileName) {
  const base = fileName.replace(/\.[^.]*$/, '').toLowerCase().replace(/[^a-z0-9_]+/g, '_').replace(/^_+|_+$/g, '');
  return /^[a-z_]/.test(base) ? base : `_${base}`;
}

function columnList(id, title, items, describe) {
  if (!items.length) return null;
  return h('div', { class: 'drift-part' }, h('h3', {}, `${title} (${items.length})`), h('ul', { id }, items.map((c) => h('li', { 'data-column': c.column }, h('code', {}, c.column), ' ', describe(c)))));
}

export function render(root, { signal }) {
  let file = null;
  const fileInput = h('input', { id: 'upload-file', name: 'file', type: 'file', accept: '.csv,.ndjson,.jsonl,.parquet,text/csv' });
  const fileName = h('span', { id: 'upload-file-name', class: 'muted' }, 'No file chosen yet.');
  const drop = h(
    'div',
    { id: 'upload-drop', class: 'drop' },
    h('p', {}, 'Drop a CSV, NDJSON or Parquet file here, or '),
    h('label', { for: 'upload-file', class: 'button-like' }, 'choose a file'),
    fileInput,
    fileName,
  );
  const dataset = h('input', { id: 'upload-dataset', name: 'dataset', type: 'text', required: true, autocomplete: 'off', list: 'upload-datasets', spellcheck: 'false' });
  const known = h('datalist', { id: 'upload-datasets' });
  const modes = MODES.filter(([, , action]) => can(action));
  const mode = h('select', { id: 'upload-mode', name: 'mode' }, modes.map(([v, t]) => h('option', { value: v }, t)));
  const submit = h('button', { type: 'submit', class: 'primary', id: 'upload-submit' }, 'Upload');
  const progress = h('progress', { id: 'upload-progress', max: 100, value: 0 });
  const progressText = h('span', { id: 'upload-progress-text', class: 'small' }, '');
  const progressBox = h('div', { class: 'progress-box', hidden: true }, h('label', { for: 'upload-progress' }, 'Sent'), progress, progressText);
  const out = h('section', { id: 'upload-outcome', 'aria-live': 'polite', 'aria-label': 'Upload outcome' });

  function choose(f) {
    if (!f) return;
    file = f;
    fileName.textContent = `${f.name} · ${fmtBytes(f.size)}`;
    if (!dataset.value) dataset.value = nameFromFile(f.name);
    clear(out);
  }

  fileInput.addEventListener('change', () => choose(fileInput.files[0]));
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    choose(e.dataTransfer && e.dataTransfer.files[0]);
  });

  function setProgress(loaded, total) {
    const pct = total > 0 ? Math.min(100, Math.round((loaded / total) * 100)) : 0;
    progress.value = pct;
    progress.dataset.percent = String(pct);
    progressText.textContent = `${pct}% · ${fmtBytes(loaded)} of ${fmtBytes(total)}`;
    if (pct === 100 && out.dataset.state === 'running') {
      clear(out, h('p', { class: 'muted', role: 'status' }, 'Sent. The server is reading the file and writing the new version…'));
    }
  }

  function showDrift(err, name, sendAgain) {
    const d = err.details || {};
    const added = d.added || [];
    const missing = d.missing || [];
    const retyped = d.retyped || [];
    const onlyAdded = added.length > 0 && !missing.length && !retyped.length;
    clear(
      out,
      h(
        'section',
        { id: 'upload-drift', class: 'drift', role: 'alert' },
        h('h2', {}, `The file's columns differ from ${name}: nothing was written`),
        h('p', { class: 'muted small' }, err.message),
        columnList('drift-added', 'Added', added, (c) => `${c.type}${c.nullable ? ', nullable' : ''}`),
        columnList('drift-missing', 'Missing', missing, (c) => `${c.type}${c.nullable ? ', nullable' : ''}`),
        columnList('drift-retyped', 'Retyped', retyped, (c) => `${c.from} → ${c.to}`),
        onlyAdded
          ? h('p', {}, h('button', { type: 'button', id: 'upload-evolve', class: 'primary', onclick: () => sendAgain('add_columns') }, `Add the new column${added.length === 1 ? '' : 's'} and upload again`))
          : h('p', {}, can('datasets.overwrite') ? 'Fix the file (or upload it with mode overwrite) and try again.' : 'Fix the file and try again.'),
      ),
    );
    out.querySelector('#upload-evolve')?.focus();
  }

  async function send(evolve) {
    const name = dataset.value.trim();
    const chosenMode = mode.value;
    submit.disabled = true;
    progressBox.hidden = false;
    setProgress(0, file.size);
    out.dataset.state = 'running';
    clear(out, h('p', { class: 'muted', role: 'status' }, `Uploading ${file.name}…`));
    try {
      const r = await uploadFile(name, { mode: chosenMode, evolve, file, ...formatOf(file.name), onProgress: setProgress });
      if (signal.aborted) return;
      setProgress(file.size, file.size);
      clear(
        out,
        h(
          'div',
          { id: 'upload-result', class: 'success', 'data-version': String(r.version), 'data-dataset': r.dataset },
          h('h2', {}, `${r.dataset} is now at version ${r.version}`),
          h('p', {}, `${fmtNumber(r.rows)} rows written · ${fmtBytes(r.bytes)} · ${r.schema.length} columns`, can('datasets.read') ? [' · ', h('a', { href: buildHash(['datasets', r.dataset]) }, 'see the dataset')] : null),
        ),
      );
      out.dataset.state = 'done';
      refreshKnown();
    } catch (e) {
      if (signal.aborted) return;
      if (e.status === 409 && e.code === 'schema_drift') {
        showDrift(e, name, send);
        out.dataset.state = 'drift';
      } else {
        clear(out, errorBox(e.message, { id: 'upload-error' }));
        out.dataset.state = 'error';
      }
    } finally {
      submit.disabled = false;
    }
  }

  const form = h(
    'form',
    {
      class: 'upload-form',
      onsubmit: (e) => {
        e.preventDefault();
        if (!file) {
          clear(out, errorBox('Choose a file first.', { id: 'upload-error' }));
          return;
        }
        send(undefined);
      },
    },
    drop,
    h(
      'div',
      { class: 'grid' },
      h('div', { class: 'field' }, h('label', { for: 'upload-dataset' }, 'Dataset name'), dataset, known),
      h('div', { class: 'field' }, h('label', { for: 'upload-mode' }, 'Mode'), mode),
    ),
    h('div', { class: 'actions' }, submit),
    progressBox,
  );

  // Suggestions only, from the catalog: a key that may load data but not list it uploads without them.
  function refreshKnown() {
    if (!can('datasets.read')) return;
    api
      .datasets()
      .then(({ datasets }) => !signal.aborted && clear(known, datasets.map((d) => h('option', { value: d.name }))))
      .catch(() => {});
  }
  refreshKnown();
  clear(root, h('h1', { text: 'Upload data' }), form, out);
}
