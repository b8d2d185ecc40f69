// End-to-end tests of the browser page, in headless Chromium through playwright-core.
//
//   NODE_PATH=$HOME/.cache/lakehouse/node/node_modules \
//   LAKEHOUSE_URL=http://127.0.0.1:3110 \
//   LAKEHOUSE_AUTH_URL=http://127.0.0.1:3111 LAKEHOUSE_ADMIN_KEY=… LAKEHOUSE_CLIENT_KEY=… \
//   LAKEHOUSE_SCREENSHOTS="$(mktemp -d)" \
//   node --test crates/lakehouse/tests/browser/
//
// LAKEHOUSE_URL: an open-mode server with workers, job_orders and timesheets ingested and the corpora
// workers and job_orders ready. LAKEHOUSE_AUTH_URL: a server with keys, workers and job_orders ingested,
// corpus workers ready, and a client role that hides email, phone, last_name and pay_rate_min and whose only
// action is search. A test whose server is not given is skipped, not failed. See docs/page.md.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { launchChromium } from './chromium.mjs';

const OPEN = (process.env.LAKEHOUSE_URL || '').replace(/\/+$/, '');
const AUTH = (process.env.LAKEHOUSE_AUTH_URL || '').replace(/\/+$/, '');
const ADMIN_KEY = process.env.LAKEHOUSE_ADMIN_KEY || '';
const CLIENT_KEY = process.env.LAKEHOUSE_CLIENT_KEY || '';
const SHOTS = process.env.LAKEHOUSE_SCREENSHOTS || '';
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };
const TIMEOUT = 60_000; // debug builds answer slowly; every wait is for a real event, never a fixed sleep

const needOpen = OPEN ? false : 'LAKEHOUSE_URL is not set';
const needAuth = AUTH && ADMIN_KEY && CLIENT_KEY ? false : 'LAKEHOUSE_AUTH_URL, LAKEHOUSE_ADMIN_KEY and LAKEHOUSE_CLIENT_KEY are not all set';

let browser = null;

before(async () => {
  if (needOpen && needAuth) return;
  browser = await launchChromium();
});

after(async () => {
  if (browser) await browser.close();
});

