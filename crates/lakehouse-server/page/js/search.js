// Co-pilot search: a query and/or a job order, filters, and the hits with why each one is (in)eligible.
// The whole form lives in the URL (#/search?q=…&order=…&mode=…), so a search can be reloaded, shared and
// reached again with Back. Hit fields are rendered from whatever the answer holds: the server masks what
// the caller's role may not see, and the page never names a field it expects to be hidden.

import { api } from './api.js';
import { clear, errorBox, fmtMs, fmtNumber, h, loading } from './dom.js';
import { buildHash, can, recordHash } from './state.js';

const MODES = [
  ['hybrid', 'Hybrid'],
  ['vector', 'Vector'],
  ['keyword', 'Keyword'],
];
const STATUS_SUGGESTIONS = ['active', 'inactive', 'placed', 'do_not_rehire'];
const ORDERS_SQL = 'SELECT order_id, title, city, state FROM job_orders ORDER BY order_id';

function field(id, labelText, control, hint) {
  return h('div', { class: 'field' }, h('label', { for: id }, labelText), control, hint ? h('span', { class: 'muted small' }, hint) : null);
}

function input(id, attrs = {}) {
  return h('input', { id, name: id, type: 'text', autocomplete: 'off', ...attrs });
}

function fieldValue(value) {
  if (value === null || value === undefined || value === '') return h('span', { class: 'null' }, '—');
  if (Array.isArray(value)) return value.length ? value.map((v) => (typeof v === 'object' ? JSON.stringify(v) : String(v))).join(', ') : h('span', { class: 'null' }, 'none');
  if (typeof value === 'object') return JSON.stringify(value);
  return typeof value === 'number' ? fmtNumber(value) : String(value);
}

// A readable heading from whichever name-like fields the role can see; the id is always shown as well.
function hitTitle(hit) {
  const f = hit.fields || {};
  const person = [f.first_name, f.last_name].filter((v) => typeof v === 'string' && v).join(' ');
  return person || (typeof f.title === 'string' && f.title) || (typeof f.name === 'string' && f.name) || hit.id;
}

function hitCard(hit) {
  const eligible = hit.eligible !== false;
  const reasons = Array.isArray(hit.reasons) ? hit.reasons : [];
  return h(
    'li',
    { class: `hit ${eligible ? '' : 'ineligible'}`, 'data-testid': 'hit', 'data-eligible': String(eligible), 'data-id': hit.id },
    h(
      'article',
      { 'aria-label': `${hitTitle(hit)} (${hit.id})` },
      h(
        'header',
        { class: 'hit-head' },
        h('h3', {}, hitTitle(hit)),
        h('span', { class: `badge ${eligible ? 'ok' : 'bad'}`, 'data-testid': 'eligibility' }, eligible ? 'eligible' : 'ineligible'),
      ),
      h(
        'p',
        { class: 'hit-meta muted small' },
        h('code', {}, hit.id),
        ` · ${hit.corpus} · score `,
        h('span', { class: 'score' }, typeof hit.score === 'number' ? hit.score.toFixed(4) : String(hit.score)),
      ),
      reasons.length
        ? h('ul', { class: 'reasons', 'data-testid': 'reasons', 'aria-label': 'Why not eligible' }, reasons.map((r) => h('li', {}, r)))
        : null,
      h(
        'dl',
        { class: 'fields' },
        Object.entries(hit.fields || {}).map(([k, v]) => h('div', { class: 'kv' }, h('dt', {}, k), h('dd', {}, fieldValue(v)))),
      ),
    ),
  );
}

