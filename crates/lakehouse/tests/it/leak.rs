//! Roles hold on every route: a dataset whose hidden columns hold marker values, then over a thousand generated
//! requests across every route (SQL built from a grammar of ways to name a column, vector search and items,
//! storage GET/HEAD/Range/LIST, the catalog, matrix search, MCP-free HTTP), through one process and through a
//! gateway in front of split services. No answer to a key whose role hides those columns may contain a marker;
//! the admin sees them all.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use reqwest::{Client, Method};
use serde_json::{Value, json};

pub(crate) const ADMIN: &str = "leak-admin-key-0123456789";
pub(crate) const RECRUITER: &str = "leak-recruiter-key-0123456789";
pub(crate) const CLIENT: &str = "leak-client-key-0123456789";
/// A role that may run SQL but not see the hidden columns: the SQL rewrite is what stands between it and them.
pub(crate) const ANALYST: &str = "leak-analyst-key-0123456789";
/// A role that loads data and manages corpora, within bounds: raw objects under `uploads/` only, one vector
/// index of its own, the hidden columns hidden (`tests/it/permissions.rs`).
pub(crate) const LOADER: &str = "leak-loader-key-0123456789";

/// The hidden columns and the marker each holds (in every row).
const HIDDEN: &[(&str, &str)] = &[
    ("email", "mk-email-7f3a"),
    ("phone", "mk-phone-9c1d"),
    ("last_name", "mk-last-4b2e"),
    ("pay_rate_min", "4242.17"),
];

pub(crate) fn config() -> String {
    let mut text = crate::common::keys_config(&[
        ("ops", "admin", ADMIN),
        ("rita", "recruiter", RECRUITER),
        ("acme", "client", CLIENT),
        ("ana", "analyst", ANALYST),
        ("lou", "loader", LOADER),
    ]);
    let hidden = HIDDEN
        .iter()
        .map(|(c, _)| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    text.push_str(&format!(
        "[roles.client]\nactions = [\"search\"]\ncorpora = [\"people\"]\nhidden_fields = [{hidden}]\n\n\
         [roles.analyst]\nactions = [\"search\", \"sql\", \"datasets.read\", \"vectors.read\", \"embed\"]\n\
         corpora = \"*\"\nhidden_fields = [{hidden}]\nindexes = \"*\"\n\n\
         [roles.loader]\nactions = [\"sql\", \"datasets.write\", \"corpora.manage\", \"vectors.write\", \
         \"storage.read\", \"storage.write\"]\ncorpora = \"*\"\nhidden_fields = [{hidden}]\n\
         indexes = [\"scratch\"]\nstorage_prefixes = [\"uploads/\"]\n"
    ));
    text
}

/// The marked dataset, a corpus over it and a raw vector index with the same metadata.
pub(crate) async fn load(http: &Client, url: &str) {
    let mut csv = String::from(
        "person_id,first_name,role,city,state,rating,bio,email,phone,last_name,pay_rate_min\n",
    );
    let roles = [
        "welder",
        "forklift operator",
        "nurse",
        "line cook",
        "electrician",
    ];
    for i in 0..60 {
        csv.push_str(&format!(
            "p{i},Name{i},{role},Dallas,TX,{rating},\"{role} with {i} years of experience\",{},{},{},{}\n",
            HIDDEN[0].1,
            HIDDEN[1].1,
            HIDDEN[2].1,
            HIDDEN[3].1,
            role = roles[i % roles.len()],
            rating = 3 + i % 3,
        ));
    }
    let response = http
        .post(format!("{url}/v1/ingest/people?mode=create"))
        .bearer_auth(ADMIN)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let corpus = json!({"name": "people", "dataset": "people", "id_column": "person_id", "text": "{role}. {bio}",
        "fields": ["first_name", "role", "city", "email", "phone", "last_name", "pay_rate_min"],
        "eligibility": [{"field": "rating", "gte": 4, "reason": "rated under 4"}]});
    let created = http
        .post(format!("{url}/v1/matrix/corpora"))
        .bearer_auth(ADMIN)
        .json(&corpus)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 202);
    let index = http
        .post(format!("{url}/v1/vectors/index"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "people-raw", "dim": 384}))
        .send()
        .await
        .unwrap();
    assert_eq!(index.status().as_u16(), 201);
    let items: Vec<Value> = (0..20)
        .map(|i| {
            json!({"id": format!("p{i}"), "text": format!("{} number {i}", roles[i % roles.len()]),
                   "metadata": {"role": roles[i % roles.len()], "email": HIDDEN[0].1, "phone": HIDDEN[1].1,
                                "last_name": HIDDEN[2].1, "pay_rate_min": HIDDEN[3].1}})
        })
        .collect();
    let added = http
        .post(format!("{url}/v1/vectors/index/people-raw/add"))
        .bearer_auth(ADMIN)
        .json(&json!({"items": items}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status().as_u16(), 200);
    crate::common::wait_ready_as(http, url, Some(ADMIN), "people", None).await;
}

