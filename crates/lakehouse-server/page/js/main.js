// Boot, identity and routing. The page first asks /v1/whoami who it acts as (asking for a key when the
// server wants one), then renders the view the URL names. Every view is a module with
// render(root, { path, params, signal }); `signal` aborts when the view is left, so its polling and late
// answers stop touching the page.

import { api, getKey, setKey } from './api.js';
import { clear, h } from './dom.js';
import { can, parseHash, routeState, session, setSession, unavailable } from './state.js';
import * as search from './search.js';
import * as sql from './sql.js';
import * as datasets from './datasets.js';
import * as upload from './upload.js';
import * as corpora from './corpora.js';

const views = { search, sql, datasets, upload, corpora };
const titles = { search: 'Search', sql: 'SQL', datasets: 'Datasets', upload: 'Upload', corpora: 'Corpora' };
// The actions a view needs (any one of them) and what the role may not do without them. A view the key
// cannot use leaves the nav, and its URL says why instead of showing controls that could only fail.
const needs = {
  search: [['search'], 'may not search'],
  sql: [['sql'], 'may not run SQL'],
  datasets: [['datasets.read'], 'may not read the catalog'],
  upload: [['datasets.write'], 'may not upload data'],
  corpora: [['search', 'corpora.manage'], 'may not see corpora'],
};
const allowed = (name) => needs[name][0].some(can);

const viewEl = document.getElementById('view');
const dialog = document.getElementById('key-dialog');
const keyForm = document.getElementById('key-form');
const keyInput = document.getElementById('key-input');
const keyMessage = document.getElementById('key-message');
const keyCancel = document.getElementById('key-cancel');

let identified = false;
let leaveView = null;

function showWho() {
  document.getElementById('who-name').textContent = session.auth ? session.name : `${session.name} (open mode)`;
  const badge = document.getElementById('role-badge');
  badge.textContent = session.role;
  badge.dataset.role = session.role;
  document.getElementById('change-key').hidden = !session.auth;
  document.getElementById('forget-key').hidden = !session.auth;
  for (const link of document.querySelectorAll('nav a[data-view]')) {
    link.parentElement.hidden = !allowed(link.dataset.view);
  }
}

function askForKey(message) {
  keyMessage.hidden = !message;
  keyMessage.textContent = message || '';
  keyInput.value = '';
  // Without a working identity there is nothing behind the dialog to go back to.
  keyCancel.hidden = !identified;
  if (!dialog.open) dialog.showModal();
  keyInput.focus();
}

async function identify() {
  try {
    setSession(await api.whoami());
  } catch (e) {
    if (e.status === 401) {
      identified = false;
      askForKey(e.message);
      return false;
    }
    clear(
      viewEl,
      h('h1', { text: 'The server did not say who you are' }),
      h('p', { class: 'error', role: 'alert' }, e.message),
      h('button', { type: 'button', onclick: () => identify().then((ok) => ok && route(true)) }, 'Try again'),
    );
    return false;
  }
  identified = true;
  showWho();
  return true;
}

function markNav(name) {
  for (const link of document.querySelectorAll('nav a[data-view]')) {
    if (link.dataset.view === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function route(force = false) {
  if (!identified) return;
  if (!force && location.hash === routeState.rendered) return;
  routeState.rendered = location.hash;
  if (leaveView) leaveView.abort();
  leaveView = new AbortController();

  const { path, params } = parseHash();
  // The default is search, or the first view the key may use.
  const name = path[0] || Object.keys(needs).find(allowed) || 'search';
  markNav(name);
  const root = clear(viewEl);
  root.dataset.view = name;
  document.title = `${titles[name] || 'Not found'} · Lakehouse`;

  if (!views[name]) {
    clear(root, h('h1', { text: 'Not found' }), h('p', {}, 'No view is called ', h('code', { text: name }), '. ', h('a', { href: '#/search' }, 'Go to search'), '.'));
    return;
  }
  if (!allowed(name)) {
    const [actions, what] = needs[name];
    clear(root, h('h1', { text: titles[name] }), unavailable(`${name}-unavailable`, what, actions));
    return;
  }
  views[name].render(root, { path: path.slice(1), params, signal: leaveView.signal });
}

keyForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  const key = keyInput.value.trim();
  if (!key) return;
  const previous = getKey();
  setKey(key);
  const submit = document.getElementById('key-submit');
  submit.disabled = true;
  try {
    setSession(await api.whoami());
  } catch (err) {
    setKey(previous);
    submit.disabled = false;
    keyMessage.hidden = false;
    keyMessage.textContent = err.message;
    keyInput.select();
    return;
  }
  submit.disabled = false;
  identified = true;
  dialog.close();
  showWho();
  route(true); // a new identity may see different corpora and fields
});

keyCancel.addEventListener('click', () => dialog.close());
dialog.addEventListener('cancel', (e) => {
  if (!identified) e.preventDefault();
});

document.getElementById('change-key').addEventListener('click', () => askForKey(''));
document.getElementById('forget-key').addEventListener('click', async () => {
  setKey('');
  identified = false;
  clear(viewEl, h('p', { class: 'muted', text: 'The key was forgotten.' }));
  if (await identify()) route(true);
});
document.getElementById('skip-link').addEventListener('click', () => viewEl.focus());

window.addEventListener('lakehouse:unauthorized', (e) => {
  if (!dialog.open) askForKey(e.detail && e.detail.message);
});
window.addEventListener('hashchange', () => route());
window.addEventListener('popstate', () => route());

identify().then((ok) => ok && route(true));
