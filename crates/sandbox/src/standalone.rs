//! The sandbox as a standalone server.

use crate::config::{Dialect, SandboxConfig};
use crate::server::Sandbox;

/// Runs the sandbox as a standalone server, as `tokensmith sandbox [--port N]`
/// does: binds 127.0.0.1:`port` (`0` picks a free port), prints each dialect's
/// base URL, token URL and demo credentials to stdout, and serves until Ctrl-C.
///
/// # Errors
///
/// Fails when the port cannot be bound or Ctrl-C cannot be listened for.
pub async fn run_standalone(port: u16) -> std::io::Result<()> {
    let sandbox = Sandbox::start_with(SandboxConfig::default().port(port)).await?;
    println!("{}", banner(&sandbox));
    let result = tokio::signal::ctrl_c().await;
    sandbox.shutdown().await;
    result
}

/// What [`run_standalone`] prints.
pub(crate) fn banner(sandbox: &Sandbox) -> String {
    let mut out = format!("tokensmith sandbox listening on http://{} (Ctrl-C to stop)\n", sandbox.addr());
    for d in Dialect::ALL {
        let plain = sandbox.credentials(d);
        let special = sandbox.special_credentials(d);
        out.push_str(&format!(
            "\n[{name}]\n  base URL:       {base}\n  token URL:      {token}\n  protected URL:  {protected}\n",
            name = d.name(),
            base = sandbox.base_url(d),
            token = sandbox.token_url(d),
            protected = sandbox.protected_url(d),
        ));
        if d == Dialect::Whitebit {
            out.push_str(&format!(
                "  authorize URL:  {}?clientId={}&state=...\n  refresh URL:    {}\n",
                sandbox.authorize_url(),
                plain.client_id,
                sandbox.refresh_url()
            ));
        }
        out.push_str(&format!(
            "  client:         {} / {}\n  special client: {} / {}\n",
            plain.client_id, plain.client_secret, special.client_id, special.client_secret
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn banner_lists_every_dialect() {
        let sandbox = Sandbox::start().await.unwrap();
        let text = banner(&sandbox);
        for d in Dialect::ALL {
            assert!(text.contains(&sandbox.token_url(d)));
            assert!(text.contains(&sandbox.credentials(d).client_secret));
        }
        assert!(text.contains(&sandbox.authorize_url()));
        sandbox.shutdown().await;
    }
}
