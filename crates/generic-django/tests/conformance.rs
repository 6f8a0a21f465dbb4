//! The core's conformance suite, run against the Django OAuth Toolkit provider (both credential styles).

use tokensmith_core::Scopes;
use tokensmith_core::testing::Conformance;
use tokensmith_generic_django::{DjangoCredentials, DjangoProvider};

#[tokio::test]
async fn django_provider_conforms() {
    for style in [DjangoCredentials::Basic, DjangoCredentials::Body] {
        Conformance::new(|h| {
            DjangoProvider::builder()
                .base_url(h.base_url)
                .client_id(h.client_id)
                .client_secret(h.client_secret)
                .credential_style(style)
                .scopes(Scopes::parse("read write"))
                .transport(h.transport)
                .clock(h.clock)
                .build()
        })
        .run()
        .await;
    }
}
