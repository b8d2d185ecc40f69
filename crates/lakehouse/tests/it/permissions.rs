//! Who may change what: over a thousand generated write and bypass attempts across every route that changes
//! something (ingest in each mode, register, dataset and corpus deletion, corpus creation over data the
//! caller may not read in full, vector writes, raw object writes and reads, embedding, SQL, cross-site
//! requests, rebinding hosts, bodies of the wrong type), as keys of each built-in role and of two custom
//! roles, through one process and through a gateway in front of split services. Every attempt the caller's
//! role has no action for is refused, and a checksum of every file in the store is the same after them; the
//! same requests as the admin then pass the permission check (and succeed, except the ones no role may make).

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use reqwest::{Client, Method};
use serde_json::{Value, json};

use crate::leak::{ADMIN, ANALYST, CLIENT, LOADER, RECRUITER};

/// What a probe needs, and who has it.
#[derive(Debug, Clone)]
enum Need {
    /// An action; the named non-admin roles have everything the probe needs (they are not sent it: it
    /// would change the store).
    Action(&'static str, &'static [&'static str]),
    /// The admin role only (matrix search's own data, the services' prefixes).
    Admin,
    /// Refused to every caller, admin included, with this status and code.
    Nobody(u16, &'static str),
}

/// One generated request.
#[derive(Debug, Clone)]
struct Probe {
    method: Method,
    path: String,
    body: Option<(String, &'static str)>,
    headers: Vec<(&'static str, String)>,
    need: Need,
}

impl Probe {
    fn new(method: Method, path: impl Into<String>, need: Need) -> Self {
        Probe {
            method,
            path: path.into(),
            body: None,
            headers: Vec::new(),
            need,
        }
    }

    fn json(mut self, body: Value) -> Self {
        self.body = Some((body.to_string(), "application/json"));
        self
    }

    fn body(mut self, body: impl Into<String>, content_type: &'static str) -> Self {
        self.body = Some((body.into(), content_type));
        self
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// What identifies the request, for sending each distinct one once as the admin.
    fn identity(&self) -> String {
        format!(
            "{} {} {:?} {:?}",
            self.method, self.path, self.body, self.headers
        )
    }
}

/// A row of `people` (the marked dataset), as CSV with its header.
fn people_row(i: usize) -> String {
    format!(
        "person_id,first_name,role,city,state,rating,bio,email,phone,last_name,pay_rate_min\n\
         q{i},Added{i},welder,Austin,TX,4,welder,a@b.c,555,Doe,20.5\n"
    )
}

fn probes(rng: &mut StdRng, n: usize, parquet_part: &str) -> Vec<Probe> {
    use Need::{Action, Admin, Nobody};
    let mut out = Vec::with_capacity(n);
    let vector: Vec<f32> = (0..384).map(|i| 0.01 + i as f32 / 1000.0).collect();
    for i in 0..n {
        let j = rng.random_range(0..6);
        let corpus = json!({"name": format!("c{}", j % 2), "dataset": "people", "id_column": "person_id",
                            "text": "{role}. {bio}", "fields": ["first_name", "role"]});
        let p = match rng.random_range(0..30) {
            0 => Probe::new(
                Method::POST,
                format!("/v1/ingest/new_{i}?mode=create"),
                Action("datasets.write", &["recruiter", "loader"]),
            )
            .body(people_row(i), "text/csv"),
            1 => Probe::new(
                Method::POST,
                "/v1/ingest/people?mode=append",
                Action("datasets.write", &["recruiter", "loader"]),
            )
            .body(people_row(i), "text/csv"),
            2 => Probe::new(
                Method::POST,
                "/v1/ingest/people?mode=overwrite",
                Action("datasets.overwrite", &[]),
            )
            .body(people_row(i), "text/csv"),
            3 => Probe::new(
                Method::POST,
                "/v1/ingest/matrix_recordings?mode=append",
                Admin,
            )
            .body(people_row(i), "text/csv"),
            4 => Probe::new(
                Method::DELETE,
                format!("/v1/catalog/datasets/gone_{j}"),
                Action("datasets.delete", &[]),
            ),
            5 => Probe::new(
                Method::POST,
                format!("/v1/catalog/datasets/reg_{i}/register"),
                Action("datasets.write", &[]),
            )
            .json(json!({"files": ["exports/people.parquet"]})),
            6 => Probe::new(
                Method::POST,
                format!("/v1/catalog/datasets/reg_{i}/register"),
                Nobody(403, "reserved_prefix"),
            )
            .json(json!({"files": [parquet_part]})),
            7 => Probe::new(
                Method::PUT,
                format!("/v1/storage/objects/exports/w{i}.csv"),
                Action("storage.write", &[]),
            )
            .body("a,b\n1,2\n", "text/csv"),
            8 => Probe::new(
                Method::PUT,
                format!("/v1/storage/objects/recordings/planted-{i}.bin"),
                Admin,
            )
            .body("x", "application/octet-stream"),
            9 => Probe::new(
                Method::DELETE,
                format!("/v1/storage/objects/exports/keep{j}"),
                Action("storage.write", &[]),
            ),
            10 => Probe::new(
                Method::GET,
                "/v1/storage/objects/exports/secret.csv",
                Action("storage.read", &[]),
            ),
            11 => Probe::new(
                Method::GET,
                "/v1/storage/objects?prefix=exports/",
                Action("storage.read", &["loader"]),
            ),
            12 => Probe::new(
                Method::POST,
                "/v1/vectors/index",
                Action("vectors.write", &[]),
            )
            .json(json!({"name": format!("vx{i}"), "dim": 3})),
            13 => Probe::new(
                Method::POST,
                "/v1/vectors/index/people-raw/add",
                Action("vectors.write", &[]),
            )
            .json(json!({"items": [{"id": format!("p{j}"), "vector": vector, "metadata": {"role": "planted"}}]})),
            14 => Probe::new(Method::POST, "/v1/vectors/index/matrix-people/add", Admin)
                .json(json!({"items": [{"id": format!("p{j}"), "vector": vector}]})),
            15 => Probe::new(
                Method::DELETE,
                format!("/v1/vectors/index/people-raw/items/p{j}"),
                Action("vectors.delete", &[]),
            ),
            16 => Probe::new(
                Method::DELETE,
                format!("/v1/vectors/index/drop_{j}"),
                Action("vectors.delete", &[]),
            ),
            17 => Probe::new(
                Method::POST,
                "/v1/matrix/corpora",
                Action("corpora.manage", &["recruiter"]),
            )
            .json(corpus),
            18 => Probe::new(
                Method::POST,
                "/v1/matrix/corpora",
                Action("recordings.read", &[]),
            )
            .json(json!({"name": format!("rec{}", j % 2), "dataset": "matrix_recordings",
                         "id_column": "recording_id", "text": "query", "fields": ["query", "key_name"]})),
            19 => Probe::new(
                Method::POST,
                "/v1/matrix/corpora/people/rebuild",
                Action("corpora.manage", &["recruiter"]),
            ),
            20 => Probe::new(
                Method::DELETE,
                format!("/v1/matrix/corpora/drop-{}", j % 3),
                Action("corpora.delete", &[]),
            ),
            21 => Probe::new(
                Method::POST,
                "/v1/embed",
                Action("embed", &["recruiter", "analyst"]),
            )
            .json(json!({"texts": [format!("welder {i}")]})),
            22 => Probe::new(
                Method::POST,
                "/v1/sql",
                Action("sql", &["recruiter", "analyst", "loader"]),
            )
            .json(json!({"sql": "SELECT count(*) FROM people"})),
            // A page of another site, with whatever key: refused before anything is read.
            23 => Probe::new(
                Method::POST,
                format!("/v1/ingest/x_{i}?mode=create"),
                Nobody(403, "cross_origin"),
            )
            .body("a\n1\n", "text/csv")
            .header(
                "origin",
                *["http://evil.example", "null", "http://127.0.0.1:1"]
                    .choose(rng)
                    .unwrap_or(&"null"),
            ),
            // DNS rebinding: the browser sends the attacker's name as Host.
            24 => Probe::new(
                Method::GET,
                "/v1/catalog/datasets",
                Nobody(421, "misdirected_host"),
            )
            .header("host", "evil.example:3110"),
            // Compaction on request is the admin's.
            25 => Probe::new(Method::POST, "/v1/catalog/datasets/people/optimize", Admin),
            // History pages are the catalog's, and the recordings' history the recordings readers'.
            26 => Probe::new(
                Method::GET,
                "/v1/catalog/datasets/people/history?limit=3",
                Action("datasets.read", &["recruiter", "analyst"]),
            ),
            27 => Probe::new(
                Method::GET,
                "/v1/catalog/datasets/matrix_recordings/history",
                Action("recordings.read", &[]),
            ),
            // So is vacuum, dry run or not.
            28 => Probe::new(
                Method::POST,
                if j % 2 == 0 {
                    "/v1/catalog/datasets/people/vacuum?dry_run=true"
                } else {
                    "/v1/catalog/datasets/people/vacuum"
                },
                Admin,
            ),
            // Bodies a form can send, read only by their declared type.
            _ => {
                let (path, body) = if rng.random_bool(0.5) {
                    (format!("/v1/ingest/t_{i}?mode=create&format=csv"), "a\n1\n".to_owned())
                } else {
                    ("/v1/sql".to_owned(), json!({"sql": "SELECT 1"}).to_string())
                };
                let ct = *["text/plain", "application/x-www-form-urlencoded", "text/plain;charset=UTF-8"]
                    .choose(rng)
                    .unwrap_or(&"text/plain");
                Probe::new(Method::POST, path, Nobody(415, "unsupported_media_type")).body(body, ct)
            }
        };
        out.push(p);
    }
    out
}

/// The keys and their roles (the roles as `leak::config` defines them).
const KEYS: [(&str, &str); 4] = [
    (CLIENT, "client"),
    (RECRUITER, "recruiter"),
    (LOADER, "loader"),
    (ANALYST, "analyst"),
];

async fn send(http: &Client, url: &str, key: &str, probe: &Probe) -> (u16, Value) {
    let mut request = http
        .request(probe.method.clone(), format!("{url}{}", probe.path))
        .bearer_auth(key);
    if let Some((body, content_type)) = &probe.body {
        request = request
            .header("content-type", *content_type)
            .body(body.clone());
    }
    for (name, value) in &probe.headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// A checksum of every file under `dir`, by path.
fn checksums(dir: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                bytes.hash(&mut hasher);
                out.insert(path.display().to_string(), hasher.finish());
            }
        }
    }
    out
}

/// The store's checksums once nothing has changed for a while (recordings flush, snapshots settle).
async fn settled(dir: &Path) -> BTreeMap<String, u64> {
    let mut last = checksums(dir);
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let now = checksums(dir);
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("the store under {} never settled", dir.display());
}

async fn admin(
    http: &Client,
    url: &str,
    method: Method,
    path: &str,
    body: Option<(String, &str)>,
) -> u16 {
    let mut request = http
        .request(method, format!("{url}{path}"))
        .bearer_auth(ADMIN);
    if let Some((body, content_type)) = body {
        request = request.header("content-type", content_type).body(body);
    }
    request.send().await.unwrap().status().as_u16()
}

/// What the probes act on, beyond `leak::load`: raw objects, doomed datasets, indexes and corpora, a
/// Parquet copy of the marked table outside the services' prefixes, and some recordings.
async fn prepare(http: &Client, url: &str) -> String {
    crate::leak::load(http, url).await;
    let csv = |s: &str| Some((s.to_owned(), "text/csv"));
    let secret = "person_id,email\np0,mk-email-7f3a\n";
    assert_eq!(
        admin(
            http,
            url,
            Method::PUT,
            "/v1/storage/objects/exports/secret.csv",
            csv(secret)
        )
        .await,
        201
    );
    for j in 0..6 {
        let key = format!("/v1/storage/objects/exports/keep{j}");
        assert_eq!(
            admin(http, url, Method::PUT, &key, csv("k\n1\n")).await,
            201
        );
        let gone = format!("/v1/ingest/gone_{j}?mode=create");
        assert_eq!(
            admin(http, url, Method::POST, &gone, csv("k\n1\n")).await,
            201
        );
        let index = json!({"name": format!("drop_{j}"), "dim": 3}).to_string();
        let made = admin(
            http,
            url,
            Method::POST,
            "/v1/vectors/index",
            Some((index, "application/json")),
        )
        .await;
        assert_eq!(made, 201);
    }
    let tiny = "id,text\n1,forklift\n2,welder\n";
    assert_eq!(
        admin(
            http,
            url,
            Method::POST,
            "/v1/ingest/tiny?mode=create",
            csv(tiny)
        )
        .await,
        201
    );
    for j in 0..3 {
        let corpus = json!({"name": format!("drop-{j}"), "dataset": "tiny", "id_column": "id", "text": "text",
                            "fields": ["text"]})
        .to_string();
        let made = admin(
            http,
            url,
            Method::POST,
            "/v1/matrix/corpora",
            Some((corpus, "application/json")),
        )
        .await;
        assert_eq!(made, 202);
    }
    // A data file of the marked table, and its copy outside the services' prefixes.
    let listing: Value = crate::common::answer_json(
        http.get(format!("{url}/v1/storage/objects?prefix=datasets/people/"))
            .bearer_auth(ADMIN),
    )
    .await;
    let part = listing["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["key"].as_str())
        .find(|k| k.ends_with(".parquet"))
        .expect("a data file of people")
        .to_owned();
    let bytes = http
        .get(format!("{url}/v1/storage/objects/{part}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let copied = http
        .put(format!("{url}/v1/storage/objects/exports/people.parquet"))
        .bearer_auth(ADMIN)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(copied.status().as_u16(), 201);
    // Recordings exist, so a corpus over them is a real bypass attempt.
    let search =
        json!({"query": "mk-email-7f3a welder", "corpora": ["people"], "k": 3}).to_string();
    let searched = admin(
        http,
        url,
        Method::POST,
        "/v1/matrix/search",
        Some((search, "application/json")),
    )
    .await;
    assert_eq!(searched, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while admin(
        http,
        url,
        Method::GET,
        "/v1/catalog/datasets/matrix_recordings",
        None,
    )
    .await
        != 200
    {
        assert!(
            std::time::Instant::now() < deadline,
            "recordings were never written"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    part
}

/// Sends `count` probes to every key whose role lacks what they need; then checks the store, then sends
/// each distinct probe once as the admin. Returns the attempts made without the action.
async fn run(url: &str, data: &Path, seed: u64, count: usize, part: &str) -> usize {
    let http = Client::new();
    let mut rng = StdRng::seed_from_u64(seed);
    let probes = probes(&mut rng, count, part);
    let before = settled(data).await;
    let mut attempts = 0;
    for p in &probes {
        for (key, role) in KEYS {
            if let Need::Action(_, allowed) = &p.need
                && allowed.contains(&role)
            {
                continue;
            }
            let (status, body) = send(&http, url, key, p).await;
            let code = body["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            match &p.need {
                Need::Action(action, _) => {
                    assert_eq!(
                        (status, code.as_str()),
                        (403, "forbidden"),
                        "{p:?} as {role}: {body}"
                    );
                    // The refusal says what is missing: an action, the index or corpus, the prefix, or
                    // the hidden columns.
                    let message = body["error"]["message"].as_str().unwrap_or_default();
                    assert!(
                        message.contains("lacks the action `")
                            || message.contains("not among")
                            || message.contains("outside")
                            || message.contains("hidden from it"),
                        "{p:?} ({action}) as {role}: {message}"
                    );
                }
                Need::Admin => assert_eq!(status, 403, "{p:?} as {role}: {body}"),
                Need::Nobody(expected, expected_code) => {
                    let refused = (status, code.as_str()) == (*expected, *expected_code)
                        || (*expected_code == "reserved_prefix" && status == 403);
                    assert!(refused, "{p:?} as {role}: {status} {body}");
                }
            }
            attempts += 1;
        }
    }
    let after = settled(data).await;
    if before != after {
        let changed: Vec<&String> = before
            .keys()
            .chain(after.keys())
            .filter(|k| before.get(*k) != after.get(*k))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        panic!("the store changed under refused requests: {changed:?}");
    }

    // The same requests as the admin pass the permission check; those no role may make are refused alike.
    let mut seen = BTreeSet::new();
    let mut passed = 0;
    for p in &probes {
        if !seen.insert(p.identity()) {
            continue;
        }
        let (status, body) = send(&http, url, ADMIN, p).await;
        match (&p.need, p.path.as_str()) {
            (Need::Nobody(expected, _), _) => {
                assert_eq!(status, *expected, "{p:?} as admin: {body}")
            }
            // Any row shape is refused by the recordings table's own schema, after the permission check.
            (Need::Admin, "/v1/ingest/matrix_recordings?mode=append") => {
                assert_eq!(
                    body["error"]["code"], "schema_drift",
                    "{p:?} as admin: {body}"
                );
            }
            _ => {
                assert!(
                    (200..300).contains(&status),
                    "{p:?} as admin: {status} {body}"
                );
                passed += 1;
            }
        }
    }
    assert!(passed > count / 3, "the admin passed only {passed}");
    attempts
}

#[tokio::test]
async fn no_role_changes_what_it_has_no_action_for() {
    let http = Client::new();
    let one = crate::common::server()
        .config(&crate::leak::config())
        .spawn()
        .await;
    let part = prepare(&http, one.url()).await;
    let in_process = run(one.url(), &one.data_dir(), 7, 150, &part).await;

    let backend = crate::common::server()
        .config(&crate::leak::config())
        .arg("--only")
        .arg("storaged,catalogd,ingestd,queryd,vectord,embedd,matrixd")
        .spawn()
        .await;
    let b = backend.url();
    let gateway = crate::common::server()
        .config(&format!(
            "{}\n[services]\nstoraged = \"{b}\"\ncatalogd = \"{b}\"\ningestd = \"{b}\"\nqueryd = \"{b}\"\n\
             vectord = \"{b}\"\nembedd = \"{b}\"\nmatrixd = \"{b}\"\n",
            crate::leak::config()
        ))
        .arg("--only")
        .arg("gateway")
        .spawn()
        .await;
    let part = prepare(&http, gateway.url()).await;
    let split = run(gateway.url(), &backend.data_dir(), 8, 140, &part).await;
    let total = in_process + split;
    println!("{total} refused attempts ({in_process} in one process, {split} through a gateway)");
    assert!(total >= 1000, "{total}");
}
