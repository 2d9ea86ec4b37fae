//! sha256 digests in OCI form (`sha256:<64 hex>`).

use std::fmt;
use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

use crate::StoreError;

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(hex::encode(Sha256::digest(bytes)))
    }

    /// Parses `sha256:<hex>` or a bare 64-digit hex string.
    pub fn parse(s: &str) -> Result<Digest, StoreError> {
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        if hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Digest(hex.to_string()))
        } else {
            Err(StoreError::InvalidDigest(s.to_string()))
        }
    }

    pub fn hex(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.0)
    }
}

/// A reader that hashes everything read through it.
pub struct DigestReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> DigestReader<R> {
    pub fn new(inner: R) -> Self {
        DigestReader {
            inner,
            hasher: Sha256::new(),
        }
    }

    pub fn digest(self) -> Digest {
        Digest(hex::encode(self.hasher.finalize()))
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let d = Digest::of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
        assert!(Digest::parse("sha256:zz").is_err());
        assert!(Digest::parse("../../etc/passwd").is_err());
    }
}
