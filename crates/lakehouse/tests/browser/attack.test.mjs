// A hostile web page cannot drive an open-mode server (no keys, loopback) from the user's browser.
//
//   NODE_PATH=$HOME/.cache/lakehouse/node/node_modules LAKEHOUSE_URL=http://127.0.0.1:3110 \
//   node --test crates/lakehouse/tests/browser/attack.test.mjs
//
// LAKEHOUSE_URL: an open-mode server, best with some datasets (their names must not leak). The attacker's
// site is served by this test itself, from node:http on another port of 127.0.0.1, and Chromium is told that
// evil.example is 127.0.0.1, so the page runs at http://evil.example:<port>/ as a real other site would.
// Skipped, not failed, without LAKEHOUSE_URL. See docs/page.md.
//
// 1. The attacker's page sends what a browser lets any page send without asking (no-cors fetches, a
//    form, a beacon) and what needs a preflight, and tries to read the server's answers: it reads nothing,
//    and every write that reached the server was refused.
// 2. DNS rebinding: the browser is sent to http://evil.example:<server port>/, i.e. to the server under the
//    attacker's name, where the attacker's script would be same-origin with it: every answer is 421.
// 3. A client that is not a browser sees the store exactly as before, and the server's own page still works.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';

import { launchChromium } from './chromium.mjs';

const LH = (process.env.LAKEHOUSE_URL || '').replace(/\/+$/, '');
const EVIL = 'evil.example';
const TIMEOUT = 60_000;
// What the attacks try to create; none may exist afterwards.
const PWNED = ['pwned', 'pwned2', 'pwned3', 'pwned4', 'pwned5'];

const needServer = LH ? false : 'LAKEHOUSE_URL is not set';

let browser = null;
let attacker = null; // the attacker's web server
let attackerPort = 0;
let baseline = null; // the store as a client sees it before the attacks

