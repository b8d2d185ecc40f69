// The only module that talks to the server. Every call goes to the page's own origin (relative URLs),
// carries the API key when one is kept, and turns the API's JSON error into an ApiError whose message is
// the server's own words, so views can show it as is.

const KEY_STORAGE = 'lakehouse.key';

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export function getKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) || '';
  } catch {
    return ''; // storage can be disabled; the page then simply asks again
  }
}

export function setKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    /* nothing to keep it in */
  }
}

function authHeaders() {
  const key = getKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

// A 401 anywhere means the key is missing or stale: main.js listens and asks for a key again.
function announceUnauthorized(error) {
  window.dispatchEvent(new CustomEvent('lakehouse:unauthorized', { detail: error }));
}

function toError(status, text) {
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON: a proxy or the network spoke, not the API */
  }
  const err = body && body.error;
  if (err && typeof err.message === 'string') {
    return new ApiError(status, err.code || 'error', err.message, err.details);
  }
  const snippet = (text || '').trim().slice(0, 200);
  return new ApiError(status, 'http_error', `The server answered HTTP ${status}${snippet ? `: ${snippet}` : ''}`);
}

// A JSON body always says so: the server refuses a body declared as anything else (415), since plain text
// and forms are what another site's page can send without the browser asking first.
export async function request(method, path, { json, body, headers = {}, quiet401 = false } = {}) {
  const init = { method, headers: { ...authHeaders(), ...headers } };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers['Content-Type'] = 'application/json';
  } else if (body !== undefined) {
    init.body = body;
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'network_error', `Could not reach the server (${e.message}).`);
  }
  const text = await res.text();
  if (!res.ok) {
    const error = toError(res.status, text);
    if (res.status === 401 && !quiet401) announceUnauthorized(error);
    throw error;
  }
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(res.status, 'bad_json', 'The server answered with something that is not JSON.');
  }
}

const enc = encodeURIComponent;

export const api = {
  whoami: () => request('GET', '/v1/whoami', { quiet401: true }),
  health: () => request('GET', '/health'),
  datasets: () => request('GET', '/v1/catalog/datasets'),
  dataset: (name, version) =>
    version === undefined || version === null || version === ''
      ? request('GET', `/v1/catalog/datasets/${enc(name)}`)
      : request('GET', `/v1/catalog/datasets/${enc(name)}/versions/${enc(version)}`),
  sql: (sql, maxRows = 1000) => request('POST', '/v1/sql', { json: { sql, max_rows: maxRows } }),
  corpora: () => request('GET', '/v1/matrix/corpora'),
  corpus: (name) => request('GET', `/v1/matrix/corpora/${enc(name)}`),
  createCorpus: (definition) => request('POST', '/v1/matrix/corpora', { json: definition }),
  search: (body) => request('POST', '/v1/matrix/search', { json: body }),
};

// Uploads go through XMLHttpRequest because fetch has no upload progress; onProgress(loaded, total)
// follows the bytes actually handed to the network. The caller names the body's format and type (the
// ingest route refuses text/plain and form types, and without a type would read CSV).
export function uploadFile(dataset, { mode, evolve, format, contentType, file, onProgress }) {
  const params = new URLSearchParams({ mode, format });
  if (evolve) params.set('evolve', evolve);
  const url = `/v1/ingest/${enc(dataset)}?${params}`;
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    xhr.setRequestHeader('Content-Type', contentType);
    const key = getKey();
    if (key) xhr.setRequestHeader('Authorization', `Bearer ${key}`);
    xhr.upload.onprogress = (e) => {
      if (onProgress) onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    };
    xhr.upload.onload = () => {
      if (onProgress) onProgress(file.size, file.size);
    };
    xhr.onerror = () => reject(new ApiError(0, 'network_error', 'The upload could not reach the server.'));
    xhr.onabort = () => reject(new ApiError(0, 'aborted', 'The upload was cancelled.'));
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(JSON.parse(xhr.responseText));
        } catch {
          reject(new ApiError(xhr.status, 'bad_json', 'The server answered with something that is not JSON.'));
        }
        return;
      }
      const error = toError(xhr.status, xhr.responseText);
      if (xhr.status === 401) announceUnauthorized(error);
      reject(error);
    };
    xhr.send(file);
  });
}
