//! Image references as a registry sees them: `host[:port]/repo[:tag|@digest]`.

use crate::{DistributionError, Result};

/// `host[:port]/repo[:tag|@digest]`, split.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteRef {
    pub host: String,
    pub repository: String,
    /// A tag, or `sha256:...`.
    pub reference: String,
}

impl RemoteRef {
    /// Docker's defaults: no host means Docker Hub, a one-part Hub name is in
    /// `library/`, no tag means `latest`.
    pub fn parse(name: &str) -> Result<RemoteRef> {
        let (rest, reference) = match name.split_once('@') {
            Some((r, d)) => (r, d.to_string()),
            None => match name.rsplit_once(':') {
                Some((r, t)) if !t.contains('/') => (r, t.to_string()),
                _ => (name, "latest".to_string()),
            },
        };
        let (host, repository) = match rest.split_once('/') {
            Some((h, r)) if h.contains('.') || h.contains(':') || h == "localhost" => {
                (h.to_string(), r.to_string())
            }
            _ => {
                let repo = if rest.contains('/') {
                    rest.to_string()
                } else {
                    format!("library/{rest}")
                };
                ("docker.io".to_string(), repo)
            }
        };
        if rest.is_empty() || repository.is_empty() || reference.is_empty() || host.is_empty() {
            return Err(DistributionError::InvalidReference(name.to_string()));
        }
        Ok(RemoteRef {
            host,
            repository,
            reference,
        })
    }

    /// The repository as a local image name (`host/repo`; Hub names bare).
    pub fn local_repository(&self) -> String {
        if self.host == "docker.io" {
            self.repository.trim_start_matches("library/").to_string()
        } else {
            format!("{}/{}", self.host, self.repository)
        }
    }

    /// The local name the pulled image gets (`host/repo:tag`).
    pub fn local_name(&self) -> String {
        let repo = self.local_repository();
        if self.is_digest() {
            repo
        } else {
            format!("{repo}:{}", self.reference)
        }
    }

    /// Whether the reference pins a manifest digest rather than a tag.
    pub fn is_digest(&self) -> bool {
        self.reference.starts_with("sha256:")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = RemoteRef::parse("localhost:5000/team/app:v1").unwrap();
        assert_eq!(
            (r.host.as_str(), r.repository.as_str(), r.reference.as_str()),
            ("localhost:5000", "team/app", "v1")
        );
        assert_eq!(r.local_name(), "localhost:5000/team/app:v1");
        let r = RemoteRef::parse("busybox").unwrap();
        assert_eq!(
            (r.host.as_str(), r.repository.as_str(), r.reference.as_str()),
            ("docker.io", "library/busybox", "latest")
        );
        assert_eq!(r.local_name(), "busybox:latest");
        assert_eq!(r.local_repository(), "busybox");
        let r = RemoteRef::parse("127.0.0.1:5000/x@sha256:abc").unwrap();
        assert_eq!(r.reference, "sha256:abc");
        assert!(r.is_digest());
        assert_eq!(r.local_name(), "127.0.0.1:5000/x");
        assert_eq!(r.local_repository(), "127.0.0.1:5000/x");
    }

    #[test]
    fn empty_parts_are_refused() {
        for bad in ["", "host.io/", "busybox@", "busybox:"] {
            let e = RemoteRef::parse(bad).unwrap_err();
            assert!(matches!(e, DistributionError::InvalidReference(_)), "{bad}");
            assert_eq!(e.kind(), crate::ErrorKind::Invalid);
        }
    }
}
