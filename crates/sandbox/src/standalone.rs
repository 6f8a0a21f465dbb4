//! The sandbox as a standalone server.

use std::str::FromStr;

use crate::config::{Dialect, SandboxConfig};
use crate::fault::Fault;
use crate::server::Sandbox;

/// A fault to inject at start-up, as `tokensmith sandbox --fault` takes it:
/// `DIALECT:PATH=FAULT[*TIMES]`, e.g. `probit:/token=status:503*2` (the next two token requests to
/// the ProBit dialect get a 503). `TIMES` defaults to 1; `FAULT` is as [`Fault`]'s `FromStr` reads it.
///
/// ```
/// use tokensmith_sandbox::{Dialect, Fault, FaultSpec};
///
/// let spec: FaultSpec = "generic-django:/o/token/=429:5*3".parse().unwrap();
/// assert_eq!(spec.dialect, Dialect::GenericDjango);
/// assert_eq!(spec.path, "/o/token/");
/// assert_eq!(spec.fault, Fault::TooManyRequests { retry_after: Some("5".into()) });
/// assert_eq!(spec.times, 3);
/// assert!("nowhere:/token=reset".parse::<FaultSpec>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FaultSpec {
    /// The dialect whose route meets the fault.
    pub dialect: Dialect,
    /// The path below the dialect's base, e.g. `/token`.
    pub path: String,
    /// What happens.
    pub fault: Fault,
    /// How many requests meet it.
    pub times: usize,
}

impl FromStr for FaultSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        const FORM: &str = "give DIALECT:PATH=FAULT[*TIMES], e.g. probit:/token=status:503*2";
        let (route, fault) = text.split_once('=').ok_or_else(|| format!("`{text}` has no `=`; {FORM}"))?;
        let (name, path) = route.split_once(':').ok_or_else(|| format!("`{route}` has no `:`; {FORM}"))?;
        let dialect = Dialect::ALL.into_iter().find(|d| d.name() == name.trim()).ok_or_else(|| {
            let names: Vec<&str> = Dialect::ALL.iter().map(|d| d.name()).collect();
            format!("unknown dialect `{name}`; use {}", names.join(", "))
        })?;
        let path = path.trim();
        if !path.starts_with('/') {
            return Err(format!("the path `{path}` must start with `/`; {FORM}"));
        }
        let (fault, times) = match fault.rsplit_once('*') {
            Some((fault, times)) => {
                let times = times
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=1_000_000).contains(n))
                    .ok_or_else(|| format!("`*{times}`: the count is a whole number from 1 to 1000000"))?;
                (fault, times)
            }
            None => (fault, 1),
        };
        Ok(FaultSpec { dialect, path: path.to_owned(), fault: fault.parse()?, times })
    }
}

/// Runs the sandbox as a standalone server, as `tokensmith sandbox [--port N]`
/// does: binds 127.0.0.1:`port` (`0` picks a free port), prints each dialect's
/// base URL, token URL and demo credentials to stdout, and serves until Ctrl-C.
///
/// # Errors
///
/// Fails when the port cannot be bound or Ctrl-C cannot be listened for.
pub async fn run_standalone(port: u16) -> std::io::Result<()> {
    run_standalone_with(port, Vec::new()).await
}

/// [`run_standalone`] with `faults` injected before the first request. Faults can also be injected,
/// and counts and the request log read, over HTTP while it runs: see the banner it prints.
///
/// # Errors
///
/// Fails when the port cannot be bound or Ctrl-C cannot be listened for.
pub async fn run_standalone_with(port: u16, faults: Vec<FaultSpec>) -> std::io::Result<()> {
    let sandbox = Sandbox::start_with(SandboxConfig::default().port(port)).await?;
    for spec in faults {
        sandbox.inject(spec.dialect, &spec.path, spec.fault, spec.times);
    }
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
    let control = format!("http://{}/_sandbox", sandbox.addr());
    out.push_str(&format!(
        "\n[control]\n  counts:         GET {control}/counts\n  request log:    GET {control}/requests[?dialect=NAME]\n  \
         inject a fault: POST {control}/faults {{\"dialect\":\"probit\",\"path\":\"/token\",\"fault\":\"status:503\",\"times\":1}}\n  \
         clear faults:   DELETE {control}/faults\n"
    ));
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
