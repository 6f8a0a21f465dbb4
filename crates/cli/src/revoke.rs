//! `tokensmith revoke`: revokes the tokens `authorize` saved (RFC 7009) and removes them from the store.

use clap::Args;
use tokensmith::flows::FlowClient;
use tokensmith::{Result, interactive};

use crate::{ClientArgs, FlowArgs, ProviderArgs};

#[derive(Debug, Args)]
pub(crate) struct RevokeArgs {
    #[command(flatten)]
    provider: ProviderArgs,
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    flow: FlowArgs,
}

pub(crate) async fn run(args: RevokeArgs) -> Result<()> {
    let mut config = args.provider.config()?;
    args.client.apply(&mut config);
    args.flow.apply(&mut config);
    let config = interactive::flow_config(&config).await?;
    let url = interactive::endpoint_url(&config, "revocation_url", "`revoke`")?;
    let (provider, store) = interactive::refresh_provider(&config)?;
    let client =
        FlowClient::for_token_client(provider.source().client()).allow_insecure_http(config.insecure_http()).build()?;
    let store_name = config.store.clone().unwrap_or_default();
    if client.revoke_stored(&url, store.as_ref(), provider.key()).await? {
        eprintln!("Revoked: the refresh and access tokens, removed from {store_name}.");
    } else {
        eprintln!("Nothing to revoke: {store_name} holds no tokens for this provider, client and scopes.");
    }
    Ok(())
}