/// One generated request.
#[derive(Debug, Clone)]
struct Probe {
    method: Method,
    path: String,
    body: Option<Value>,
    range: Option<String>,
}

fn probe(method: Method, path: impl Into<String>, body: Option<Value>) -> Probe {
    Probe {
        method,
        path: path.into(),
        body,
        range: None,
    }
}

/// A random way to name `column` (bare, quoted, qualified, aliased, inside a function).
fn name_column(rng: &mut StdRng, column: &str) -> String {
    let quoted = format!("\"{column}\"");
    let forms = [
        column.to_owned(),
        quoted.clone(),
        format!("people.{column}"),
        format!("p.{quoted}"),
        format!("upper(CAST({column} AS VARCHAR))"),
        format!("concat('x', {column})"),
        format!("coalesce({column}, NULL)"),
        format!("max({column})"),
        format!("array_agg({column})"),
        format!("{} AS c", column.to_uppercase()),
    ];
    forms.choose(rng).cloned().unwrap_or_default()
}

/// SQL statements that try to reach the hidden columns in every way the grammar knows.
fn sql(rng: &mut StdRng) -> String {
    let column = HIDDEN.choose(rng).map_or("email", |(c, _)| c);
    let named = name_column(rng, column);
    let table = ["people", "\"people@v0\"", "people"]
        .choose(rng)
        .copied()
        .unwrap_or("people");
    let templates = [
        format!("SELECT {named} FROM {table} p"),
        format!("SELECT * FROM {table} p"),
        format!("SELECT p.* FROM {table} p"),
        format!("SELECT * FROM {table} a JOIN people b ON a.person_id = b.person_id"),
        format!("SELECT (SELECT {named} FROM {table} p LIMIT 1) AS x"),
        format!("SELECT person_id FROM {table} p WHERE {column} LIKE '%mk%'"),
        format!("SELECT person_id FROM {table} p ORDER BY {named}"),
        format!("WITH w AS (SELECT * FROM {table} p) SELECT * FROM w"),
        format!("EXPLAIN SELECT * FROM {table} p"),
        format!("EXPLAIN VERBOSE SELECT {named} FROM {table} p"),
        format!("DESCRIBE {table}"),
        "SHOW COLUMNS FROM people".to_owned(),
        "SELECT * FROM information_schema.columns WHERE table_name = 'people'".to_owned(),
        format!("SELECT to_json(p) FROM {table} p"),
        format!("SELECT struct(p.*) FROM {table} p"),
        format!("SELECT * FROM {table} p UNION ALL SELECT * FROM people"),
        format!("SELECT count(*) FROM {table} p GROUP BY {column}"),
        "SELECT * FROM matrix_recordings".to_owned(),
        "SELECT query, hit_ids FROM matrix_recordings".to_owned(),
    ];
    templates.choose(rng).cloned().unwrap_or_default()
}

