//! `tokensmith-sandbox [--port N]`: runs the tokensmith sandbox on 127.0.0.1
//! until Ctrl-C.

use std::process::ExitCode;

const USAGE: &str = "usage: tokensmith-sandbox [--port N]\n\nServes the four tokensmith provider dialects on 127.0.0.1:N (default 0: a free port)\nand prints their URLs and demo credentials.";

fn parse_port(args: &[String]) -> Result<Option<u16>, String> {
    let mut port = 0;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let value = match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--port" | "-p" => iter.next().ok_or_else(|| "--port needs a value".to_owned())?.as_str(),
            other => match other.strip_prefix("--port=") {
                Some(v) => v,
                None => return Err(format!("unexpected argument {other:?}")),
            },
        };
        port = value.parse().map_err(|_| format!("invalid port {value:?}"))?;
    }
    Ok(Some(port))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = match parse_port(&args) {
        Ok(Some(port)) => port,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(tokensmith_sandbox::run_standalone(port)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_ports() {
        assert_eq!(parse_port(&args(&[])), Ok(Some(0)));
        assert_eq!(parse_port(&args(&["--port", "8080"])), Ok(Some(8080)));
        assert_eq!(parse_port(&args(&["--port=9"])), Ok(Some(9)));
        assert_eq!(parse_port(&args(&["--help"])), Ok(None));
        assert!(parse_port(&args(&["--port"])).is_err());
        assert!(parse_port(&args(&["--port", "x"])).is_err());
        assert!(parse_port(&args(&["extra"])).is_err());
    }
}