// Runs `body` on a fresh page of `base`, then always saves a full-page screenshot named after the test, and
// (when the body passed) checks that the page asked no host but the server and threw no uncaught error.
async function withPage(t, base, viewport, body) {
  const context = await browser.newContext({ viewport });
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  const origin = new URL(base).origin;
  const foreign = [];
  const errors = [];
  page.on('request', (r) => {
    const url = new URL(r.url());
    if (['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol) && url.origin !== origin) foreign.push(r.url());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  try {
    await body(page);
  } finally {
    if (SHOTS) {
      mkdirSync(SHOTS, { recursive: true });
      const file = `${t.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '')}.png`;
      await page.screenshot({ path: join(SHOTS, file), fullPage: true }).catch(() => {});
    }
    await context.close();
  }
  assert.deepEqual(foreign, [], 'the page asked a host other than the server');
  assert.deepEqual(errors, [], 'the page threw an uncaught error');
}

async function apiJson(base, path, { key, method = 'GET', body, headers = {} } = {}) {
  const res = await fetch(base + path, {
    method,
    body,
    headers: { ...(key ? { Authorization: `Bearer ${key}` } : {}), ...headers },
  });
  return { status: res.status, json: await res.json().catch(() => null) };
}

const isSearch = (r) => r.url().endsWith('/v1/matrix/search') && r.request().method() === 'POST';
const isSql = (r) => r.url().endsWith('/v1/sql') && r.request().method() === 'POST';

async function noHorizontalScroll(page) {
  const { scroll, client } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
  assert.ok(scroll <= client, `the page scrolls sideways (${scroll} px wide in ${client} px)`);
}

test('search with reasons', { skip: needOpen }, async (t) => {
  await withPage(t, OPEN, DESKTOP, async (page) => {
    await page.goto(`${OPEN}/#/search`);
    await page.waitForSelector('#order-options option', { state: 'attached' });
    const orders = await page.$$eval('#order-options option', (os) => os.map((o) => o.value));
    assert.ok(orders.length > 0, 'the job-order picker lists orders');
    assert.equal(await page.inputValue('#search-corpus'), 'workers', 'the corpus job orders apply to is chosen');
    await page.check('#search-ineligible');

    // An order whose candidates include an ineligible one; the first usually is, a few are tried.
    let answer = null;
    let order = null;
    for (order of orders.slice(0, 5)) {
      await page.fill('#search-order', order);
      const response = page.waitForResponse(isSearch);
      await page.press('#search-query', 'Enter');
      const res = await response;
      const sent = res.request().postDataJSON();
      assert.equal(sent.order_id, order);
      assert.equal(sent.include_ineligible, true);
      answer = await res.json();
      await page.waitForSelector('#search-results[data-state="done"]');
      if (answer.hits.some((h) => h.eligible === false && h.reasons.length)) break;
    }
    assert.ok(answer.hits.some((h) => h.eligible === false && h.reasons.length), 'some order has an ineligible candidate');
    assert.match(await page.textContent('#order-summary'), /\S/, 'the chosen order is described');
    assert.match(page.url(), new RegExp(`order=${order}.*ineligible=1`));

    const cards = page.locator('[data-testid="hit"]');
    assert.equal(await cards.count(), answer.hits.length);
    const first = answer.hits[0];
    const firstCard = cards.first();
    for (const [key, value] of Object.entries(first.fields)) {
      const shown = firstCard.locator('.kv', { has: page.locator('dt', { hasText: new RegExp(`^${key}$`) }) });
      assert.equal(await shown.count(), 1, `field ${key} is shown`);
      if (typeof value === 'string' && value) assert.ok((await shown.locator('dd').textContent()).includes(value));
    }

    const bad = answer.hits.find((h) => h.eligible === false && h.reasons.length);
    const badCard = page.locator(`[data-testid="hit"][data-id="${bad.id}"]`);
    assert.equal((await badCard.locator('[data-testid="eligibility"]').textContent()).trim(), 'ineligible');
    assert.deepEqual(await badCard.locator('[data-testid="reasons"] li').allTextContents(), bad.reasons);

    const byReason = Object.entries(answer.excluded.by_reason);
    assert.ok(byReason.length > 0, 'the answer left candidates out');
    for (const [reason, n] of byReason) {
      const count = await page.locator(`#excluded-reasons li[data-reason="${reason}"] .count`).textContent();
      assert.equal(Number(count.replace(/\D/g, '')), n, `excluded count for ${reason}`);
    }
    assert.match(await page.textContent('#excluded-title'), new RegExp(`${answer.excluded.count}`));
    assert.match(await page.textContent('#search-latency'), /^\d+(\.\d)? ms$/);
    assert.match(await page.textContent('#search-versions'), /workers v\d+/);
  });
});

test('client key sees no hidden field', { skip: needAuth }, async (t) => {
  await withPage(t, AUTH, PHONE, async (page) => {
    const missing = await apiJson(AUTH, '/v1/whoami');
    assert.equal(missing.status, 401);
    await page.goto(`${AUTH}/#/search`);
    await page.waitForSelector('#key-dialog[open]');
    assert.equal((await page.textContent('#key-message')).trim(), missing.json.error.message);

    const wrong = await apiJson(AUTH, '/v1/whoami', { key: 'not-a-real-key' });
    await page.fill('#key-input', 'not-a-real-key');
    await page.click('#key-submit');
    await page.waitForFunction((msg) => document.querySelector('#key-message').textContent.trim() === msg, wrong.json.error.message);
    assert.ok(await page.isVisible('#key-dialog'), 'a wrong key keeps the prompt open');

    await page.fill('#key-input', CLIENT_KEY);
    await page.click('#key-submit');
    await page.waitForSelector('#key-dialog', { state: 'hidden' });
    await page.waitForFunction(() => document.querySelector('#role-badge').textContent.trim() === 'client');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('lakehouse.key')), CLIENT_KEY);
    assert.equal(await page.isVisible('#nav-sql'), false, 'SQL is not offered to the client');
    // Only what the key may do is offered: search and the corpora it searches, not the catalog or uploads.
    assert.equal(await page.isVisible('#nav-datasets'), false, 'the catalog is not offered to the client');
    assert.equal(await page.isVisible('#nav-upload'), false, 'uploads are not offered to the client');
    assert.equal(await page.isVisible('#nav-corpora'), true, 'the corpora it may search are offered');
    assert.equal(await page.isVisible('#search-order'), false, 'the SQL-filled order picker is hidden');

    // The key survives a reload of the tab, and the SQL view says no instead of offering an editor.
    await page.goto(`${AUTH}/#/sql`);
    await page.reload();
    await page.waitForSelector('#sql-unavailable');
    assert.match(await page.textContent('#sql-unavailable'), /lacks the action sql/);
    assert.equal(await page.isVisible('#key-dialog'), false);
    assert.equal(await page.locator('#sql-editor').count(), 0);
    await page.goto(`${AUTH}/#/upload`);
    await page.waitForSelector('#upload-unavailable');
    assert.equal(await page.locator('#upload-file').count(), 0);
    await page.goto(`${AUTH}/#/corpora`);
    await page.waitForSelector('#corpora-list [data-name="workers"]');
    assert.equal(await page.locator('#corpus-form').count(), 0, 'the client may not create corpora');
    assert.match(await page.textContent('#corpus-create-unavailable'), /corpora\.manage/);
    const corporaText = await page.evaluate(() => document.body.textContent);
    assert.ok(!corporaText.includes('pay_rate_min') && !corporaText.includes('last_name'), 'the corpus definition hides fields too');

    await page.goto(`${AUTH}/#/search`);
    await page.waitForSelector('#search-query');
    await page.fill('#search-query', 'forklift operator with OSHA 10');
    const response = page.waitForResponse(isSearch);
    await page.press('#search-query', 'Enter');
    const answer = await (await response).json();
    await page.waitForSelector('#search-results[data-state="done"]');
    assert.ok(answer.hits.length > 0, 'the client gets hits');
    assert.equal(await page.locator('[data-testid="hit"]').count(), answer.hits.length);
    const text = await page.evaluate(() => document.body.textContent);
    for (const hidden of ['@example.', 'pay_rate_min', 'last_name']) {
      assert.ok(!text.includes(hidden), `the page shows ${hidden}`);
    }
    await noHorizontalScroll(page);
  });
});

const MONTHLY = "SELECT date_trunc('month', week_ending) AS month, sum(regular_hours) AS hours FROM timesheets GROUP BY 1 ORDER BY 1";
const BY_STATE = 'SELECT state, count(*) AS workers FROM workers GROUP BY state ORDER BY workers DESC';
const BAD = 'SELECT nope FROM no_such_table';

async function runSql(page, sql) {
  await page.fill('#sql-editor', sql);
  const response = page.waitForResponse(isSql);
  await page.press('#sql-editor', 'Control+Enter');
  const res = await response;
  await page.waitForSelector('#sql-output:is([data-state="done"], [data-state="error"])');
  return res.json();
}

test('sql with table and chart', { skip: needOpen }, async (t) => {
  await withPage(t, OPEN, DESKTOP, async (page) => {
    await page.goto(`${OPEN}/#/sql`);
    await page.waitForSelector('#sql-datasets details');

    const monthly = await runSql(page, MONTHLY);
    assert.ok(monthly.rows.length > 1);
    assert.equal(await page.locator('#sql-result tbody tr').count(), monthly.rows.length);
    assert.equal(await page.locator('#sql-chart svg[data-kind="line"] path.series').count(), 1, 'a line chart');
    assert.equal(await page.locator('#sql-chart svg circle').count(), monthly.rows.length);
    assert.ok(page.url().includes('#/sql?q='), 'the query is in the URL');
    const monthlyTable = await page.textContent('#sql-result tbody');

    const states = await runSql(page, BY_STATE);
    assert.equal(await page.locator('#sql-chart svg[data-kind="bar"] rect.bar').count(), Math.min(states.rows.length, 40), 'a bar chart');
    assert.equal(await page.locator('#sql-chart svg[data-kind="line"]').count(), 0);

    const cut = await runSql(page, 'SELECT * FROM generate_series(1, 1500)');
    assert.equal(cut.truncated, true);
    assert.match(await page.textContent('#sql-truncated'), /truncated/);
    assert.equal(await page.locator('#sql-chart').count(), 0, 'nothing chartable, no chart');

    const bad = await runSql(page, BAD);
    assert.ok(bad.error && bad.error.message);
    assert.equal((await page.textContent('#sql-error')).trim(), bad.error.message);

    // Opening a dataset lists its columns; clicking one inserts it at the cursor.
    await page.fill('#sql-editor', 'SELECT ');
    await page.locator('#sql-datasets summary', { hasText: 'timesheets' }).click();
    await page.locator('#sql-datasets button[data-insert="week_ending"]').click();
    assert.equal(await page.inputValue('#sql-editor'), 'SELECT week_ending');

    // A fresh load of the query's URL runs it again and shows the same result.
    await page.goto('about:blank');
    await page.goto(`${OPEN}/#/sql?q=${encodeURIComponent(MONTHLY)}`);
    await page.waitForSelector('#sql-output[data-state="done"]');
    assert.equal(await page.inputValue('#sql-editor'), MONTHLY);
    assert.equal(await page.textContent('#sql-result tbody'), monthlyTable);
    assert.equal(await page.locator('#sql-chart svg[data-kind="line"] path.series').count(), 1);
  });
});

// A few hundred KB, so the upload reports progress more than once; `extra` adds a column (schema drift).
function peopleCsv(rows, extra) {
  const cities = ['Dallas', 'Tampa', 'Reno', 'Denver', 'Austin'];
  const lines = [`id,name,city,score,joined${extra ? ',shift' : ''}`];
  for (let i = 0; i < rows; i += 1) {
    const day = String((i % 28) + 1).padStart(2, '0');
    const line = `${i},Person ${i} with a longer name,${cities[i % cities.length]},${((i % 50) / 10 + 0.25).toFixed(2)},2024-03-${day}`;
    lines.push(extra ? `${line},${i % 2 ? 'day' : 'night'}` : line);
  }
  return `${lines.join('\n')}\n`;
}

const uploaded = { name: `page_upload_${Date.now().toString(36)}`, versions: 0 };

test('upload with progress then a drifted upload', { skip: needOpen }, async (t) => {
  await withPage(t, OPEN, DESKTOP, async (page) => {
    await page.goto(`${OPEN}/#/upload`);
    const csv = peopleCsv(6000, false);
    assert.ok(csv.length > 200_000);
    await page.setInputFiles('#upload-file', { name: 'people.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await page.fill('#upload-dataset', uploaded.name);
    await page.selectOption('#upload-mode', 'create');
    // Every percentage the bar shows, to check it moved to 100 rather than jumped there after the answer.
    await page.evaluate(() => {
      window.seenPercents = [];
      const bar = document.querySelector('#upload-progress');
      new MutationObserver(() => window.seenPercents.push(Number(bar.dataset.percent))).observe(bar, { attributes: true, attributeFilter: ['data-percent'] });
    });
    const created = page.waitForResponse((r) => r.url().includes(`/v1/ingest/${uploaded.name}?mode=create`));
    await page.click('#upload-submit');
    assert.equal((await created).status(), 201);
    await page.waitForSelector('#upload-result[data-version="0"]');
    uploaded.versions = 1;
    assert.match(await page.textContent('#upload-result'), /version 0/);
    assert.equal(await page.$eval('#upload-progress', (p) => p.value), 100);
    assert.match(await page.textContent('#upload-progress-text'), /^100%/);
    const seen = await page.evaluate(() => window.seenPercents);
    assert.ok(seen.includes(100), `the bar reached 100% (saw ${seen.join(', ')})`);

    // The second file comes by drag and drop, with one more column.
    await page.selectOption('#upload-mode', 'append');
    await page.evaluate((text) => {
      const data = new DataTransfer();
      data.items.add(new File([text], 'people-with-shift.csv', { type: 'text/csv' }));
      document.querySelector('#upload-drop').dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
    }, peopleCsv(500, true));
    assert.match(await page.textContent('#upload-file-name'), /people-with-shift\.csv/);
    const drifted = page.waitForResponse((r) => r.url().includes(`/v1/ingest/${uploaded.name}?mode=append`));
    await page.click('#upload-submit');
    assert.equal((await drifted).status(), 409);
    await page.waitForSelector('#upload-drift');
    assert.deepEqual(await page.$$eval('#drift-added li', (lis) => lis.map((li) => li.dataset.column)), ['shift']);
    assert.equal(await page.locator('#drift-missing, #drift-retyped').count(), 0);

    const evolved = page.waitForResponse((r) => r.url().includes('evolve=add_columns'));
    await page.click('#upload-evolve');
    assert.equal((await evolved).status(), 201);
    await page.waitForSelector('#upload-result[data-version="1"]');
    uploaded.versions = 2;
    assert.match(await page.textContent('#upload-result'), /version 1/);
  });
});

// Test 5 reads the dataset test 4 uploaded; when test 4 did not get that far, it makes the two versions
// itself through the API so this test still checks the dataset view.
async function ensureTwoVersions() {
  if (uploaded.versions === 2) return;
  if (uploaded.versions === 0) {
    const r = await apiJson(OPEN, `/v1/ingest/${uploaded.name}?mode=create`, { method: 'POST', body: peopleCsv(300, false), headers: { 'Content-Type': 'text/csv' } });
    assert.equal(r.status, 201, JSON.stringify(r.json));
  }
  const r = await apiJson(OPEN, `/v1/ingest/${uploaded.name}?mode=append&evolve=add_columns`, { method: 'POST', body: peopleCsv(50, true), headers: { 'Content-Type': 'text/csv' } });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  uploaded.versions = 2;
}

test('dataset history', { skip: needOpen }, async (t) => {
  await ensureTwoVersions();
  await withPage(t, OPEN, PHONE, async (page) => {
    await page.goto(`${OPEN}/#/datasets`);
    await page.locator('#datasets-table a', { hasText: uploaded.name }).click();
    await page.waitForSelector('#dataset-schema');
    assert.equal(new URL(page.url()).hash, `#/datasets/${uploaded.name}`);
    assert.equal((await page.textContent('#dataset-version')).trim(), 'v1');
    const columns = await page.$$eval('#dataset-schema tbody tr th', (ths) => ths.map((th) => th.textContent));
    assert.deepEqual(columns, ['id', 'name', 'city', 'score', 'joined', 'shift']);
    assert.ok((await page.locator('#dataset-files tbody tr').count()) >= 1, 'the files are listed');
    assert.deepEqual(await page.$$eval('#dataset-history li', (lis) => lis.map((li) => li.dataset.version)), ['1', '0']);

    await page.locator('#dataset-history li[data-version="0"] a').click();
    await page.waitForSelector('#dataset-version[data-version="0"]');
    assert.ok(page.url().endsWith(`#/datasets/${uploaded.name}?v=0`));
    assert.deepEqual(await page.$$eval('#dataset-history li', (lis) => lis.map((li) => li.dataset.version)), ['1', '0'], 'every version stays listed');
    assert.equal(await page.getAttribute('#dataset-history li[data-version="0"] a', 'aria-current'), 'page');
    assert.deepEqual(await page.$$eval('#dataset-schema tbody tr th', (ths) => ths.map((th) => th.textContent)), ['id', 'name', 'city', 'score', 'joined']);
    await page.waitForSelector('#dataset-preview[data-version="0"][data-state="done"]');
    assert.equal(await page.locator('#preview-table tbody tr').count(), 50);
    const headers = await page.$$eval('#preview-table thead th', (ths) => ths.map((th) => th.firstChild.textContent));
    assert.deepEqual(headers, ['id', 'name', 'city', 'score', 'joined'], 'the preview reads version 0');
    await noHorizontalScroll(page);
  });
});
