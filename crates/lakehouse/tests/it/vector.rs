//! Vector indexes over HTTP, and their durability across `kill -9`.

use std::collections::HashMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Client;
use serde_json::{Value, json};

use crate::common::{
    Backend, expect_error, get_json, on_both_backends, server, server_on, spawn_on,
};

fn index_url(base: &str, name: &str) -> String {
    format!("{base}/v1/vectors/index/{name}")
}

on_both_backends!(vector_routes_follow_the_spec);

async fn vector_routes_follow_the_spec(backend: Backend) {
    let (server, _s3) = server_on(backend, &[]).await;
    let http = Client::new();
    let base = server.url();
    let create = json!({"name": "workers", "dim": 3, "metric": "cosine"});

    let created = http
        .post(format!("{base}/v1/vectors/index"))
        .json(&create)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let info: Value = created.json().await.unwrap();
    assert_eq!(
        (
            info["name"].as_str(),
            info["dim"].as_u64(),
            info["count"].as_u64()
        ),
        (Some("workers"), Some(3), Some(0))
    );
    let again = http
        .post(format!("{base}/v1/vectors/index"))
        .json(&create)
        .send()
        .await
        .unwrap();
    expect_error(again, 409, "already_exists").await;
    let bad_name = http
        .post(format!("{base}/v1/vectors/index"))
        .json(&json!({"name": "No Spaces", "dim": 3}))
        .send();
    expect_error(bad_name.await.unwrap(), 400, "invalid_parameter").await;
    let not_json = http
        .post(format!("{base}/v1/vectors/index"))
        .body("{\"name\":")
        .send()
        .await
        .unwrap();
    expect_error(not_json, 400, "invalid_json").await;

    let add = json!({"items": [
        {"id": "w-1", "vector": [1.0, 0.0, 0.0], "metadata": {"state": "TX", "rating": 4.5, "certs": ["OSHA 10"]}},
        {"id": "w-2", "vector": [0.9, 0.1, 0.0], "metadata": {"state": "CA", "rating": 3.0, "certs": []}},
        {"id": "w/3 odd", "vector": [0.0, 1.0, 0.0], "metadata": {"state": "TX", "rating": 5.0, "certs": ["OSHA 10"]}},
    ]});
    let added = http
        .post(format!("{}/add", index_url(base, "workers")))
        .json(&add)
        .send()
        .await
        .unwrap();
    assert_eq!(added.status().as_u16(), 200);
    assert_eq!(
        added.json::<Value>().await.unwrap(),
        json!({"added": 3, "updated": 0})
    );

    let wrong_dim = json!({"items": [{"id": "w-9", "vector": [1.0, 0.0, 0.0]}, {"id": "w-10", "vector": [1.0]}]});
    let refused = http
        .post(format!("{}/add", index_url(base, "workers")))
        .json(&wrong_dim)
        .send()
        .await
        .unwrap();
    let message = expect_error(refused, 400, "invalid_vector").await;
    assert!(
        message.contains("items[1]") && message.contains("w-10"),
        "{message}"
    );
    let missing_id = json!({"items": [{"vector": [1.0, 0.0, 0.0]}]});
    let refused = http
        .post(format!("{}/add", index_url(base, "workers")))
        .json(&missing_id)
        .send()
        .await
        .unwrap();
    expect_error(refused, 400, "bad_request").await;

    let search = |body: Value| {
        http.post(format!("{}/search", index_url(base, "workers")))
            .json(&body)
            .send()
    };
    let hits: Value = search(json!({"vector": [1.0, 0.0, 0.0], "k": 2}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = hits["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["w-1", "w-2"]);
    assert_eq!(hits["hits"][0]["metadata"]["state"], "TX");
    let filter =
        json!({"state": "TX", "rating": {"gte": 4.0}, "certs": {"contains_all": ["OSHA 10"]}});
    let hits: Value = search(json!({"vector": [0.0, 1.0, 0.0], "k": 10, "filter": filter}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(hits["hits"].as_array().unwrap().len(), 2);
    assert_eq!(hits["hits"][0]["id"], "w/3 odd");
    let bad_filter =
        search(json!({"vector": [1.0, 0.0, 0.0], "filter": {"rating": {"around": 4}}}))
            .await
            .unwrap();
    expect_error(bad_filter, 400, "invalid_filter").await;
    expect_error(
        search(json!({"vector": [1.0, 0.0], "k": 1})).await.unwrap(),
        400,
        "invalid_vector",
    )
    .await;
    expect_error(
        search(json!({"vector": [1.0, 0.0, 0.0], "k": 0}))
            .await
            .unwrap(),
        400,
        "invalid_parameter",
    )
    .await;

    // Ids are free text: percent-encoded in the path.
    let odd = format!("{}/items/w%2F3%20odd", index_url(base, "workers"));
    let item: Value = http.get(&odd).send().await.unwrap().json().await.unwrap();
    assert_eq!(item["vector"], json!([0.0, 1.0, 0.0]));
    assert_eq!(
        http.delete(&odd).send().await.unwrap().status().as_u16(),
        204
    );
    expect_error(http.delete(&odd).send().await.unwrap(), 404, "not_found").await;

    let listed: Value = get_json(&http, format!("{base}/v1/vectors/index")).await;
    assert_eq!(listed["indexes"][0]["count"], 2);
    assert!(listed["indexes"][0]["persisted_at"].is_string(), "{listed}");
    assert_eq!(
        http.delete(index_url(base, "workers"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        204
    );
    expect_error(
        http.get(index_url(base, "workers")).send().await.unwrap(),
        404,
        "index_not_found",
    )
    .await;
    expect_error(
        search(json!({"vector": [1.0, 0.0, 0.0]})).await.unwrap(),
        404,
        "index_not_found",
    )
    .await;
}

/// Streams add batches, `kill -9`s the server at a random moment, restarts it on the same data directory and
/// checks that every acknowledged item is there with its exact vector, and that the batch in flight at the
/// kill is either wholly there or wholly absent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_items_survive_kill_9() {
    kill_9_suite(Backend::Local).await;
}

/// The same on S3: every acknowledged segment is an object the S3 server holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_items_survive_kill_9_on_s3() {
    kill_9_suite(Backend::S3).await;
}

async fn kill_9_suite(backend: Backend) {
    const DIM: usize = 16;
    const BATCH: usize = 25;
    // Frequent snapshots, so the kill can also land in the middle of one or of a compaction.
    let (mut server, _s3) = spawn_on(
        backend,
        server().config("[vector.snapshot]\nevery_segments = 4\n"),
    )
    .await;
    let http = Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let base = server.url().to_owned();
    let create = json!({"name": "crash", "dim": DIM, "metric": "l2"});
    assert_eq!(
        http.post(format!("{base}/v1/vectors/index"))
            .json(&create)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        201
    );

    let seed: u64 = rand::random();
    let mut rng = StdRng::seed_from_u64(seed);
    let kill_after = Duration::from_millis(rng.random_range(300..2_500));
    let writer = {
        let (http, base) = (http.clone(), base.clone());
        tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
            let mut acknowledged: HashMap<String, Vec<f32>> = HashMap::new();
            let mut in_flight: Vec<(String, Vec<f32>)> = Vec::new();
            for batch in 0.. {
                // Every third batch also rewrites ids already acknowledged (upserts must survive too).
                in_flight = (0..BATCH)
                    .map(|i| {
                        let id = if batch % 3 == 2 && i < 5 {
                            format!("w-{}-{i}", batch - 2)
                        } else {
                            format!("w-{batch}-{i}")
                        };
                        (
                            id,
                            (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect(),
                        )
                    })
                    .collect();
                let items: Vec<Value> = in_flight
                    .iter()
                    .map(|(id, v)| json!({"id": id, "vector": v, "metadata": {"batch": batch}}))
                    .collect();
                let sent = http
                    .post(format!("{base}/v1/vectors/index/crash/add"))
                    .json(&json!({"items": items}))
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status().is_success() => {
                        acknowledged.extend(in_flight.drain(..));
                    }
                    Ok(response) => panic!("add failed with {}", response.status()),
                    // The server died under us: this batch is unacknowledged.
                    Err(_) => break,
                }
            }
            (acknowledged, in_flight)
        })
    };
    tokio::time::sleep(kill_after).await;
    server.kill9();
    let (acknowledged, in_flight) = writer.await.unwrap();
    assert!(
        !acknowledged.is_empty(),
        "nothing was acknowledged before the kill (seed {seed})"
    );

    server.start().await;
    let base = server.url().to_owned();
    let fetch = |id: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let response = http
                .get(format!("{base}/v1/vectors/index/crash/items/{id}"))
                .send()
                .await
                .unwrap();
            if !response.status().is_success() {
                return None;
            }
            let item: Value = response.json().await.unwrap();
            Some(serde_json::from_value::<Vec<f32>>(item["vector"].clone()).unwrap())
        }
    };

    // The batch in flight at the kill is all-or-nothing (one segment): look at its new ids first.
    let fresh: Vec<_> = in_flight
        .iter()
        .filter(|(id, _)| !acknowledged.contains_key(id))
        .collect();
    let mut present = 0;
    for (id, vector) in &fresh {
        if let Some(stored) = fetch(id.clone()).await {
            assert_eq!(&stored, vector, "{id} (seed {seed})");
            present += 1;
        }
    }
    assert!(
        present == 0 || present == fresh.len(),
        "a torn batch: {present} of {} (seed {seed})",
        fresh.len()
    );
    let mut expected = acknowledged.clone();
    if present > 0 {
        // It made it to storage before the kill, unacknowledged: its upserts of older ids count too.
        expected.extend(in_flight.iter().cloned());
    }

    let mut missing = Vec::new();
    for (id, vector) in &expected {
        match fetch(id.clone()).await {
            Some(stored) => assert_eq!(
                &stored, vector,
                "{id} came back with another vector (seed {seed})"
            ),
            None => missing.push(id.clone()),
        }
    }
    assert!(
        missing.is_empty(),
        "acknowledged items lost after kill -9 (seed {seed}): {missing:?}\nlog:\n{}",
        server.log()
    );

    let info: Value = get_json(&http, format!("{base}/v1/vectors/index/crash")).await;
    let count = info["count"].as_u64().unwrap() as usize;
    assert_eq!(count, expected.len(), "count after restart (seed {seed})");
    // And the index still takes writes.
    let after = json!({"items": [{"id": "after-restart", "vector": vec![0.5f32; DIM]}]});
    let response = http
        .post(format!("{base}/v1/vectors/index/crash/add"))
        .json(&after)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}
