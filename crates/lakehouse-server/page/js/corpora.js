// Corpora: the searchable datasets, their build status (polled every second while any builds or catches
// up), and the form that creates one from a dataset's schema.

import { api } from './api.js';
import { clear, errorBox, fmtMs, fmtNumber, fmtTime, h, loading } from './dom.js';
import { isHiddenField, lacking, unavailable } from './state.js';

const POLL_MS = 1000;

const busy = (c) => c.status === 'building' || (c.catching_up_to !== undefined && c.catching_up_to !== null);

function progressLine(c) {
  if (!busy(c)) return null;
  const total = Math.max(c.rows_total || 0, 0);
  const done = Math.min(c.rows_indexed || 0, total);
  const pct = total ? Math.round((done / total) * 100) : 0;
  const id = `corpus-progress-${c.name}`;
  return h(
    'div',
    { class: 'progress-box' },
    h('label', { for: id }, c.status === 'building' ? 'Building' : `Catching up to v${c.catching_up_to}`),
    h('progress', { id, class: 'corpus-progress', max: total || 1, value: done }),
    h('span', { class: 'small' }, `${fmtNumber(done)} of ${fmtNumber(total)} rows indexed (${pct}%)`),
  );
}

function syncLine(s) {
  if (!s) return null;
  const parts = [
    `${fmtNumber(s.rows)} rows`,
    `${fmtNumber(s.embedded)} embedded`,
    `${fmtNumber(s.metadata_updated)} updated`,
    `${fmtNumber(s.deleted)} deleted`,
  ];
  const times = `read ${fmtMs(s.read_ms)}, embed ${fmtMs(s.embed_ms)}, index ${fmtMs(s.index_ms)}, keyword ${fmtMs(s.keyword_ms)}`;
  return h('p', { class: 'small' }, `Last sync of v${s.version}: ${parts.join(', ')} in ${fmtMs(s.total_ms)} `, h('span', { class: 'muted' }, `(${times})`));
}

// The definition as the caller may see it: fields the role cannot see are left out even here.
function definitionDetails(c, openSet) {
  const d = c.definition || {};
  const fields = (d.fields || []).filter((f) => !isHiddenField(f));
  const rules = (d.eligibility || []).map((r) => r.reason).filter(Boolean);
  const details = h(
    'details',
    { open: openSet.has(c.name) },
    h('summary', {}, 'Definition'),
    h(
      'dl',
      { class: 'kv-list' },
      h('dt', {}, 'id column'), h('dd', {}, h('code', {}, d.id_column || '')),
      h('dt', {}, 'text'), h('dd', {}, h('code', {}, d.text || '')),
      h('dt', {}, 'fields'), h('dd', {}, fields.join(', ') || '—'),
      d.orders ? [h('dt', {}, 'job orders'), h('dd', {}, `${d.orders.dataset} by ${d.orders.id_column}`)] : null,
      rules.length ? [h('dt', {}, 'eligibility'), h('dd', {}, h('ul', {}, rules.map((r) => h('li', {}, r))))] : null,
    ),
  );
  details.addEventListener('toggle', () => (details.open ? openSet.add(c.name) : openSet.delete(c.name)));
  return details;
}

function corpusCard(c, openSet) {
  const badgeClass = c.status === 'ready' ? 'ok' : c.status === 'failed' ? 'bad' : 'warn';
  return h(
    'li',
    { class: 'corpus card', 'data-name': c.name, 'data-status': c.status },
    h('header', { class: 'hit-head' }, h('h3', {}, c.name), h('span', { class: `badge ${badgeClass}` }, c.status)),
    h(
      'p',
      { class: 'small' },
      `dataset ${c.dataset}`,
      c.dataset_version !== null && c.dataset_version !== undefined ? ` v${c.dataset_version}` : ' (first build)',
      ` · ${fmtNumber(c.rows_indexed)} of ${fmtNumber(c.rows_total)} rows indexed · updated ${fmtTime(c.updated_at)}`,
    ),
    progressLine(c),
    c.error ? errorBox(c.error) : null,
    syncLine(c.last_sync),
    definitionDetails(c, openSet),
  );
}