function showAnswer(out, answer) {
  const hits = answer.hits || [];
  const eligibleCount = hits.filter((x) => x.eligible !== false).length;
  const versions = Object.entries(answer.corpora || {}).map(([name, c]) => `${name} v${c && c.dataset_version !== null && c.dataset_version !== undefined ? c.dataset_version : '?'}`);
  const excluded = answer.excluded || { count: 0, by_reason: {} };
  const reasons = Object.entries(excluded.by_reason || {}).sort((a, b) => b[1] - a[1]);

  clear(
    out,
    h(
      'p',
      { class: 'result-meta', id: 'search-meta' },
      h('strong', { id: 'hit-count' }, `${hits.length} hit${hits.length === 1 ? '' : 's'}`),
      eligibleCount !== hits.length ? ` (${eligibleCount} eligible)` : '',
      ' · ',
      h('span', { id: 'search-latency', title: 'elapsed_ms: time the server took to answer' }, fmtMs(answer.elapsed_ms)),
      versions.length ? ' · ' : '',
      versions.length ? h('span', { id: 'search-versions' }, `dataset ${versions.join(', ')}`) : null,
    ),
    h(
      'section',
      { id: 'excluded', class: 'excluded', 'aria-labelledby': 'excluded-title' },
      h('h2', { id: 'excluded-title' }, `Left out: ${fmtNumber(excluded.count || 0)}`),
      reasons.length
        ? h('ul', { id: 'excluded-reasons' }, reasons.map(([reason, n]) => h('li', { 'data-reason': reason }, h('span', { class: 'reason' }, reason), ' ', h('span', { class: 'count' }, fmtNumber(n)))))
        : h('p', { class: 'muted small' }, 'No candidate was left out by the eligibility rules.'),
    ),
    hits.length ? h('ol', { class: 'hits', id: 'hits' }, hits.map(hitCard)) : h('p', { id: 'no-hits' }, 'No hits.'),
  );
}

function readFilters(get) {
  const filters = {};
  if (get('state')) filters.state = get('state');
  if (get('status')) filters.status = get('status');
  const certs = get('certs')
    .split(',')
    .map((c) => c.trim())
    .filter(Boolean);
  if (certs.length) filters.certifications = { contains_all: certs };
  if (get('rating') !== '' && Number.isFinite(Number(get('rating')))) filters.rating = { gte: Number(get('rating')) };
  return filters;
}

