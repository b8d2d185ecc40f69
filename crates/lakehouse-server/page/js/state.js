// Who the page acts as (from /v1/whoami) and the URL helpers every view shares. Kept apart from main.js so
// views can import it without importing the router that imports them.

export const session = {
  name: '',
  role: '',
  auth: false,
  policy: { corpora: '*', hidden_fields: [], sql: true },
};

export function setSession(who) {
  session.name = who.name || '';
  session.role = who.role || '';
  session.auth = Boolean(who.auth);
  const policy = who.policy || {};
  session.policy = {
    corpora: policy.corpora ?? '*',
    hidden_fields: Array.isArray(policy.hidden_fields) ? policy.hidden_fields : [],
    sql: policy.sql !== false,
  };
}

export const canSql = () => session.policy.sql;

// Creating a corpus needs a role that sees every corpus and every field; the server decides, the page only
// avoids offering a form that can only fail.
export const canCreateCorpora = () => session.policy.corpora === '*' && session.policy.hidden_fields.length === 0;

export const isHiddenField = (field) => session.policy.hidden_fields.includes(field);

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
