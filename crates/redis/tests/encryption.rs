//! Token sets sealed at rest in a real redis-server (issue 14, item 8): nothing in Redis shows a
//! token, a store without the key (or with another) refuses the records instead of misreading them,
//! and a record copied under another key does not open.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, SystemTime};

use common::RedisServer;
use tokensmith_core::secrecy::{ExposeSecret as _, SecretBox};
use tokensmith_core::{AccessToken, Error, RefreshToken, TokenStore, store::StoreEncryption};
use tokensmith_redis::RedisStore;

const ACCESS: &str = "access-Qm4vX9pLr2Tz";
const REFRESH: &str = "refresh-Jk7wB3nHs8Yc";

fn key(byte: u8) -> StoreEncryption {
    StoreEncryption::from_bytes(SecretBox::new(Box::new([byte; 32])))
}

fn store(redis: &RedisServer, encryption: Option<StoreEncryption>) -> RedisStore {
    let mut builder = RedisStore::builder(redis.url());
    if let Some(encryption) = encryption {
        builder = builder.encryption(encryption);
    }
    builder.build().unwrap()
}

#[tokio::test]
async fn sealed_records_hold_no_token_and_open_only_with_the_key_under_their_key() {
    let redis = RedisServer::start();
    let sealed = store(&redis, Some(key(7)));
    assert!(format!("{sealed:?}").contains("encrypted: true"));
    let token = AccessToken::builder(ACCESS)
        .expires_in(SystemTime::now(), Duration::from_secs(300))
        .refresh_token(Some(RefreshToken::new(REFRESH)))
        .build();
    sealed.save("k", &token).await.unwrap();
    let back = sealed.load("k").await.unwrap().unwrap();
    assert!(back.same_token(&token));
    assert!(back.refresh_token().unwrap().same_as(&RefreshToken::new(REFRESH)));

    // Everything Redis holds for the key, as a dump or a replica would show it.
    let raw = redis.cli(&["HGETALL", "tokensmith:token:{k}"]);
    for secret in [ACCESS, REFRESH] {
        for window in secret.as_bytes().windows(6) {
            let fragment = std::str::from_utf8(window).unwrap();
            assert!(!raw.contains(fragment), "`{fragment}` is in Redis in the clear: {raw}");
        }
    }

    // Without the key, or with another one: a clear error, never a misread.
    let plain = store(&redis, None);
    let err = plain.load("k").await.unwrap_err();
    assert!(matches!(err, Error::Store { .. }) && err.to_string().contains("encrypted"), "{err}");
    let other = store(&redis, Some(key(8)));
    assert!(matches!(other.load("k").await, Err(Error::Store { .. })));

    // A record copied under another key does not open (the key is bound into the seal).
    let value = redis.cli(&["HGET", "tokensmith:token:{k}", "set"]);
    redis.cli(&["HSET", "tokensmith:token:{moved}", "v", "1", "set", &value]);
    assert!(matches!(sealed.load("moved").await, Err(Error::Store { .. })));

    // A plain record read by a sealing store is refused too.
    plain.save("plain", &token).await.unwrap();
    let err = sealed.load("plain").await.unwrap_err();
    assert!(err.to_string().contains("not encrypted"), "{err}");
    assert!(!format!("{err:?}").contains(ACCESS.get(..10).unwrap()));
    let _ = token.secret().expose_secret();
}