fn probes(rng: &mut StdRng, n: usize) -> Vec<Probe> {
    let mut out = Vec::with_capacity(n);
    let object_keys = [
        "datasets/people/_delta_log/00000000000000000000.json",
        "_catalog/matrix/corpora/people/definition.json",
        "_catalog/matrix/corpora/people/state.json",
        "vectors/people-raw/meta.json",
        "recordings/x",
    ];
    let prefixes = [
        "",
        "d",
        "datasets/",
        "datasets/people/",
        "_catalog/",
        "vectors/",
        "recordings/",
        "v",
    ];
    for _ in 0..n {
        let kind = rng.random_range(0..12);
        let p = match kind {
            0..=3 => probe(Method::POST, "/v1/sql", Some(json!({"sql": sql(rng)}))),
            4 => {
                let query = ["welder", "nurse", "anyone", "mk-email-7f3a"]
                    .choose(rng)
                    .copied();
                let mut body = json!({"query": query, "k": rng.random_range(1..20),
                                      "include_ineligible": rng.random_bool(0.5)});
                if rng.random_bool(0.3) {
                    let field = HIDDEN.choose(rng).map_or("email", |h| h.0);
                    let mut filters = serde_json::Map::new();
                    filters.insert(field.to_owned(), json!({"in": ["x"]}));
                    body["filters"] = Value::Object(filters);
                }
                if rng.random_bool(0.3) {
                    body["mode"] = json!(["keyword", "vector", "hybrid"].choose(rng).copied());
                }
                probe(Method::POST, "/v1/matrix/search", Some(body))
            }
            5 => {
                let mut body = json!({"text": "welder", "k": rng.random_range(1..25)});
                if rng.random_bool(0.3) {
                    body["filter"] = json!({"email": HIDDEN[0].1});
                }
                let index = ["people-raw", "matrix-people"]
                    .choose(rng)
                    .copied()
                    .unwrap_or("people-raw");
                probe(
                    Method::POST,
                    format!("/v1/vectors/index/{index}/search"),
                    Some(body),
                )
            }
            6 => {
                let index = ["people-raw", "matrix-people"]
                    .choose(rng)
                    .copied()
                    .unwrap_or("people-raw");
                probe(
                    Method::GET,
                    format!(
                        "/v1/vectors/index/{index}/items/p{}",
                        rng.random_range(0..20)
                    ),
                    None,
                )
            }
            7 => {
                let mut p = probe(
                    Method::GET,
                    format!(
                        "/v1/storage/objects/{}",
                        object_keys.choose(rng).unwrap_or(&"x")
                    ),
                    None,
                );
                if rng.random_bool(0.5) {
                    p.range = Some(format!("bytes={}-", rng.random_range(0..200)));
                }
                p
            }
            8 => probe(
                Method::HEAD,
                format!(
                    "/v1/storage/objects/{}",
                    object_keys.choose(rng).unwrap_or(&"x")
                ),
                None,
            ),
            9 => probe(
                Method::GET,
                format!(
                    "/v1/storage/objects?prefix={}&limit={}",
                    prefixes.choose(rng).unwrap_or(&""),
                    rng.random_range(1..200)
                ),
                None,
            ),
            10 => {
                let paths = [
                    "/v1/catalog/datasets",
                    "/v1/catalog/datasets/people",
                    "/v1/catalog/datasets/people/versions/0",
                    "/v1/catalog/datasets/matrix_recordings",
                    "/v1/catalog/datasets/people/history?limit=5",
                    "/v1/catalog/datasets/matrix_recordings/history",
                    "/v1/matrix/corpora",
                    "/v1/matrix/corpora/people",
                    "/v1/vectors/index",
                    "/v1/vectors/index/people-raw",
                    "/v1/whoami",
                ];
                probe(
                    Method::GET,
                    *paths.choose(rng).unwrap_or(&"/v1/whoami"),
                    None,
                )
            }
            _ => probe(
                Method::POST,
                "/v1/sql",
                Some(
                    json!({"sql": format!("SELECT {} FROM people", name_column(rng, "first_name"))}),
                ),
            ),
        };
        out.push(p);
    }
    out
}

