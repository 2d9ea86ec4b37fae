//! Content digests, `sha256:<64 lowercase hex>`: the registry's strict parsing
//! of untrusted input (`FromStr`), and the store's lenient form for its own
//! records and file names (`Digest::parse`, bare hex allowed).

use std::fmt;
use std::str::FromStr;

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Why a digest string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// Not of the form `algorithm:encoded`.
    #[error("invalid digest format")]
    Format,
    /// Well-formed, but an algorithm this registry does not store.
    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
}

/// A validated `sha256:<64 lowercase hex>` content digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    bytes: [u8; 32],
}

impl Digest {
    /// Builds a digest from a raw sha256 output.
    pub fn from_sha256(bytes: [u8; 32]) -> Self {
        Digest { bytes }
    }

    /// Computes the sha256 digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        use sha2::Digest as _;
        Digest::from_sha256(sha2::Sha256::digest(data).into())
    }

    /// The lowercase hex encoding (without the `sha256:` prefix).
    pub fn hex(&self) -> String {
        hex::encode(self.bytes)
    }

    /// Parses the 64-character hex part alone (as stored in file names).
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 64
            || !s
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        {
            return None;
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).ok()?;
        Some(Digest { bytes })
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (alg, enc) = s.split_once(':').ok_or(DigestError::Format)?;
        // algorithm grammar: [a-z0-9]+([+._-][a-z0-9]+)*
        let alg_ok = !alg.is_empty()
            && alg
                .split(['+', '.', '_', '-'])
                .all(|part| !part.is_empty() && part.bytes().all(is_alnum));
        let enc_ok = !enc.is_empty()
            && enc
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'=' || c == b'_' || c == b'-');
        if !alg_ok || !enc_ok {
            return Err(DigestError::Format);
        }
        if alg != "sha256" {
            return Err(DigestError::UnsupportedAlgorithm(alg.to_string()));
        }
        Digest::from_hex(enc).ok_or(DigestError::Format)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Digest {
    /// `sha256:<hex>`, or the 64 hex digits alone (as the store names files).
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        match s.strip_prefix("sha256:") {
            Some(_) => s.parse(),
            None => Digest::from_hex(s).ok_or(DigestError::Format),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let d: Digest = format!("sha256:{hex}").parse().unwrap();
        assert_eq!(d, Digest::of(b""));
        assert_eq!(d.to_string(), format!("sha256:{hex}"));
        assert_eq!("sha256:abc".parse::<Digest>(), Err(DigestError::Format));
        assert_eq!(
            format!("sha256:{}", hex.to_uppercase()).parse::<Digest>(),
            Err(DigestError::Format)
        );
        assert_eq!(
            "sha512:abcd".parse::<Digest>(),
            Err(DigestError::UnsupportedAlgorithm("sha512".into()))
        );
        assert_eq!("nocolon".parse::<Digest>(), Err(DigestError::Format));
        assert_eq!("sha256:../x".parse::<Digest>(), Err(DigestError::Format));
    }

    #[test]
    fn lenient_parse_takes_bare_hex_too() {
        let d = Digest::of(b"");
        assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
        assert_eq!(Digest::parse(&d.hex()).unwrap(), d);
        assert!(Digest::parse("sha256:zz").is_err());
        assert!(Digest::parse("../../etc/passwd").is_err());
    }
}