export function render(root, { params, signal }) {
  const p = (k) => params.get(k) || '';
  const query = input('search-query', { type: 'search', value: p('q'), placeholder: 'forklift operator with OSHA 10 near Dallas' });
  const order = input('search-order', { list: 'order-options', value: p('order'), placeholder: 'JO-00012 or type to search', 'aria-describedby': 'order-summary' });
  const orderOptions = h('datalist', { id: 'order-options' });
  const orderSummary = h('span', { id: 'order-summary', class: 'muted small' });
  const corpus = h('select', { id: 'search-corpus', name: 'corpus' }, h('option', { value: '*' }, 'All corpora'));
  const mode = h('select', { id: 'search-mode', name: 'mode' }, MODES.map(([v, t]) => h('option', { value: v, selected: v === (p('mode') || 'hybrid') }, t)));
  const k = input('search-k', { type: 'number', min: '1', max: '100', value: p('k') || '10', inputmode: 'numeric' });
  const ineligible = h('input', { id: 'search-ineligible', name: 'ineligible', type: 'checkbox', checked: p('ineligible') === '1' });
  const state = input('filter-state', { value: p('state'), placeholder: 'TX', autocapitalize: 'characters' });
  const status = input('filter-status', { value: p('status'), list: 'status-options', placeholder: 'active' });
  const certs = input('filter-certs', { value: p('certs'), placeholder: 'OSHA 10, Forklift Certification' });
  const rating = input('filter-rating', { type: 'number', min: '0', max: '5', step: '0.1', value: p('rating'), inputmode: 'decimal' });
  const out = h('section', { id: 'search-results', 'aria-live': 'polite', 'aria-label': 'Results' });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'search-run' }, 'Search');

  // Filters fold away on a phone unless some are set, so the hits are not pushed below the fold.
  const filtersSet = ['state', 'status', 'certs', 'rating'].filter((key) => p(key)).length;
  const filtersBox = h(
    'details',
    { class: 'filters', open: filtersSet > 0 || window.matchMedia('(min-width: 720px)').matches },
    h('summary', {}, filtersSet ? `Filters (${filtersSet} set)` : 'Filters'),
    h(
      'div',
      { class: 'grid compact' },
      field('filter-state', 'State', state),
      field('filter-status', 'Status', [status, h('datalist', { id: 'status-options' }, STATUS_SUGGESTIONS.map((v) => h('option', { value: v })))]),
      field('filter-rating', 'Minimum rating', rating),
      field('filter-certs', 'Certifications', certs, 'comma-separated; all required'),
    ),
  );
  filtersBox.querySelector('#filter-certs').parentElement.classList.add('wide');

  const orderField = field('search-order', 'Job order', [order, orderOptions, orderSummary]);
  orderField.classList.add('wide');
  orderField.hidden = !can('sql'); // the picker is filled by SQL; without SQL there is nothing to pick from
  const orders = new Map();
  const describeOrder = () => {
    const o = orders.get(order.value.trim());
    orderSummary.textContent = o ? `${o.title} · ${o.city}, ${o.state}` : '';
  };
  order.addEventListener('input', describeOrder);

  const current = () => ({
    q: query.value.trim(),
    order: can('sql') ? order.value.trim() : p('order'),
    corpus: corpus.value,
    mode: mode.value,
    k: k.value && k.value !== '10' ? k.value : '',
    ineligible: ineligible.checked ? '1' : '',
    state: state.value.trim(),
    status: status.value.trim(),
    certs: certs.value.trim(),
    rating: rating.value.trim(),
  });

  let runId = 0;
  async function run(s) {
    const mine = ++runId;
    const body = { query: s.q, k: Number(s.k || 10), mode: s.mode || 'hybrid' };
    if (s.corpus && s.corpus !== '*') body.corpora = [s.corpus];
    if (s.order) body.order_id = s.order;
    if (s.ineligible) body.include_ineligible = true;
    const filters = readFilters((key) => s[key] || '');
    if (Object.keys(filters).length) body.filters = filters;
    submit.disabled = true;
    out.dataset.state = 'running';
    clear(out, loading('Searching…'));
    try {
      const answer = await api.search(body);
      if (signal.aborted || mine !== runId) return;
      showAnswer(out, answer);
      out.dataset.state = 'done';
    } catch (e) {
      if (signal.aborted || mine !== runId) return;
      clear(out, errorBox(e.message, { id: 'search-error' }));
      out.dataset.state = 'error';
    } finally {
      if (mine === runId) submit.disabled = false;
    }
  }

  const form = h(
    'form',
    {
      class: 'search-form',
      role: 'search',
      onsubmit: (e) => {
        e.preventDefault();
        const s = current();
        recordHash(buildHash('search', s));
        run(s);
      },
    },
    h('label', { for: 'search-query' }, 'Who are you looking for?'),
    h('div', { class: 'query-row' }, query, submit),
    h(
      'div',
      { class: 'grid compact' },
      orderField,
      field('search-corpus', 'Corpus', corpus),
      field('search-mode', 'Mode', mode),
      field('search-k', 'Hits (k)', k),
    ),
    filtersBox,
    h('div', { class: 'check' }, ineligible, h('label', { for: 'search-ineligible' }, 'Include ineligible candidates, with their reasons')),
  );

  clear(root, h('h1', { class: 'visually-hidden' }, 'Co-pilot search'), form, out);
  query.focus();

  if (can('sql')) {
    api
      .sql(ORDERS_SQL, 10000)
      .then((r) => {
        if (signal.aborted) return;
        for (const [id, title, city, st] of r.rows) {
          orders.set(id, { title, city, state: st });
          orderOptions.append(h('option', { value: id }, `${title} · ${city}, ${st}`));
        }
        describeOrder();
      })
      .catch((e) => {
        if (!signal.aborted) orderSummary.textContent = `Job orders could not be listed: ${e.message}`;
      });
  }

  // Corpora come first: without a corpus in the URL, the default is the first corpus that job orders apply
  // to (the workers), which is what a recruiter with an order means; "All corpora" stays one click away.
  api
    .corpora()
    .then(({ corpora }) => {
      if (signal.aborted) return;
      for (const c of corpora) {
        corpus.append(h('option', { value: c.name }, c.status === 'ready' ? c.name : `${c.name} (${c.status})`));
      }
      const wanted = params.has('corpus') ? p('corpus') : (corpora.find((c) => c.definition && c.definition.orders) || {}).name || '*';
      corpus.value = [...corpus.options].some((o) => o.value === wanted) ? wanted : '*';
    })
    .catch((e) => {
      if (!signal.aborted) out.prepend(errorBox(`Corpora could not be listed: ${e.message}`));
    })
    .finally(() => {
      if (!signal.aborted && (p('q') || p('order'))) run(current());
    });
}