// The attacker's page: every attack is awaited and every error caught; `window.results` holds what the
// page could read of each answer, and `window.done` says it finished.
function attackPage(target) {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Cute cats</title><link rel="icon" href="data:,"></head>
<body>
<h1>Cute cats</h1>
<iframe name="sink" style="display:none"></iframe>
<script>
const LH = ${JSON.stringify(target)};
const results = (window.results = []);

// What the page could learn from one request: the answer's type, status, headers and body, or the error.
async function attempt(name, run) {
  const r = { name };
  try {
    const res = await run();
    r.type = res.type;
    r.status = res.status;
    r.headers = [...res.headers.entries()];
    r.body = await res.text();
  } catch (e) {
    r.error = String((e && e.message) || e);
  }
  results.push(r);
}

// A real form posted into a hidden frame: the browser sends it without asking, the frame's document
// is the server's and cannot be read from here.
function submitForm() {
  return new Promise((resolve) => {
    const frame = document.querySelector('iframe[name=sink]');
    const form = document.createElement('form');
    form.method = 'POST';
    form.enctype = 'text/plain';
    form.target = 'sink';
    form.action = LH + '/v1/ingest/pwned2?mode=create';
    const field = document.createElement('input');
    field.type = 'hidden';
    field.name = 'a,b\\n1';
    field.value = '2\\n';
    form.append(field);
    document.body.append(form);
    const timer = setTimeout(() => resolve({ name: 'form post', error: 'the frame never loaded' }), 20000);
    frame.addEventListener('load', () => {
      clearTimeout(timer);
      let body = null;
      try {
        body = frame.contentDocument ? frame.contentDocument.documentElement.textContent : null;
      } catch (e) {
        body = null;
      }
      resolve({ name: 'form post', body, error: body === null ? 'the frame is not readable' : undefined });
    }, { once: true });
    form.submit();
  });
}

async function attack() {
  const csv = 'a,b\\n1,2\\n';
  const noCors = (path, init) => fetch(LH + path, { mode: 'no-cors', ...init });
  await attempt('ingest text/plain', () => noCors('/v1/ingest/pwned?mode=create', { method: 'POST', body: csv }));
  await attempt('ingest form-urlencoded', () =>
    noCors('/v1/ingest/pwned?mode=create&format=csv', { method: 'POST', body: new URLSearchParams({ 'a,b\\n1': '2' }) }));
  await attempt('ingest multipart', () => {
    const data = new FormData();
    data.append('file', new Blob([csv], { type: 'text/csv' }), 'pwned.csv');
    return noCors('/v1/ingest/pwned?mode=create&format=csv', { method: 'POST', body: data });
  });
  await attempt('vector index text/plain', () => noCors('/v1/vectors/index', { method: 'POST', body: '{"name":"pwned","dim":3}' }));
  await attempt('corpus text/plain', () =>
    noCors('/v1/matrix/corpora', { method: 'POST', body: '{"name":"pwned","dataset":"workers","id_column":"worker_id","text":"{first_name}"}' }));
  await attempt('sql text/plain', () => noCors('/v1/sql', { method: 'POST', body: '{"sql":"SELECT * FROM workers"}' }));
  await attempt('storage delete no-cors', () => noCors('/v1/storage/objects/pwned.txt', { method: 'DELETE' }));
  await attempt('storage put no-cors', () => noCors('/v1/storage/objects/pwned.txt', { method: 'PUT', body: 'pwned' }));
  // These need the server's consent in a preflight, which it does not give.
  await attempt('storage put cors', () => fetch(LH + '/v1/storage/objects/pwned.txt', { method: 'PUT', body: 'pwned' }));
  await attempt('storage delete cors', () => fetch(LH + '/v1/storage/objects/pwned.txt', { method: 'DELETE' }));
  await attempt('ingest text/csv cors', () =>
    fetch(LH + '/v1/ingest/pwned?mode=create', { method: 'POST', body: csv, headers: { 'Content-Type': 'text/csv' } }));
  await attempt('vector index json cors', () =>
    fetch(LH + '/v1/vectors/index', { method: 'POST', body: '{"name":"pwned","dim":3}', headers: { 'Content-Type': 'application/json' } }));
  results.push({ name: 'beacon', queued: navigator.sendBeacon(LH + '/v1/ingest/pwned4?mode=create&format=csv', csv) });
  results.push(await submitForm());
  // Reads: the browser hides the answers of another origin that does not allow this one.
  await attempt('datasets cors', () => fetch(LH + '/v1/catalog/datasets'));
  await attempt('whoami cors', () => fetch(LH + '/v1/whoami', { credentials: 'include' }));
  await attempt('datasets no-cors', () => noCors('/v1/catalog/datasets'));
  window.done = true;
}
attack();
</script>
</body></html>`;
}

async function api(path, init = {}) {
  const res = await fetch(LH + path, init);
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, headers: res.headers, text, json };
}

// What a client that is not a browser sees of the store: datasets and their versions, vector indexes and
// their sizes, corpora, and the raw objects outside the services' own prefixes with their entity tags.
async function storeView() {
  const datasets = await api('/v1/catalog/datasets');
  const indexes = await api('/v1/vectors/index');
  const corpora = await api('/v1/matrix/corpora');
  for (const r of [datasets, indexes, corpora]) assert.equal(r.status, 200, r.text);
  const reserved = ['datasets/', '_catalog/', 'vectors/', 'recordings/'];
  const objects = [];
  for (let after = '', more = true; more; ) {
    const page = await api(`/v1/storage/objects?limit=10000${after ? `&after=${encodeURIComponent(after)}` : ''}`);
    assert.equal(page.status, 200, page.text);
    for (const o of page.json.objects) {
      if (!reserved.some((p) => o.key.startsWith(p))) objects.push(`${o.key} ${o.size} ${o.etag}`);
    }
    more = page.json.truncated && page.json.objects.length > 0;
    if (more) after = page.json.objects[page.json.objects.length - 1].key;
  }
  return {
    datasets: datasets.json.datasets.map((d) => `${d.name}@v${d.version}`).sort(),
    indexes: indexes.json.indexes.map((i) => `${i.name}:${i.count}`).sort(),
    corpora: corpora.json.corpora.map((c) => c.name).sort(),
    objects: objects.sort(),
  };
}

before(async () => {
  if (needServer) return;
  attacker = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(attackPage(LH));
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not here');
    }
  });
  await new Promise((resolve) => attacker.listen(0, '127.0.0.1', resolve));
  attackerPort = attacker.address().port;
  baseline = await storeView();
  // The attacker's name, resolved to this machine as a rebinding DNS server would.
  browser = await launchChromium([`--host-resolver-rules=MAP ${EVIL} 127.0.0.1`]);
});

after(async () => {
  if (browser) await browser.close();
  if (attacker) await new Promise((resolve) => attacker.close(resolve));
});

// Runs `body` on a fresh page, with every answer the server sent to it recorded.
async function withPage(body) {
  const context = await browser.newContext();
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  const lhOrigin = new URL(LH).origin;
  const answers = [];
  const errors = [];
  page.on('response', (r) => {
    if (new URL(r.url()).origin === lhOrigin) answers.push(r);
  });
  page.on('pageerror', (e) => errors.push(e.message));
  try {
    await body(page, answers, errors);
  } finally {
    await context.close();
  }
}

// An answer the page read: anything but an error, or an opaque answer with nothing in it.
const readSomething = (r) => r.error === undefined && r.queued === undefined && !(r.type === 'opaque' && r.status === 0 && r.body === '');

for (const site of [EVIL, '127.0.0.1']) {
  test(`a page at ${site} reads nothing and changes nothing`, { skip: needServer }, async () => {
    await withPage(async (page, answers) => {
      await page.goto(`http://${site}:${attackerPort}/`);
      await page.waitForFunction(() => window.done === true);
      const results = await page.evaluate(() => window.results);
      const names = results.map((r) => r.name);
      assert.ok(names.includes('ingest text/plain') && names.includes('form post') && names.includes('datasets cors'), names.join(', '));
      assert.deepEqual(results.filter(readSomething), [], 'the page read an answer of the server');
      assert.ok(results.find((r) => r.name === 'datasets cors').error, 'a cross-origin read fails');

      // The form and the beacon go out on their own; wait until the server has answered both.
      const answered = (part) => answers.some((r) => r.url().includes(part));
      for (const part of ['/v1/ingest/pwned2', '/v1/ingest/pwned4']) {
        const deadline = Date.now() + TIMEOUT;
        while (!answered(part)) {
          assert.ok(Date.now() < deadline, `the server never answered ${part}`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      // Whatever reached the server was refused there, not merely hidden by the browser; and no answer
      // invited this origin to read it.
      const writes = answers.filter((r) => !['GET', 'HEAD', 'OPTIONS'].includes(r.request().method()));
      assert.ok(writes.length >= 6, `the simple writes reached the server (${writes.length} answers)`);
      for (const r of writes) {
        assert.equal(r.status(), 403, `${r.request().method()} ${r.url()} was answered ${r.status()}`);
      }
      for (const r of answers) {
        const headers = await r.allHeaders();
        assert.equal(headers['access-control-allow-origin'], undefined, `${r.url()} allows another origin to read it`);
      }
    });
  });
}

