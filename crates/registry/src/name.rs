//! Validation of repository names, tags and digests.
//!
//! Everything that reaches the filesystem from a request passes through one
//! of these validators first, which is what keeps path traversal (`..`,
//! absolute paths, `%2e`, empty components) out of the storage layer.

use std::fmt;
use std::str::FromStr;

/// Longest repository name accepted (the limit Docker's registry uses).
pub const MAX_NAME_LEN: usize = 255;

/// Longest tag accepted by the spec (`[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`).
pub const MAX_TAG_LEN: usize = 128;

/// Returns true if `name` matches the distribution spec's repository name
/// grammar `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`
/// and is at most [`MAX_NAME_LEN`] bytes long.
pub fn is_valid_repository_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_LEN && name.split('/').all(is_valid_component)
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let mut i = 0;
    loop {
        // An alphanumeric run of at least one character.
        let start = i;
        while i < b.len() && is_alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        // A separator: ".", "_", "__" or "-+".
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// Returns true if `tag` matches `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    if b.is_empty() || b.len() > MAX_TAG_LEN {
        return false;
    }
    let first_ok = b[0].is_ascii_alphanumeric() || b[0] == b'_';
    first_ok
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-')
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

/// The `<tag-or-digest>` part of a manifest URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A tag, already validated.
    Tag(String),
    /// A content digest.
    Digest(Digest),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for ok in [
            "a",
            "library/ubuntu",
            "a.b",
            "a_b",
            "a__b",
            "a---b",
            "foo/bar/baz-1.2_3",
            "0",
        ] {
            assert!(is_valid_repository_name(ok), "{ok} should be valid");
        }
        for bad in [
            "", "A", "..", "a/../b", "../etc", "/a", "a/", "a//b", "a..b", "a.-b", "a___b", "_a",
            "a_", "-a", "a.", "a b", "a%2e", "_catalog",
        ] {
            assert!(!is_valid_repository_name(bad), "{bad} should be invalid");
        }
        assert!(!is_valid_repository_name(&"a".repeat(256)));
        assert!(is_valid_repository_name(&"a".repeat(255)));
    }

    #[test]
    fn tags() {
        assert!(is_valid_tag("latest"));
        assert!(is_valid_tag("_x"));
        assert!(is_valid_tag("v1.2.3-rc_1"));
        assert!(is_valid_tag(&"a".repeat(128)));
        assert!(!is_valid_tag(&"a".repeat(129)));
        assert!(!is_valid_tag(".hidden"));
        assert!(!is_valid_tag("-x"));
        assert!(!is_valid_tag(""));
        assert!(!is_valid_tag("a/b"));
        assert!(!is_valid_tag("a:b"));
    }

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
}
