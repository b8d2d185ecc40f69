// Who the page acts as (from /v1/whoami) and the URL helpers every view shares. Kept apart from main.js so
// views can import it without importing the router that imports them.

import { h } from './dom.js';

// The server's fixed list of actions a role may be given (GET /v1/whoami answers the caller's subset).
export const ACTIONS = [
  'search',
  'sql',
  'datasets.read',
  'datasets.write',
  'datasets.overwrite',
  'datasets.delete',
  'corpora.manage',
  'corpora.delete',
  'vectors.read',
  'vectors.write',
  'vectors.delete',
  'storage.read',
  'storage.write',
  'embed',
  'recordings.read',
];

export const session = {
  name: '',
  role: '',
  auth: false,
  policy: { actions: [...ACTIONS], corpora: '*', hidden_fields: [] },
};

export function setSession(who) {
  session.name = who.name || '';
  session.role = who.role || '';
  session.auth = Boolean(who.auth);
  const policy = who.policy || {};
  let actions = Array.isArray(policy.actions) ? policy.actions.filter((a) => typeof a === 'string') : null;
  // Without keys the caller is the admin; a server that does not list actions then still allows them all.
  // With keys, an unlisted action is offered nowhere: the page must not promise what may be refused.
  if (!actions) actions = session.auth ? [] : [...ACTIONS];
  session.policy = {
    actions,
    corpora: policy.corpora ?? '*',
    hidden_fields: Array.isArray(policy.hidden_fields) ? policy.hidden_fields : [],
  };
}

// Whether the key may do `action`. The page offers only what this allows; the server still decides, and
// its 403 names the missing action should the two ever disagree.
export const can = (action) => session.policy.actions.includes(action);

// Of `actions`, those the key lacks.
export const lacking = (...actions) => actions.filter((a) => !can(a));

// A short note in place of something the key may not use: `what` says what ("may not run SQL"), and the
// note names the actions the role lacks (`missing`), as the server's 403 would.
export function unavailable(id, what, missing) {
  const codes = missing.flatMap((a, i) => [i ? (i === missing.length - 1 ? ' and ' : ', ') : '', h('code', {}, a)]);
  const lacks = missing.length > 1 ? ': it lacks the actions ' : ': it lacks the action ';
  return h('p', { id, class: 'muted', role: 'status' }, `The role ${session.role} ${what}`, lacks, ...codes, '.');
}

// The server matches hidden fields case-insensitively, as SQL matches column names.
export const isHiddenField = (field) => session.policy.hidden_fields.some((f) => f.toLowerCase() === String(field).toLowerCase());

// "#/datasets/workers?v=3" → { path: ["datasets", "workers"], params: URLSearchParams("v=3") }
export function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#/, '');
  const q = raw.indexOf('?');
  const pathPart = q === -1 ? raw : raw.slice(0, q);
  const query = q === -1 ? '' : raw.slice(q + 1);
  const path = pathPart
    .split('/')
    .filter(Boolean)
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
  return { path, params: new URLSearchParams(query) };
}

export function buildHash(path, params = {}) {
  const segments = (Array.isArray(path) ? path : [path]).map((s) => encodeURIComponent(s));
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '' && value !== false) search.set(key, String(value));
  }
  const qs = search.toString();
  return `#/${segments.join('/')}${qs ? `?${qs}` : ''}`;
}

// Records the view's state in the URL (a new history entry, so Back returns to the previous search) without
// making the router render the view again; main.js compares against `rendered` to tell the two apart.
export const routeState = { rendered: null };

export function recordHash(hash) {
  if (location.hash === hash) return;
  history.pushState(null, '', hash);
  routeState.rendered = location.hash;
}
