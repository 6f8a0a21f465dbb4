//! Token response parsing: status + content type + body, with and without WhiteBIT's envelope.
//!
//! Input layout: 2 bytes of status (mapped onto 100..=599), 1 byte choosing the content type (or,
//! above the known ones, taking it from the input), 1 byte of flags, then the body.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use tokensmith_core::parse::{ResponseFormat, parse_response};
use tokensmith_core::{Error, RefreshToken, http::HttpResponse};

const CONTENT_TYPES: [&str; 8] = [
    "application/json",
    "application/json; charset=utf-8",
    "application/x-www-form-urlencoded",
    "text/html; charset=iso-8859-1",
    "text/plain",
    "",
    "application/problem+json",
    "APPLICATION/X-WWW-FORM-URLENCODED",
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let status = 100 + u16::from_le_bytes([data[0], data[1]]) % 500;
    let flags = data[3];
    let mut body = &data[4..];
    let content_type = match CONTENT_TYPES.get(usize::from(data[2])) {
        Some(ct) => (*ct).to_owned(),
        None => {
            // The content type comes from the input, up to the first NUL.
            let end = body.iter().position(|b| *b == 0).unwrap_or(body.len());
            let ct = String::from_utf8_lossy(&body[..end]).into_owned();
            body = body.get(end + 1..).unwrap_or_default();
            ct
        }
    };
    let response = HttpResponse::new(status, &content_type, body.to_vec());
    let format = if flags & 1 == 1 { ResponseFormat::default().envelope("/data") } else { ResponseFormat::default() };
    let previous = (flags & 2 == 2).then(|| RefreshToken::new("previous-refresh-token"));
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    match parse_response(&response, &format, now, previous.as_ref()) {
        Ok(token) => {
            assert!((200..300).contains(&status), "a token from status {status}");
            assert!(token.lifetime() >= Duration::from_secs(1), "a token that is already expired");
            assert!(token.lifetime() <= Duration::from_secs(30 * 24 * 3600), "the lifetime cap was not applied");
        }
        Err(error) => {
            // Rendering never panics, and errors from non-2xx answers carry their status.
            let _ = format!("{error} {error:?}");
            if !(200..300).contains(&status) {
                assert_eq!(error.status(), Some(status), "{error:?}");
            }
            if let Error::Http(e) = &error {
                assert!(e.excerpt.chars().count() <= 121);
            }
        }
    }
});
