//! The store over TLS (`rediss://`) against a real TLS-only redis-server with a test CA made at test
//! time: certificate verification, a private CA added to the roots of trust, and rustls's crypto
//! provider shared with reqwest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, SystemTime};

use common::{RedisServer, TestCa};
use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::{AccessToken, Error, TokenStore, store::Coordinator, store::RefreshLock};
use tokensmith_redis::RedisStore;

#[tokio::test]
async fn tls_with_the_private_ca_works_and_without_it_fails_clearly() {
    let ca = TestCa::generate();
    let redis = RedisServer::start_tls(&ca);
    assert!(redis.url().starts_with("rediss://"));

    // Trusting the test CA (from its file, or its PEM): everything works.
    let store = RedisStore::builder(redis.url())
        .ca_certificate_file(&ca.ca_cert)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let token = AccessToken::builder("at-tls").expires_in(SystemTime::now(), Duration::from_secs(300)).build();
    store.save("k", &token).await.unwrap();
    let RefreshLock::Acquired(guard) = store.lock_refresh("k", Duration::from_secs(5)).await.unwrap() else {
        panic!("no lock")
    };
    assert!(store.save_fenced("k", &token, &guard).await.unwrap());
    store.unlock("k", &guard).await.unwrap();
    let pem = std::fs::read(&ca.ca_cert).unwrap();
    let other = RedisStore::builder(redis.url()).ca_certificate_pem(pem).build().unwrap();
    assert_eq!(other.load("k").await.unwrap().unwrap().secret().expose_secret(), "at-tls");
    assert_eq!(redis.cli(&["HGET", "tokensmith:token:{k}", "v"]), guard.fence().to_string());

    // reqwest (rustls with aws-lc-rs) keeps working in the same process: one crypto provider.
    let client = reqwest::Client::builder().build().unwrap();
    drop(client);

    // Without the CA: the certificate is not trusted, and the error says how to add it.
    let untrusting = RedisStore::builder(redis.url()).timeout(Duration::from_secs(2)).build().unwrap();
    let err = untrusting.load("k").await.unwrap_err();
    assert!(matches!(err, Error::Store { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("not trusted") && text.contains("ca_certificate_file"), "{text}");

    // A CA on a plain redis:// URL, or one that is not PEM, is a configuration error.
    let err = RedisStore::builder("redis://127.0.0.1:1").ca_certificate_pem("x").build().unwrap_err();
    assert!(matches!(err, Error::Config { ref key, .. } if key == "store.ca_certificate"), "{err:?}");
    let err = RedisStore::builder(redis.url()).ca_certificate_pem("not pem").build().unwrap_err();
    assert!(matches!(err, Error::Config { ref key, .. } if key == "store.ca_certificate"), "{err:?}");
}