/// Sends `probe` as `key`; the status and the whole answer (headers included) as text.
async fn send(http: &Client, url: &str, key: &str, probe: &Probe) -> (u16, String) {
    let mut request = http
        .request(probe.method.clone(), format!("{url}{}", probe.path))
        .bearer_auth(key);
    if let Some(body) = &probe.body {
        request = request.json(body);
    }
    if let Some(range) = &probe.range {
        request = request.header("range", range);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = format!("{:?}", response.headers());
    let body = response.text().await.unwrap_or_default();
    (status, format!("{headers}\n{body}"))
}

fn marker_in(text: &str) -> Option<&'static str> {
    HIDDEN.iter().map(|(_, m)| *m).find(|m| text.contains(m))
}

/// Runs `count` generated probes against `url` as each key; returns how many requests were sent.
async fn run(url: &str, seed: u64, count: usize) -> usize {
    let http = Client::new();
    let mut rng = StdRng::seed_from_u64(seed);
    let probes = probes(&mut rng, count);
    let mut sent = 0;
    let mut admin_saw = 0;
    for p in &probes {
        for key in [CLIENT, ANALYST] {
            let (status, text) = send(&http, url, key, p).await;
            sent += 1;
            assert!(status < 500, "{p:?} as {key}: {status} {text}");
            if let Some(marker) = marker_in(&text) {
                panic!("{marker} leaked to {key} through {p:?}: {status} {text}");
            }
        }
        if rng.random_bool(0.4) {
            for key in [RECRUITER, ADMIN] {
                let (status, text) = send(&http, url, key, p).await;
                sent += 1;
                assert!(status < 500, "{p:?} as {key}: {status} {text}");
                admin_saw += usize::from(key == ADMIN && marker_in(&text).is_some());
            }
        }
    }
    // The markers are there to be found: the admin (and recruiter) see them through many of the same routes.
    assert!(
        admin_saw >= probes.len() / 25,
        "the admin saw markers in only {admin_saw} answers"
    );
    sent
}

#[tokio::test]
async fn no_route_shows_a_role_what_it_may_not_see() {
    // One process.
    let one = crate::common::server().config(&config()).spawn().await;
    let http = Client::new();
    load(&http, one.url()).await;
    // Searches as the admin, so matrix_recordings has rows with the marker in their queries.
    for _ in 0..3 {
        let response = http
            .post(format!("{}/v1/matrix/search", one.url()))
            .bearer_auth(ADMIN)
            .json(&json!({"query": "mk-email-7f3a welder", "k": 3}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
    }
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let in_process = run(one.url(), 1, 330).await;

    // Split services behind a gateway: every service checks the caller's role itself.
    let backend = crate::common::server()
        .config(&config())
        .arg("--only")
        .arg("storaged,catalogd,ingestd,queryd,vectord,embedd,matrixd")
        .spawn()
        .await;
    let b = backend.url();
    let gateway = crate::common::server()
        .config(&format!(
            "{}\n[services]\nstoraged = \"{b}\"\ncatalogd = \"{b}\"\ningestd = \"{b}\"\nqueryd = \"{b}\"\n\
             vectord = \"{b}\"\nembedd = \"{b}\"\nmatrixd = \"{b}\"\n",
            config()
        ))
        .arg("--only")
        .arg("gateway")
        .spawn()
        .await;
    load(&http, gateway.url()).await;
    let split = run(gateway.url(), 2, 200).await;
    let total = in_process + split;
    println!("{total} requests tried ({in_process} in one process, {split} through a gateway)");
    assert!(total >= 1000, "{total}");
}
