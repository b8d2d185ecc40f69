use super::*;

#[test]
fn defaults_are_local_open_and_on_the_gateway_port() {
    let config = Config::from_toml("").expect("defaults validate");
    assert_eq!(config.listen.to_string(), "127.0.0.1:3110");
    assert!(!config.listen_explicit);
    assert!(!config.auth_enabled());
    assert!(config.only.is_none());
    assert_eq!(config.storage.max_object_bytes, 256 * 1024 * 1024);
    assert_eq!(
        config.storage.backend,
        StorageBackend::Local {
            root: PathBuf::from("./lakehouse-data")
        }
    );
    assert_eq!(
        config.service_url(ServiceName::Storaged),
        "http://127.0.0.1:3211"
    );
}

#[test]
fn a_single_service_listens_on_its_own_port() {
    let config = Config::from_toml("[server]\nonly = [\"storaged\"]").expect("valid");
    assert_eq!(config.listen.port(), 3211);
    assert!(config.runs(ServiceName::Storaged));
    assert!(!config.runs(ServiceName::Gateway));
}

#[test]
fn comma_separated_only_is_split_and_unknown_names_refused() {
    let config = Config::from_toml("[server]\nonly = [\"gateway,storaged\"]").expect("valid");
    assert_eq!(
        config.only,
        Some(vec![ServiceName::Gateway, ServiceName::Storaged])
    );
    let err = Config::from_toml("[server]\nonly = [\"nope\"]").expect_err("unknown service");
    assert!(
        err.to_string().contains("unknown service \"nope\""),
        "{err}"
    );
}

#[test]
fn plain_keys_are_refused_and_hashes_accepted() {
    let err = Config::from_toml("[[auth.keys]]\nname = \"a\"\nrole = \"admin\"\nkey = \"secret\"")
        .expect_err("plain key");
    assert!(err.to_string().contains("hash-key"), "{err}");
    let digest = hex::encode(hash_key("secret"));
    let config = Config::from_toml(&format!(
        "[[auth.keys]]\nname = \"a\"\nrole = \"admin\"\nkey_sha256 = \"{digest}\""
    ))
    .expect("hashed key");
    assert_eq!(config.api_keys[0].sha256, hash_key("secret"));
}

#[test]
fn s3_needs_a_secrets_file_with_the_profile() {
    let err = Config::from_toml("[storage]\nbackend = \"s3\"").expect_err("no secrets file");
    assert!(err.to_string().contains("secrets_file"), "{err}");

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("secrets.toml");
    std::fs::write(
        &path,
        "[s3.primary]\nendpoint = \"http://127.0.0.1:9000\"\nbucket = \"b\"\n\
         access_key_id = \"k\"\nsecret_access_key = \"s\"\n",
    )
    .expect("write secrets");
    let text = format!(
        "[storage]\nbackend = \"s3\"\nsecrets_file = {:?}",
        path.display().to_string()
    );
    let config = Config::from_toml(&text).expect("valid s3 config");
    match &config.storage.backend {
        StorageBackend::S3(s3) => {
            assert_eq!(s3.bucket, "b");
            assert_eq!(s3.region, "us-east-1");
            assert!(
                !format!("{s3:?}").contains("\"s\""),
                "secret must not be printed"
            );
        }
        other => panic!("expected s3, got {other:?}"),
    }
    let err =
        Config::from_toml(&format!("{text}\ns3_profile = \"other\"")).expect_err("missing profile");
    assert!(err.to_string().contains("[s3.other]"), "{err}");
}

#[derive(Debug, Default, serde::Deserialize, PartialEq)]
#[serde(default)]
struct Section {
    threads: usize,
}

#[test]
fn sections_are_read_by_their_service_with_defaults() {
    let config = Config::from_toml("[embed]\nthreads = 3").expect("valid");
    assert_eq!(
        config.section::<Section>("embed").expect("parses"),
        Section { threads: 3 }
    );
    assert_eq!(
        config.section::<Section>("vector").expect("absent"),
        Section::default()
    );
    let config = Config::from_toml("[embed]\nthreads = \"many\"").expect("valid until read");
    assert!(config.section::<Section>("embed").is_err());
}

#[test]
fn allowed_hosts_and_origins_are_checked() {
    let config = Config::from_toml(
        "[server]\nallowed_hosts = [\"Lakehouse.Example.com.\"]\nallowed_origins = [\"HTTPS://Dash.example.com/\"]",
    )
    .expect("valid");
    assert_eq!(config.allowed_hosts, vec!["lakehouse.example.com"]);
    assert_eq!(config.allowed_origins, vec!["https://dash.example.com"]);
    let err = Config::from_toml("[server]\nallowed_hosts = [\"*\"]").expect_err("open mode");
    assert!(err.to_string().contains("DNS rebinding"), "{err}");
    let digest = hex::encode(hash_key("secret"));
    let keyed = Config::from_toml(&format!(
        "[server]\nallowed_hosts = [\"*\"]\n[[auth.keys]]\nname = \"a\"\nrole = \"admin\"\nkey_sha256 = \"{digest}\""
    ))
    .expect("any host with keys");
    assert_eq!(keyed.allowed_hosts, vec!["*"]);
    for bad in [
        "allowed_hosts = [\"http://x.example\"]",
        "allowed_hosts = [\"x.example/path\"]",
        "allowed_origins = [\"dash.example.com\"]",
        "allowed_origins = [\"https://dash.example.com/app\"]",
    ] {
        assert!(
            Config::from_toml(&format!("[server]\n{bad}")).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn old_role_switches_are_refused_with_the_fix() {
    let err = Config::from_toml("[roles.client]\nsql = false").expect_err("sql is an action now");
    assert!(err.to_string().contains("actions"), "{err}");
    let config = Config::from_toml("[roles.auditor]\nactions = [\"sql\", \"recordings.reed\"]")
        .expect("unknown actions load");
    assert_eq!(
        config.policy.unknown_actions(),
        vec![("auditor", "recordings.reed")]
    );
}
