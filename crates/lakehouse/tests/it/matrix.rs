//! Matrix search through the real binary: staffing data from `lakehouse generate`, corpora built by the
//! server, searches over HTTP, on the local directory and on S3.

use std::time::{Duration, Instant};

use reqwest::Client;
use serde_json::{Value, json};

use crate::common::{
    ADMIN_KEY, Backend, CLIENT_KEY, RECRUITER_KEY, expect_error, generate, on_both_backends,
    post_json, search, sql_rows, staffing, staffing_keys, wait_ready, wait_ready_as,
    workers_corpus,
};

/// A worker as the test judges it, from SQL.
#[derive(Debug)]
struct Worker {
    id: String,
    status: String,
    certs: Vec<String>,
    available: String,
    pay_min: f64,
    at: Option<(f64, f64)>,
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

async fn all_workers(http: &Client, url: &str) -> Vec<Worker> {
    sql_rows(
        http,
        url,
        "SELECT worker_id, status, certifications, available_from, pay_rate_min, lat, lon FROM workers",
    )
    .await
    .into_iter()
    .map(|r| Worker {
        id: r[0].as_str().unwrap_or_default().to_owned(),
        status: r[1].as_str().unwrap_or_default().trim().to_owned(),
        certs: r[2]
            .as_str()
            .unwrap_or_default()
            .split(';')
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect(),
        available: r[3].as_str().unwrap_or_default().to_owned(),
        pay_min: number(&r[4]).unwrap_or(f64::MAX),
        at: number(&r[5]).zip(number(&r[6])),
    })
    .collect()
}

fn miles(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (p1, p2) = (a.0.to_radians(), b.0.to_radians());
    let h = ((p2 - p1) / 2.0).sin().powi(2)
        + p1.cos() * p2.cos() * ((b.1 - a.1).to_radians() / 2.0).sin().powi(2);
    2.0 * 3958.8 * h.sqrt().asin()
}

/// A job order's parameters, as the test judges with them.
#[derive(Debug)]
struct OrderParams {
    id: String,
    certs: Vec<String>,
    start: String,
    pay: f64,
    radius: f64,
    site: (f64, f64),
}

impl OrderParams {
    fn admits(&self, w: &Worker) -> bool {
        w.status == "active"
            && self.certs.iter().all(|c| w.certs.contains(c))
            && !w.available.is_empty()
            && w.available <= self.start
            && w.pay_min <= self.pay
            && w.at.is_some_and(|at| miles(at, self.site) <= self.radius)
    }
}

async fn orders(http: &Client, url: &str) -> Vec<OrderParams> {
    sql_rows(
        http,
        url,
        "SELECT order_id, required_certs, start_date, pay_rate, radius_miles, site_lat, site_lon FROM job_orders \
         ORDER BY order_id",
    )
    .await
    .into_iter()
    .map(|r| OrderParams {
        id: r[0].as_str().unwrap_or_default().to_owned(),
        certs: r[1]
            .as_str()
            .unwrap_or_default()
            .split(';')
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect(),
        start: r[2].as_str().unwrap_or_default().to_owned(),
        pay: number(&r[3]).unwrap_or(0.0),
        radius: number(&r[4]).unwrap_or(0.0),
        site: (number(&r[5]).unwrap_or(0.0), number(&r[6]).unwrap_or(0.0)),
    })
    .collect()
}

fn hit_ids(answer: &Value) -> Vec<String> {
    answer["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Relevance, filters inside retrieval, the judge with and without an order, recordings, by SQL.
async fn matrix_search_end_to_end(backend: Backend) {
    let s = staffing(backend, crate::common::server(), 300).await;
    let (http, url) = (&s.http, s.url());

    // Relevance: a role query finds that role first, in every mode.
    for mode in ["hybrid", "vector", "keyword"] {
        let answer = search(
            http,
            url,
            json!({"query": "forklift operator", "k": 5, "mode": mode}),
        )
        .await;
        let roles: Vec<&str> = answer["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["fields"]["primary_role"].as_str().unwrap())
            .collect();
        assert_eq!(roles.len(), 5, "{mode}: {answer}");
        assert_eq!(roles[0], "Forklift Operator", "{mode}: {roles:?}");
        assert!(
            roles.iter().filter(|r| **r == "Forklift Operator").count() >= 3,
            "{mode}: {roles:?}"
        );
        assert_eq!(answer["corpora"]["workers"]["dataset_version"], 0);
        assert!(
            answer["recording_id"]
                .as_str()
                .is_some_and(|id| !id.is_empty())
        );
    }

    // Without an order only the order-free rules apply: every hit is active, and what was left out is
    // counted by reason; with include_ineligible the left-out come back marked.
    let answer = search(http, url, json!({"query": "warehouse", "k": 20})).await;
    for hit in answer["hits"].as_array().unwrap() {
        assert_eq!(hit["fields"]["status"], "active", "{hit}");
        assert_eq!(hit["eligible"], true);
    }
    let excluded = answer["excluded"]["count"].as_u64().unwrap();
    assert!(
        excluded > 0,
        "some of 20+ warehouse candidates are not active: {answer}"
    );
    let by_reason = answer["excluded"]["by_reason"].as_object().unwrap();
    assert!(
        by_reason
            .keys()
            .all(|r| r == "not active" || r == "do not rehire"),
        "{by_reason:?}"
    );
    let marked = search(
        http,
        url,
        json!({"query": "warehouse", "k": 20, "include_ineligible": true}),
    )
    .await;
    let ineligible: Vec<&Value> = marked["hits"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["eligible"] == false)
        .collect();
    assert_eq!(ineligible.len() as u64, excluded);
    for hit in ineligible {
        assert_ne!(hit["fields"]["status"], "active");
        assert!(!hit["reasons"].as_array().unwrap().is_empty());
    }

    // Filters apply inside retrieval: k hits whenever k match, none that fail.
    let tx_welders = sql_rows(
        http,
        url,
        "SELECT count(*) FROM workers WHERE state = 'TX' AND trim(primary_role) = 'Welder' AND status = 'active'",
    )
    .await[0][0]
        .as_u64()
        .unwrap();
    for mode in ["hybrid", "vector", "keyword"] {
        let answer = search(
            http,
            url,
            json!({"query": "experienced welder", "k": 50, "mode": mode,
                   "filters": {"state": "TX", "primary_role": "Welder"}}),
        )
        .await;
        let hits = answer["hits"].as_array().unwrap();
        assert_eq!(hits.len() as u64, tx_welders.min(50), "{mode}: {answer}");
        for hit in hits {
            assert_eq!(hit["fields"]["state"], "TX");
            assert_eq!(hit["fields"]["primary_role"], "Welder");
        }
    }
    let rated = search(
        http,
        url,
        json!({"query": "nurse", "k": 10, "filters": {"rating": {"gte": 4.5},
               "certifications": {"contains_all": ["CPR/BLS"]}}}),
    )
    .await;
    for hit in rated["hits"].as_array().unwrap() {
        assert!(hit["fields"]["rating"].as_f64().unwrap() >= 4.5);
        assert!(
            hit["fields"]["certifications"]
                .as_array()
                .unwrap()
                .contains(&json!("CPR/BLS"))
        );
    }

    // With a job order, every rule binds: the answer holds exactly the eligible workers the test finds
    // itself (up to k), and none other.
    let workers = all_workers(http, url).await;
    let orders = orders(http, url).await;
    let mut checked = 0;
    for order in orders.iter().filter(|o| !o.certs.is_empty()).take(8) {
        let eligible: Vec<&str> = workers
            .iter()
            .filter(|w| order.admits(w))
            .map(|w| w.id.as_str())
            .collect();
        let answer = search(http, url, json!({"order_id": order.id, "k": 10})).await;
        let ids = hit_ids(&answer);
        assert_eq!(
            ids.len(),
            eligible.len().min(10),
            "order {order:?}: {answer}"
        );
        for id in &ids {
            assert!(
                eligible.contains(&id.as_str()),
                "{id} is not eligible for {order:?}"
            );
        }
        checked += usize::from(!eligible.is_empty());
    }
    assert!(checked > 0, "no order had an eligible worker");
    let with_reasons = search(
        http,
        url,
        json!({"order_id": orders[0].id, "query": "reliable", "k": 5, "include_ineligible": true}),
    )
    .await;
    let reasons: Vec<String> = with_reasons["hits"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h["reasons"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect();
    assert!(
        reasons.iter().any(|r| r == "too far from the site"),
        "{with_reasons}"
    );

    expect_error(
        http.post(format!("{url}/v1/matrix/search"))
            .json(&json!({"order_id": "JO-99999"}))
            .send()
            .await
            .unwrap(),
        404,
        "not_found",
    )
    .await;

    // Every search was recorded, readable by SQL within a few seconds.
    let last = search(http, url, json!({"query": "line cook", "k": 3})).await;
    let id = last["recording_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = post_json(
            http,
            format!("{url}/v1/sql"),
            &json!({"sql": format!(
                "SELECT query, mode, hit_count, key_name, role FROM matrix_recordings WHERE recording_id = '{id}'")}),
        )
        .await;
        if let Some(row) = found["rows"].as_array().and_then(|r| r.first()) {
            assert_eq!(row[0], "line cook");
            assert_eq!(row[1], "hybrid");
            assert_eq!(row[2], 3);
            assert_eq!(row[3], "anonymous");
            assert_eq!(row[4], "admin");
            break;
        }
        assert!(Instant::now() < deadline, "recording not readable: {found}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let total = sql_rows(http, url, "SELECT count(*) FROM matrix_recordings").await[0][0]
        .as_u64()
        .unwrap();
    // 3 + 2 + 3 + 1 + 8 + 1 + 1 successful searches above.
    assert_eq!(total, 19, "one recording per successful search");
}

on_both_backends!(matrix_search_end_to_end);

/// Two corpora fused by reciprocal rank; two corpora of one dataset never give the same row twice.
#[tokio::test]
async fn several_corpora_are_fused_and_deduplicated() {
    let s = staffing(Backend::Local, crate::common::server(), 200).await;
    let (http, url) = (&s.http, s.url());
    let orders = json!({"name": "job_orders", "dataset": "job_orders", "id_column": "order_id",
                        "text": "{title}. {description}", "fields": ["title", "city", "state", "pay_rate"]});
    let mut by_words = workers_corpus();
    by_words["name"] = json!("workers_by_skills");
    by_words["text"] = json!("{primary_role}: {skills}");
    for definition in [orders, by_words] {
        let created = http
            .post(format!("{url}/v1/matrix/corpora"))
            .json(&definition)
            .send()
            .await
            .unwrap();
        assert_eq!(created.status().as_u16(), 202);
    }
    wait_ready(http, url, "job_orders", Some(0)).await;
    wait_ready(http, url, "workers_by_skills", Some(0)).await;

    let answer = search(
        http,
        url,
        json!({"query": "forklift", "k": 20, "corpora": ["workers", "job_orders"]}),
    )
    .await;
    let corpora: Vec<&str> = answer["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["corpus"].as_str().unwrap())
        .collect();
    assert!(
        corpora.contains(&"workers") && corpora.contains(&"job_orders"),
        "{corpora:?}"
    );
    assert_eq!(answer["corpora"].as_object().unwrap().len(), 2);
    let scores: Vec<f64> = answer["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["score"].as_f64().unwrap())
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "best first: {scores:?}"
    );

    let both = search(
        http,
        url,
        json!({"query": "forklift operator", "k": 30, "corpora": ["workers", "workers_by_skills"]}),
    )
    .await;
    let ids = hit_ids(&both);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        ids.len(),
        "a row found through both corpora comes back once: {ids:?}"
    );
    assert_eq!(ids.len(), 30);
    // With no corpora named, every corpus is searched.
    let all = search(http, url, json!({"query": "forklift", "k": 5})).await;
    assert_eq!(all["corpora"].as_object().unwrap().len(), 3);
}

/// Roles: a client key sees no hidden field and may not search other corpora; recruiters see all.
#[tokio::test]
async fn roles_mask_fields_and_gate_corpora() {
    let server = crate::common::server()
        .config(&staffing_keys())
        .spawn()
        .await;
    let url = server.url().to_owned();
    let http = Client::new();
    let csv = tempfile::tempdir().unwrap();
    generate(csv.path(), 150, 11);
    for table in ["workers", "job_orders"] {
        let response = http
            .post(format!("{url}/v1/ingest/{table}?mode=create"))
            .bearer_auth(ADMIN_KEY)
            .header("content-type", "text/csv")
            .body(std::fs::read(csv.path().join(format!("{table}.csv"))).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 201);
    }
    let create = |key: &'static str, definition: Value| {
        http.post(format!("{url}/v1/matrix/corpora"))
            .bearer_auth(key)
            .json(&definition)
            .send()
    };
    expect_error(
        create(CLIENT_KEY, workers_corpus()).await.unwrap(),
        403,
        "forbidden",
    )
    .await;
    assert_eq!(
        create(ADMIN_KEY, workers_corpus())
            .await
            .unwrap()
            .status()
            .as_u16(),
        202
    );
    let orders = json!({"name": "job_orders", "dataset": "job_orders", "id_column": "order_id",
                        "text": "description", "fields": ["title"]});
    assert_eq!(
        create(RECRUITER_KEY, orders)
            .await
            .unwrap()
            .status()
            .as_u16(),
        202
    );
    for name in ["workers", "job_orders"] {
        wait_ready_as(&http, &url, Some(ADMIN_KEY), name, None).await;
    }

    let search_as = |key: &'static str, body: Value| {
        http.post(format!("{url}/v1/matrix/search"))
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    let query = json!({"query": "forklift operator", "corpora": ["workers"], "k": 10, "include_ineligible": true});
    let seen: Value = search_as(CLIENT_KEY, query.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = seen.to_string();
    let eligible = seen["hits"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["eligible"] == true)
        .count();
    assert_eq!(eligible, 10, "{seen}");
    for hit in seen["hits"].as_array().unwrap() {
        let fields = hit["fields"].as_object().unwrap();
        for hidden in ["email", "phone", "last_name", "pay_rate_min"] {
            assert!(!fields.contains_key(hidden), "client sees {hidden}: {hit}");
        }
        assert!(fields.contains_key("first_name"));
    }
    assert!(
        !text.contains("@example."),
        "no email anywhere in the client's answer"
    );
    let full: Value = search_as(RECRUITER_KEY, query)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        full["hits"][0]["fields"]["email"]
            .as_str()
            .unwrap()
            .contains('@')
    );

    expect_error(
        search_as(
            CLIENT_KEY,
            json!({"query": "welder", "corpora": ["job_orders"]}),
        )
        .await
        .unwrap(),
        403,
        "forbidden",
    )
    .await;
    let message = expect_error(
        search_as(
            CLIENT_KEY,
            json!({"query": "welder", "filters": {"email": {"in": ["x"]}}}),
        )
        .await
        .unwrap(),
        403,
        "forbidden",
    )
    .await;
    assert!(message.contains("email"), "{message}");
    // Left to search everything, a client searches what it may.
    let mine: Value = search_as(CLIENT_KEY, json!({"query": "welder"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        mine["corpora"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec!["workers"]
    );
    let listed: Value = crate::common::answer_json(
        http.get(format!("{url}/v1/matrix/corpora"))
            .bearer_auth(CLIENT_KEY),
    )
    .await;
    assert_eq!(listed["corpora"].as_array().unwrap().len(), 1, "{listed}");
    expect_error(
        http.delete(format!("{url}/v1/matrix/corpora/workers"))
            .bearer_auth(RECRUITER_KEY)
            .send()
            .await
            .unwrap(),
        403,
        "forbidden",
    )
    .await;
    expect_error(
        http.post(format!("{url}/v1/matrix/search"))
            .json(&json!({"query": "x"}))
            .send()
            .await
            .unwrap(),
        401,
        "missing_api_key",
    )
    .await;
    hidden_rules_keep_their_reasons(&http, &url, &search_as).await;

    // The searches are recorded; a recruiter may not read them, so may not make them searchable either.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = http
            .get(format!("{url}/v1/catalog/datasets/matrix_recordings"))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap()
            .status();
        if status.as_u16() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no recordings");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let over_recordings = json!({"name": "searches", "dataset": "matrix_recordings", "id_column": "recording_id",
                                 "text": "query", "fields": ["query", "key_name"]});
    let message = expect_error(
        create(RECRUITER_KEY, over_recordings.clone())
            .await
            .unwrap(),
        403,
        "forbidden",
    )
    .await;
    assert!(message.contains("`recordings.read`"), "{message}");
    assert_eq!(
        create(ADMIN_KEY, over_recordings)
            .await
            .unwrap()
            .status()
            .as_u16(),
        202
    );
}

/// With job orders, the pay rule reads `pay_rate_min`, hidden from the client: it still decides who is
/// eligible for the client, but its reason never reaches it, and the workers it rejects are not listed.
async fn hidden_rules_keep_their_reasons<F, Fut>(http: &Client, url: &str, search_as: &F)
where
    F: Fn(&'static str, Value) -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    const PAY: &str = "asks more than the order pays";
    let orders: Value = crate::common::answer_json(
        http.post(format!("{url}/v1/sql"))
            .bearer_auth(ADMIN_KEY)
            .json(&json!({"sql": "SELECT order_id FROM job_orders ORDER BY order_id LIMIT 40"})),
    )
    .await;
    let mut checked = 0;
    for row in orders["rows"].as_array().unwrap() {
        let order = row[0].as_str().unwrap();
        let body =
            json!({"order_id": order, "corpora": ["workers"], "k": 10, "include_ineligible": true});
        let full: Value = search_as(ADMIN_KEY, body.clone())
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if full["excluded"]["by_reason"][PAY].as_u64().unwrap_or(0) == 0 {
            continue;
        }
        let seen: Value = search_as(CLIENT_KEY, body)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let text = seen.to_string();
        assert!(!text.contains(PAY) && !text.contains("pay_rate"), "{text}");
        let withheld = seen["excluded"]["by_reason"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(reason, _)| reason.contains("not shown"))
            .map_or(0, |(_, n)| n.as_u64().unwrap());
        assert!(withheld > 0, "{seen}");
        let ids = |answer: &Value, eligible: bool| -> Vec<String> {
            answer["hits"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|h| h["eligible"] == eligible)
                .map(|h| h["id"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            ids(&seen, true),
            ids(&full, true),
            "the same workers are eligible for both"
        );
        let rejected_for_pay: Vec<String> = full["hits"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["reasons"].as_array().unwrap().iter().any(|r| r == PAY))
            .map(|h| h["id"].as_str().unwrap().to_owned())
            .collect();
        for id in ids(&seen, false) {
            assert!(
                !rejected_for_pay.contains(&id),
                "{id} is listed to the client: {seen}"
            );
        }
        checked += 1;
        if checked == 3 {
            break;
        }
    }
    assert!(
        checked > 0,
        "no order whose pay rule excluded anyone among the first 40"
    );
}
