//! The core's conformance suite, run against the Rails/Doorkeeper-style provider.

use tokensmith_core::testing::Conformance;
use tokensmith_ruby_style::RubyStyleProvider;

#[tokio::test]
async fn ruby_style_provider_conforms() {
    Conformance::new(|h| {
        RubyStyleProvider::builder()
            .base_url(h.base_url)
            .client_id(h.client_id)
            .client_secret(h.client_secret)
            .transport(h.transport)
            .clock(h.clock)
            .build()
    })
    .run()
    .await;
}
