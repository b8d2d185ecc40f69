//! Unit tests over an in-memory store; the HTTP suite covers the local directory and S3.
use super::*;
use futures::stream;
use lakehouse_types::{Caller, Role};
use object_store::memory::InMemory;

fn service(max_object_bytes: u64, max_concurrent_transfers: usize) -> StorageService {
    let limits = StorageLimits {
        max_object_bytes,
        max_concurrent_transfers,
        part_size: 8,
    };
    StorageService::new(Arc::new(InMemory::new()), limits, "memory")
}

fn ctx(role: &str) -> RequestContext {
    RequestContext {
        caller: Caller {
            name: "t".to_owned(),
            role: Role(role.to_owned()),
            credential: None,
        },
        request_id: "r".to_owned(),
    }
}

fn body(chunks: &[&'static [u8]]) -> ByteStream {
    stream::iter(
        chunks
            .iter()
            .map(|c| Ok(Bytes::from_static(c)))
            .collect::<Vec<_>>(),
    )
    .boxed()
}

async fn read_all(object: GetObject) -> Vec<u8> {
    let chunks: Vec<Bytes> = object.body.map(|c| c.expect("chunk")).collect().await;
    chunks.concat()
}

#[tokio::test]
async fn multipart_and_single_puts_round_trip() {
    let svc = service(1000, 4);
    let admin = ctx("admin");
    // 3 bytes: one request. 30 bytes over 8-byte parts: multipart.
    svc.put(&admin, "small", None, body(&[b"abc"]))
        .await
        .expect("small put");
    let put = svc
        .put(
            &admin,
            "big",
            None,
            body(&[b"0123456789", b"0123456789", b"0123456789"]),
        )
        .await
        .expect("big");
    assert_eq!(put.size, 30);
    let got = svc.get(&admin, "big", None).await.expect("get");
    assert_eq!(read_all(got).await, b"012345678901234567890123456789");
    assert_eq!(
        read_all(svc.get(&admin, "small", None).await.expect("get")).await,
        b"abc"
    );
}

#[tokio::test]
async fn over_cap_streams_fail_and_store_nothing() {
    let svc = service(15, 4);
    let admin = ctx("admin");
    let err = svc
        .put(&admin, "k", None, body(&[b"0123456789", b"0123456789"]))
        .await
        .expect_err("too large");
    assert_eq!(err.code, lakehouse_types::ErrorCode::PayloadTooLarge);
    let err = svc.head(&admin, "k").await.expect_err("nothing stored");
    assert_eq!(err.code, lakehouse_types::ErrorCode::ObjectNotFound);
    let err = svc
        .put(&admin, "k", Some(16), body(&[]))
        .await
        .expect_err("declared too large");
    assert_eq!(err.code, lakehouse_types::ErrorCode::PayloadTooLarge);
}

#[tokio::test]
async fn a_failing_body_stores_nothing() {
    let svc = service(1000, 4);
    let admin = ctx("admin");
    let failing = stream::iter(vec![
        Ok(Bytes::from_static(b"0123456789")),
        Err(ApiError::bad_request("client went away")),
    ])
    .boxed();
    svc.put(&admin, "k", None, failing)
        .await
        .expect_err("body error");
    assert!(svc.head(&admin, "k").await.is_err());
}

#[tokio::test]
async fn transfers_over_the_cap_are_refused_until_one_ends() {
    let svc = service(1000, 1);
    let admin = ctx("admin");
    svc.put(&admin, "k", None, body(&[b"abc"]))
        .await
        .expect("put");
    let held = svc.get(&admin, "k", None).await.expect("first get");
    let err = svc.get(&admin, "k", None).await.expect_err("cap reached");
    assert_eq!(err.code, lakehouse_types::ErrorCode::Overloaded);
    assert_eq!(err.retry_after_secs, Some(1));
    drop(held);
    svc.get(&admin, "k", None)
        .await
        .expect("permit released with the body");
}

#[tokio::test]
async fn ranges_resolve_like_http() {
    let svc = service(1000, 4);
    let admin = ctx("admin");
    svc.put(&admin, "k", None, body(&[b"0123456789"]))
        .await
        .expect("put");
    let cases = [
        (
            ByteRange::FromTo {
                start: 2,
                end_inclusive: 4,
            },
            &b"234"[..],
        ),
        (
            ByteRange::FromTo {
                start: 8,
                end_inclusive: 100,
            },
            b"89",
        ),
        (ByteRange::From { start: 7 }, b"789"),
        (ByteRange::Suffix { len: 3 }, b"789"),
        (ByteRange::Suffix { len: 30 }, b"0123456789"),
    ];
    for (range, expected) in cases {
        let got = svc.get(&admin, "k", Some(range)).await.expect("range");
        assert!(got.partial);
        assert_eq!(read_all(got).await, expected, "{range:?}");
    }
    for range in [
        ByteRange::From { start: 10 },
        ByteRange::Suffix { len: 0 },
        ByteRange::FromTo {
            start: 5,
            end_inclusive: 2,
        },
    ] {
        let err = svc
            .get(&admin, "k", Some(range))
            .await
            .expect_err("unsatisfiable");
        assert_eq!(
            err.code,
            lakehouse_types::ErrorCode::InvalidRange,
            "{range:?}"
        );
    }
}

#[tokio::test]
async fn list_is_sorted_prefixed_paged_and_limited() {
    let svc = service(1000, 8);
    let admin = ctx("admin");
    for key in ["r/2025-02", "r/2025-01", "r/2024-12", "r/x/deep", "other"] {
        svc.put(&admin, key, None, body(&[b"x"]))
            .await
            .expect("put");
    }
    let keys = |resp: ListResponse| resp.objects.into_iter().map(|o| o.key).collect::<Vec<_>>();
    let query = |prefix: &str, limit: Option<usize>, after: Option<&str>| ListQuery {
        prefix: Some(prefix.to_owned()),
        limit,
        after: after.map(str::to_owned),
    };
    let all = svc
        .list(&admin, &query("r/", None, None))
        .await
        .expect("list");
    assert!(!all.truncated);
    assert_eq!(
        keys(all),
        ["r/2024-12", "r/2025-01", "r/2025-02", "r/x/deep"]
    );
    let partial = svc
        .list(&admin, &query("r/2025-", None, None))
        .await
        .expect("list");
    assert_eq!(keys(partial), ["r/2025-01", "r/2025-02"]);
    let page = svc
        .list(&admin, &query("r/", Some(2), None))
        .await
        .expect("page 1");
    assert!(page.truncated);
    assert_eq!(keys(page), ["r/2024-12", "r/2025-01"]);
    let page = svc
        .list(&admin, &query("r/", Some(2), Some("r/2025-01")))
        .await
        .expect("page 2");
    assert!(!page.truncated);
    assert_eq!(keys(page), ["r/2025-02", "r/x/deep"]);
    assert!(svc.list(&admin, &query("r/", Some(0), None)).await.is_err());
}

/// A policy with a `porter` role that may read and write raw objects under `notes/` only.
fn porter_policy() -> Arc<Policy> {
    let porter = RolePolicy {
        actions: [Action::StorageRead, Action::StorageWrite]
            .into_iter()
            .collect(),
        storage_prefixes: Some(vec!["notes/".to_owned()]),
        ..RolePolicy::default()
    };
    Arc::new(Policy::new(BTreeMap::from([("porter".to_owned(), porter)])))
}

#[tokio::test]
async fn reserved_prefixes_are_the_admins_alone() {
    let svc = service(1000, 8).with_policy(porter_policy());
    let admin = ctx("admin");
    let porter = ctx("porter");
    let err = svc
        .put(&porter, "datasets/x", None, body(&[b"x"]))
        .await
        .expect_err("reserved");
    assert_eq!(err.code, lakehouse_types::ErrorCode::ReservedPrefix);
    svc.put(&admin, "datasets/x", None, body(&[b"x"]))
        .await
        .expect("admin may");
    // Their files hold every column of the data: reading them is the admin's too, and listing hides them.
    for err in [
        svc.head(&porter, "datasets/x").await.expect_err("head"),
        svc.get(&porter, "datasets/x", None)
            .await
            .map(|_| ())
            .expect_err("get"),
    ] {
        assert_eq!(err.code, lakehouse_types::ErrorCode::ReservedPrefix);
    }
    svc.head(&admin, "datasets/x").await.expect("admin reads");
    svc.put(&admin, "other/y", None, body(&[b"y"]))
        .await
        .expect("admin writes anywhere");
    svc.put(&porter, "notes/x", None, body(&[b"x"]))
        .await
        .expect("its own prefix is open to it");
    let listed = svc
        .list(&porter, &ListQuery::default())
        .await
        .expect("list");
    let keys: Vec<&str> = listed.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        keys,
        vec!["notes/x"],
        "neither reserved nor other prefixes are listed"
    );
    let listed = svc.list(&admin, &ListQuery::default()).await.expect("list");
    assert!(listed.objects.iter().any(|o| o.key == "datasets/x"));
    let err = svc
        .delete(&porter, "datasets/x")
        .await
        .expect_err("delete is a write");
    assert_eq!(err.code, lakehouse_types::ErrorCode::ReservedPrefix);
    for err in [
        svc.head(&porter, "other/y").await.expect_err("outside"),
        svc.delete(&porter, "other/y").await.expect_err("outside"),
    ] {
        assert_eq!(err.code, lakehouse_types::ErrorCode::Forbidden, "{err:?}");
    }
    svc.delete(&porter, "notes/x").await.expect("delete");
    let err = svc.delete(&porter, "notes/x").await.expect_err("gone");
    assert_eq!(err.code, lakehouse_types::ErrorCode::ObjectNotFound);
}

#[tokio::test]
async fn raw_objects_need_the_storage_actions() {
    let svc = service(1000, 8);
    let admin = ctx("admin");
    svc.put(&admin, "exports/w.csv", None, body(&[b"email\na@b.c\n"]))
        .await
        .expect("admin");
    for role in ["recruiter", "client", "nobody"] {
        let who = ctx(role);
        let errors = [
            svc.put(&who, "exports/w.csv", None, body(&[b"x"]))
                .await
                .map(|_| ())
                .expect_err("put"),
            svc.get(&who, "exports/w.csv", None)
                .await
                .map(|_| ())
                .expect_err("get"),
            svc.head(&who, "exports/w.csv")
                .await
                .map(|_| ())
                .expect_err("head"),
            svc.delete(&who, "exports/w.csv").await.expect_err("delete"),
            svc.list(&who, &ListQuery::default())
                .await
                .map(|_| ())
                .expect_err("list"),
        ];
        for err in errors {
            assert_eq!(
                err.code,
                lakehouse_types::ErrorCode::Forbidden,
                "{role}: {err:?}"
            );
            assert!(err.message.contains("`storage."), "{err:?}");
        }
    }
}