function schemaPicker(columns) {
  const idSelect = h('select', { id: 'corpus-id', name: 'id_column', required: true }, columns.map((c) => h('option', { value: c.column }, c.column)));
  const guessId = columns.find((c) => c.column === 'id' || c.column.endsWith('_id'));
  if (guessId) idSelect.value = guessId.column;
  const textColumns = columns.filter((c) => c.type === 'string');
  const textSelect = h('select', { id: 'corpus-text-column', name: 'text_column' }, textColumns.map((c) => h('option', { value: c.column }, c.column)));
  const guessText = textColumns.find((c) => /text|description|profile|notes/.test(c.column)) || textColumns.find((c) => c.column !== idSelect.value);
  if (guessText) textSelect.value = guessText.column;
  const fields = h(
    'fieldset',
    { id: 'corpus-fields', class: 'checks' },
    h('legend', {}, 'Fields a hit shows'),
    columns.map((c) =>
      h('div', { class: 'check' }, h('input', { type: 'checkbox', id: `corpus-field-${c.column}`, value: c.column, checked: c.column !== idSelect.value }), h('label', { for: `corpus-field-${c.column}` }, c.column, ' ', h('span', { class: 'type' }, c.type))),
    ),
  );
  return { idSelect, textSelect, fields };
}

function parseOptionalJson(text, what) {
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${what} is not valid JSON: ${e.message}`);
  }
}

function createForm(onCreated, signal) {
  const name = h('input', { id: 'corpus-name', name: 'name', type: 'text', required: true, autocomplete: 'off', maxlength: '48', spellcheck: 'false' });
  const dataset = h('select', { id: 'corpus-dataset', name: 'dataset', required: true }, h('option', { value: '' }, 'Choose a dataset…'));
  const schemaBox = h('div', { id: 'corpus-schema' }, h('p', { class: 'muted small' }, 'Choose a dataset to pick its columns.'));
  const textKindColumn = h('input', { type: 'radio', name: 'text_kind', id: 'corpus-text-kind-column', value: 'column', checked: true });
  const textKindTemplate = h('input', { type: 'radio', name: 'text_kind', id: 'corpus-text-kind-template', value: 'template' });
  const template = h('input', { id: 'corpus-text-template', name: 'template', type: 'text', autocomplete: 'off', placeholder: '{primary_role} in {city}, {state}. {profile_text}' });
  const orders = h('textarea', { id: 'corpus-orders', rows: 3, spellcheck: 'false', placeholder: '{"dataset": "job_orders", "id_column": "order_id", "text": "{title}. {description}"}' });
  const rules = h('textarea', { id: 'corpus-eligibility', rows: 4, spellcheck: 'false', placeholder: '[{"field": "status", "equals": "active", "reason": "not active"}]' });
  const out = h('div', { id: 'corpus-create-outcome', 'aria-live': 'polite' });
  let picker = null;

  dataset.addEventListener('change', async () => {
    picker = null;
    if (!dataset.value) {
      clear(schemaBox, h('p', { class: 'muted small' }, 'Choose a dataset to pick its columns.'));
      return;
    }
    clear(schemaBox, loading('Reading the schema…'));
    try {
      const m = await api.dataset(dataset.value);
      if (signal.aborted) return;
      picker = schemaPicker(m.schema);
      clear(
        schemaBox,
        h('div', { class: 'field' }, h('label', { for: 'corpus-id' }, 'Id column (unique, never null)'), picker.idSelect),
        h(
          'fieldset',
          { class: 'text-choice' },
          h('legend', {}, 'Text to embed and keyword-index'),
          h('div', { class: 'check' }, textKindColumn, h('label', { for: 'corpus-text-kind-column' }, 'One column')),
          h('div', { class: 'field indent' }, h('label', { for: 'corpus-text-column', class: 'visually-hidden' }, 'Text column'), picker.textSelect),
          h('div', { class: 'check' }, textKindTemplate, h('label', { for: 'corpus-text-kind-template' }, 'A template of several columns')),
          h('div', { class: 'field indent' }, h('label', { for: 'corpus-text-template', class: 'visually-hidden' }, 'Text template'), template),
        ),
        picker.fields,
      );
    } catch (e) {
      if (!signal.aborted) clear(schemaBox, errorBox(e.message));
    }
  });
  template.addEventListener('input', () => (textKindTemplate.checked = true));

  const form = h(
    'form',
    {
      id: 'corpus-form',
      class: 'corpus-form',
      onsubmit: async (e) => {
        e.preventDefault();
        if (!picker) {
          clear(out, errorBox('Choose a dataset first.', { id: 'corpus-error' }));
          return;
        }
        let body;
        try {
          body = {
            name: name.value.trim(),
            dataset: dataset.value,
            id_column: picker.idSelect.value,
            text: textKindTemplate.checked ? template.value : picker.textSelect.value,
            fields: [...picker.fields.querySelectorAll('input:checked')].map((i) => i.value),
          };
          const o = parseOptionalJson(orders.value, 'Job orders');
          const r = parseOptionalJson(rules.value, 'Eligibility');
          if (o !== undefined) body.orders = o;
          if (r !== undefined) body.eligibility = r;
        } catch (err) {
          clear(out, errorBox(err.message, { id: 'corpus-error' }));
          return;
        }
        clear(out, loading('Creating…'));
        try {
          const created = await api.createCorpus(body);
          clear(out, h('p', { class: 'success', id: 'corpus-created', role: 'status' }, `Corpus ${created.name} was created and is ${created.status}.`));
          onCreated();
        } catch (err) {
          clear(out, errorBox(err.message, { id: 'corpus-error' }));
        }
      },
    },
    h('div', { class: 'grid' }, h('div', { class: 'field' }, h('label', { for: 'corpus-name' }, 'Name'), name, h('span', { class: 'muted small' }, 'a-z, 0-9, _ and -')), h('div', { class: 'field' }, h('label', { for: 'corpus-dataset' }, 'Dataset'), dataset)),
    schemaBox,
    h(
      'details',
      {},
      h('summary', {}, 'Job orders and eligibility rules (optional)'),
      h('div', { class: 'field' }, h('label', { for: 'corpus-orders' }, 'Job orders (JSON object)'), orders),
      h('div', { class: 'field' }, h('label', { for: 'corpus-eligibility' }, 'Eligibility rules (JSON list)'), rules),
    ),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', id: 'corpus-create' }, 'Create corpus')),
    out,
  );

  api
    .datasets()
    .then(({ datasets }) => !signal.aborted && dataset.append(...datasets.map((d) => h('option', { value: d.name }, d.name))))
    .catch((e) => !signal.aborted && clear(schemaBox, errorBox(e.message)));
  return h('section', { 'aria-labelledby': 'create-title', class: 'create' }, h('h2', { id: 'create-title' }, 'Create a corpus'), form);
}

export function render(root, { signal }) {
  // Creating needs corpora.manage, the catalog to pick a dataset from, and SQL: a corpus shows its dataset's
  // rows to every searcher, so the server lets only a role that may read them all make one.
  const cannotCreate = lacking('corpora.manage', 'datasets.read', 'sql');
  const list = h('ul', { id: 'corpora-list', class: 'cards' }, h('li', {}, loading()));
  const status = h('div', { id: 'corpora-status', 'aria-live': 'polite' });
  const openSet = new Set();
  const shown = { names: null, json: [] };
  let timer = null;

  async function refresh() {
    clearTimeout(timer);
    let corpora;
    try {
      corpora = (await api.corpora()).corpora;
    } catch (e) {
      if (!signal.aborted) clear(status, errorBox(e.message));
      return;
    }
    if (signal.aborted) return;
    clear(status);
    // Only cards whose corpus changed are redrawn, so polling does not steal focus from a steady card.
    const names = corpora.map((c) => c.name).join('\n');
    if (corpora.length && names === shown.names) {
      corpora.forEach((c, i) => {
        const json = JSON.stringify(c);
        if (json === shown.json[i]) return;
        list.children[i].replaceWith(corpusCard(c, openSet));
        shown.json[i] = json;
      });
    } else {
      clear(list, corpora.length ? corpora.map((c) => corpusCard(c, openSet)) : h('li', { class: 'muted' }, 'No corpus yet.'));
      shown.names = names;
      shown.json = corpora.map((c) => JSON.stringify(c));
    }
    list.dataset.busy = String(corpora.some(busy));
    if (corpora.some(busy)) timer = setTimeout(refresh, POLL_MS);
  }
  signal.addEventListener('abort', () => clearTimeout(timer));

  clear(
    root,
    h('h1', { text: 'Corpora' }),
    status,
    list,
    cannotCreate.length ? unavailable('corpus-create-unavailable', 'may not create corpora', cannotCreate) : createForm(refresh, signal),
  );
  refresh();
}
