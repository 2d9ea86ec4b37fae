//! `pull`, `push` and `login`: images to and from any OCI distribution registry.
//!
//! The conversation with the registry (TLS, credentials, tokens, the API's
//! requests) is `berth-distribution`'s; here are what a transfer does with the
//! engine's store and how it reports progress ([`crate::progress`]).
//! A pull is in [`pull`], a push in [`push`].
//!
//! Layers travel uncompressed when berth pushes, so a layer's digest is its diff
//! ID and digests survive any round trip.

mod pull;
mod push;

use std::sync::Arc;

use berth_distribution::{Client, RegistryAuth, RemoteRef};
use berth_oci::manifest::Manifest;

use crate::progress::{Progress, ProgressStream};
use crate::{Engine, Result};

/// The 12 hex digits docker shows for a layer.
fn short_digest(d: &str) -> String {
    d.trim_start_matches("sha256:").chars().take(12).collect()
}

impl Engine {
    /// A client for registry `host` with this daemon's TLS material
    /// (`certs_dir` and `/etc/docker/certs.d`) and insecure-registry list.
    fn registry_client(&self, host: &str, auth: Option<RegistryAuth>) -> Result<Client> {
        let dirs = [
            self.config.certs_dir.clone(),
            std::path::PathBuf::from("/etc/docker/certs.d"),
        ];
        Ok(Client::new(
            host,
            auth,
            &dirs,
            self.insecure_registry(host),
        )?)
    }

    /// Where a pull is served from, with the manifest it answered: for Docker
    /// Hub's images each mirror in turn (`registry-mirrors`, without the
    /// user's Hub credentials), then the Hub itself, as dockerd tries them.
    async fn first_source(
        &self,
        remote: &RemoteRef,
        auth: Option<RegistryAuth>,
        accept: &str,
    ) -> Result<(Client, Manifest, String)> {
        if remote.host == "docker.io" {
            for mirror in self.registry_mirrors() {
                let (plain_http, host) = match mirror.trim_end_matches('/') {
                    m if m.starts_with("http://") => (true, m["http://".len()..].to_string()),
                    m => (false, m.trim_start_matches("https://").to_string()),
                };
                let Ok(mut client) = self.registry_client(&host, None) else {
                    continue;
                };
                if plain_http {
                    client = client.over_plain_http();
                }
                match client
                    .manifest(&remote.repository, &remote.reference, accept)
                    .await
                {
                    Ok((manifest, digest)) => return Ok((client, manifest, digest)),
                    Err(e) => {
                        tracing::info!(%mirror, error = %e, "mirror did not serve the image; trying the next source")
                    }
                }
            }
        }
        let client = self.registry_client(&remote.host, auth)?;
        let (manifest, digest) = client
            .manifest(&remote.repository, &remote.reference, accept)
            .await?;
        Ok((client, manifest, digest))
    }

    /// `POST /images/create?fromImage=`: progress stream; ends in an error line on failure.
    pub fn pull(self: &Arc<Self>, name: &str, auth: Option<RegistryAuth>) -> ProgressStream {
        self.transfer(name, auth, |engine, name, auth, progress| async move {
            engine.pull_image(&name, auth, &progress).await
        })
    }

    /// `POST /images/{name}/push`: the same kind of stream.
    pub fn push(self: &Arc<Self>, name: &str, auth: Option<RegistryAuth>) -> ProgressStream {
        self.transfer(name, auth, |engine, name, auth, progress| async move {
            engine.push_image(&name, auth, &progress).await
        })
    }

    /// Runs one pull or push in its own task, its progress and its final
    /// error (if any) going to the returned stream.
    fn transfer<F, Fut>(
        self: &Arc<Self>,
        name: &str,
        auth: Option<RegistryAuth>,
        run: F,
    ) -> ProgressStream
    where
        F: FnOnce(Arc<Engine>, String, Option<RegistryAuth>, Progress) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<()>> + Send,
    {
        let (progress, rx) = Progress::channel(false);
        let engine = self.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            if let Err(e) = run(engine, name, auth, progress.clone()).await {
                progress.error(&e.to_string()).await;
            }
        });
        rx
    }

    /// `POST /auth`: checks credentials against the registry's `/v2/`.
    pub async fn login(&self, server: &str, auth: RegistryAuth) -> Result<String> {
        let host = server
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/');
        self.registry_client(host, Some(auth))?
            .check_credentials()
            .await?;
        Ok("Login Succeeded".into())
    }
}
