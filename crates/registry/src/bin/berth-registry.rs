//! `berth-registry`: the registry server as a program (`berth registry serve`
//! runs it).
//!
//! ```text
//! berth-registry serve --addr 127.0.0.1:5000 --root /tmp/reg [--htpasswd FILE]
//! berth-registry gc --root /tmp/reg [--delete-untagged] [--dry-run]
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use berth_registry::{garbage_collect_with, GcOptions, Registry, RegistryConfig};

fn usage() -> ExitCode {
    eprintln!(
        "usage: berth registry serve [--addr ADDR] --root DIR [--htpasswd FILE] [--max-blob-size BYTES]\n       berth registry gc --root DIR [--delete-untagged] [--dry-run]"
    );
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
            config.htpasswd = htpasswd;
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
                let reg = Registry::bind(config).await?;
                println!("listening on {}", reg.local_addr());
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