test('a page under the attacker name pointed at the server is misdirected', { skip: needServer }, async () => {
  const port = new URL(LH).port || '80';
  const rebound = `http://${EVIL}:${port}`;
  const names = baseline.datasets.map((d) => d.split('@')[0]);
  await withPage(async (page) => {
    for (const path of ['/v1/catalog/datasets', '/']) {
      const res = await page.goto(rebound + path);
      assert.equal(res.status(), 421, `${path} under ${EVIL}`);
      const text = await res.text();
      assert.match(text, /misdirected_host/);
      for (const name of names) assert.ok(!text.includes(`"${name}"`), `${path} shows dataset ${name}`);
    }
    // This document is same-origin with the server as far as the browser knows: it can send any request
    // and read every answer, and every answer is the refusal.
    const seen = await page.evaluate(async () => {
      const send = async (path, init) => {
        const res = await fetch(path, init);
        return { path, method: (init && init.method) || 'GET', status: res.status, body: await res.text() };
      };
      return [
        await send('/v1/catalog/datasets'),
        await send('/v1/whoami'),
        await send('/v1/sql', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"sql":"SELECT 1"}' }),
        await send('/v1/ingest/pwned3?mode=create', { method: 'POST', headers: { 'Content-Type': 'text/csv' }, body: 'a,b\n1,2\n' }),
        await send('/v1/vectors/index', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"name":"pwned5","dim":3}' }),
        await send('/v1/storage/objects/pwned.txt', { method: 'PUT', body: 'pwned' }),
      ];
    });
    for (const r of seen) {
      assert.equal(r.status, 421, `${r.method} ${r.path}: ${r.body}`);
      assert.match(r.body, /misdirected_host/);
      for (const name of names) assert.ok(!r.body.includes(`"${name}"`), `${r.path} shows dataset ${name}`);
    }
  });
});

test('the store is unchanged and the own page still works', { skip: needServer }, async () => {
  assert.deepEqual(await storeView(), baseline, 'the store changed');
  const { datasets } = (await api('/v1/catalog/datasets')).json;
  const { indexes } = (await api('/v1/vectors/index')).json;
  for (const name of PWNED) {
    assert.ok(!datasets.some((d) => d.name === name), `dataset ${name} exists`);
    assert.ok(!indexes.some((i) => i.name === name), `vector index ${name} exists`);
  }
  assert.equal((await fetch(`${LH}/v1/storage/objects/pwned.txt`, { method: 'HEAD' })).status, 404);

  // The server's own page, from the server's own origin: whoami answers, and a POST of its own (SQL) goes
  // through the same guard that refused the attacker.
  await withPage(async (page, answers, errors) => {
    await page.goto(`${LH}/#/sql?q=${encodeURIComponent('SELECT 1 AS one')}`);
    await page.waitForFunction(() => document.querySelector('#role-badge').textContent.trim() === 'admin');
    assert.match(await page.textContent('#who-name'), /open mode/);
    await page.waitForSelector('#sql-output[data-state="done"]');
    assert.equal((await page.textContent('#sql-result tbody')).trim(), '1');
    const sql = answers.find((r) => r.url().endsWith('/v1/sql'));
    assert.equal(sql && sql.status(), 200);
    assert.deepEqual(errors, [], 'the page threw an uncaught error');
  });
});
