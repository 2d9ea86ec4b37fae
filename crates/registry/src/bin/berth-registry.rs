//! `berth-registry`: the registry server as a program (`berth registry serve`
//! runs it).
//!
//! ```text
//! berth-registry serve --addr 127.0.0.1:5000 --root /tmp/reg [--htpasswd FILE [--auth basic|token]]
//!                      [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]
//! berth-registry gc --root /tmp/reg [--delete-untagged] [--dry-run]
//! ```
//!
//! `--auth token` (needs `--htpasswd`) makes clients fetch bearer tokens
//! from the server's `/token` endpoint; `--token-key FILE` keeps the signing
//! key across restarts, `--token-ttl SECS` sets the token lifetime and
//! `--token-realm URL` the realm announced in challenges.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use std::time::Duration;

use berth_registry::{garbage_collect_with, AuthMode, GcOptions, Registry, RegistryConfig};

const USAGE: &str = "\
usage: berth registry serve [--addr ADDR] --root DIR [--max-blob-size BYTES]
                            [--htpasswd FILE [--auth basic|token] [--token-key FILE]
                             [--token-ttl SECS] [--token-realm URL]]
                            [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]
       berth registry gc --root DIR [--delete-untagged] [--dry-run]

  --htpasswd FILE       require users from FILE (bcrypt or {SHA} entries)
  --auth basic|token    HTTP Basic on every request (default), or bearer
                        tokens from this server's /token endpoint
  --token-key FILE      token signing key (>= 32 bytes; default: random per start)
  --token-ttl SECS      token lifetime (default 300)
  --token-realm URL     realm announced in challenges (default: this server's /token)
  --tls-cert FILE       PEM certificate chain: serve HTTPS
  --tls-key FILE        PEM private key (PKCS#8, RSA or EC) for --tls-cert
  --tls-client-ca FILE  PEM CA bundle: require client certificates signed by it";

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first().cloned() else {
        return usage();
    };
    let mut addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 5000));
    let mut root: Option<PathBuf> = None;
    let mut htpasswd = None;
    let mut max_blob = None;
    let mut auth_mode = AuthMode::Basic;
    let mut token_key = None;
    let mut token_ttl = None;
    let mut token_realm = None;
    let mut tls_cert = None;
    let mut tls_key = None;
    let mut tls_client_ca = None;
    let mut opts = GcOptions::default();
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--addr" => match it.next().and_then(|v| v.parse().ok()) {
                Some(v) => addr = v,
                None => return usage(),
            },
            "--root" => root = it.next().map(PathBuf::from),
            "--htpasswd" => htpasswd = it.next().map(PathBuf::from),
            "--max-blob-size" => max_blob = it.next().and_then(|v| v.parse::<u64>().ok()),
            "--auth" => match it.next().map(String::as_str) {
                Some("basic") => auth_mode = AuthMode::Basic,
                Some("token") => auth_mode = AuthMode::Token,
                _ => return usage(),
            },
            "--token-key" => match it.next() {
                Some(v) => token_key = Some(PathBuf::from(v)),
                None => return usage(),
            },
            "--token-ttl" => match it.next().and_then(|v| v.parse::<u64>().ok()) {
                Some(v) if v > 0 => token_ttl = Some(Duration::from_secs(v)),
                _ => return usage(),
            },
            "--token-realm" => match it.next() {
                Some(v) => token_realm = Some(v.clone()),
                None => return usage(),
            },
            "--tls-cert" => match it.next() {
                Some(v) => tls_cert = Some(PathBuf::from(v)),
                None => return usage(),
            },
            "--tls-key" => match it.next() {
                Some(v) => tls_key = Some(PathBuf::from(v)),
                None => return usage(),
            },
            "--tls-client-ca" => match it.next() {
                Some(v) => tls_client_ca = Some(PathBuf::from(v)),
                None => return usage(),
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "--delete-untagged" => opts.delete_untagged = true,
            "--dry-run" => opts.dry_run = true,
            _ => return usage(),
        }
    }
    let Some(root) = root else {
        return usage();
    };
    match cmd.as_str() {
        "gc" => match garbage_collect_with(&root, &opts) {
            Ok(r) => {
                println!("{r:#?}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("gc failed: {e}");
                ExitCode::FAILURE
            }
        },
        "serve" => {
            let mut config = RegistryConfig::new(addr, root);
            if auth_mode == AuthMode::Token && htpasswd.is_none() {
                eprintln!("--auth token needs --htpasswd FILE");
                return usage();
            }
            if tls_cert.is_some() != tls_key.is_some() {
                eprintln!("--tls-cert and --tls-key go together");
                return usage();
            }
            if tls_client_ca.is_some() && tls_cert.is_none() {
                eprintln!("--tls-client-ca needs --tls-cert and --tls-key");
                return usage();
            }
            config.htpasswd = htpasswd;
            config.auth_mode = auth_mode;
            config.token_key = token_key;
            if let Some(t) = token_ttl {
                config.token_ttl = t;
            }
            config.token_realm = token_realm;
            config.tls_cert = tls_cert;
            config.tls_key = tls_key;
            config.tls_client_ca = tls_client_ca;
            if let Some(m) = max_blob {
                config.max_blob_size = m;
            }
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let res = rt.block_on(async {
                let https = config.tls_cert.is_some();
                let reg = Registry::bind(config).await?;
                println!(
                    "listening on {}{}",
                    reg.local_addr(),
                    if https { " (https)" } else { "" }
                );
                reg.run(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await
            });
            match res {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("registry failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => usage(),
    }
}
