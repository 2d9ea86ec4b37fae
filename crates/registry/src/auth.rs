//! HTTP Basic authentication against an htpasswd file.
//!
//! Supported entries: bcrypt (`$2y$`, `$2a$`, `$2b$`, as written by
//! `htpasswd -B`) and `{SHA}` (base64 of SHA-1, `htpasswd -s`). Other
//! formats (MD5 `$apr1$`, crypt) are skipped with a warning at load time.
//!
//! bcrypt is deliberately slow, and clients send credentials with every
//! request, so a successful check is cached as a salted SHA-256 of the
//! presented credentials; a cache hit costs one hash instead of one bcrypt.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::error::AuthError;

/// The realm sent in `WWW-Authenticate`.
pub const REALM: &str = "berth-registry";

#[derive(Debug, Clone)]
enum Hash {
    Bcrypt(String),
    Sha1([u8; 20]),
}

/// Loaded htpasswd credentials.
#[derive(Debug)]
pub(crate) struct Htpasswd {
    users: HashMap<String, Hash>,
    /// user -> SHA-256(salt || user || ':' || password) of the last
    /// credentials that verified.
    cache: Mutex<HashMap<String, [u8; 32]>>,
    salt: [u8; 16],
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Htpasswd {
    /// Parses htpasswd text. `origin` is used in log messages only.
    pub fn parse(text: &str, origin: &Path) -> Self {
        let mut users = HashMap::new();
        for (lineno, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((user, hash)) = line.split_once(':') else {
                tracing::warn!(path = %origin.display(), line = lineno + 1, "htpasswd line without ':' ignored");
                continue;
            };
            let parsed =
                if hash.starts_with("$2y$") || hash.starts_with("$2a$") || hash.starts_with("$2b$")
                {
                    Some(Hash::Bcrypt(hash.to_string()))
                } else if let Some(b64) = hash.strip_prefix("{SHA}") {
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .ok()
                        .and_then(|v| <[u8; 20]>::try_from(v.as_slice()).ok())
                        .map(Hash::Sha1)
                } else {
                    None
                };
            match parsed {
                Some(h) => {
                    users.insert(user.to_string(), h);
                }
                None => tracing::warn!(
                    path = %origin.display(),
                    line = lineno + 1,
                    user,
                    "unsupported htpasswd hash format (use bcrypt, htpasswd -B); entry ignored"
                ),
            }
        }
        Htpasswd {
            users,
            cache: Mutex::new(HashMap::new()),
            salt: rand::random(),
        }
    }

    /// Reads and parses an htpasswd file.
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let h = Htpasswd::parse(&text, path);
        if h.users.is_empty() {
            return Err(AuthError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(h)
    }

    fn fingerprint(&self, user: &str, password: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.salt);
        h.update(user.as_bytes());
        h.update(b":");
        h.update(password);
        h.finalize().into()
    }

    fn verify_slow(&self, user: &str, password: &[u8]) -> bool {
        match self.users.get(user) {
            Some(Hash::Bcrypt(hash)) => bcrypt::verify(password, hash).unwrap_or(false),
            Some(Hash::Sha1(expected)) => {
                use sha1::Digest as _;
                let got: [u8; 20] = sha1::Sha1::digest(password).into();
                ct_eq(&got, expected)
            }
            None => {
                // Spend comparable time for unknown users.
                let _ = bcrypt::verify(password, DUMMY_HASH);
                false
            }
        }
    }

    /// Checks an `Authorization` header value. bcrypt runs on the blocking
    /// pool so it does not stall the reactor.
    pub async fn check(self: &Arc<Self>, authorization: Option<&[u8]>) -> Option<String> {
        let (user, password) = parse_basic(authorization?)?;
        let fp = self.fingerprint(&user, &password);
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if cache.get(&user).is_some_and(|c| ct_eq(c, &fp)) {
                return Some(user);
            }
        }
        let this = Arc::clone(self);
        let u = user.clone();
        let ok = tokio::task::spawn_blocking(move || this.verify_slow(&u, &password))
            .await
            .unwrap_or(false);
        if ok {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.insert(user.clone(), fp);
            Some(user)
        } else {
            None
        }
    }
}

/// bcrypt of a random string, used to equalize timing for unknown users.
const DUMMY_HASH: &str = "$2y$05$6gdpF64hWcBRBrkadJ4Bl.dJ1.WaggYBDce8aV/o/8zcC3bbRLI/O";

/// Decodes `Basic base64(user:password)`.
fn parse_basic(value: &[u8]) -> Option<(String, Vec<u8>)> {
    let s = std::str::from_utf8(value).ok()?.trim();
    let (scheme, rest) = s.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_basic_header() {
        let v = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("bob:pa:ss")
        );
        assert_eq!(
            parse_basic(v.as_bytes()),
            Some(("bob".to_string(), b"pa:ss".to_vec()))
        );
        assert_eq!(parse_basic(b"Bearer abc"), None);
        assert_eq!(parse_basic(b"Basic !!!"), None);
    }

    #[tokio::test]
    async fn sha_and_bcrypt_entries() {
        // {SHA} of "secret", as `htpasswd -s` writes it.
        let text = format!(
            "# comment\nalice:{{SHA}}5en6G6MezRroT3XKqkdPOmY/BfQ=\nbob:{}\nmd5:$apr1$x$y\n",
            bcrypt::hash("hunter2", 4).unwrap()
        );
        let h = Arc::new(Htpasswd::parse(&text, Path::new("test")));
        assert_eq!(h.users.len(), 2);
        let hdr = |u: &str, p: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        };
        assert_eq!(
            h.check(Some(hdr("alice", "secret").as_bytes()))
                .await
                .as_deref(),
            Some("alice")
        );
        assert_eq!(h.check(Some(hdr("alice", "wrong").as_bytes())).await, None);
        assert_eq!(
            h.check(Some(hdr("bob", "hunter2").as_bytes()))
                .await
                .as_deref(),
            Some("bob")
        );
        // cached path
        assert_eq!(
            h.check(Some(hdr("bob", "hunter2").as_bytes()))
                .await
                .as_deref(),
            Some("bob")
        );
        assert_eq!(h.check(Some(hdr("bob", "hunter3").as_bytes())).await, None);
        assert_eq!(h.check(Some(hdr("eve", "x").as_bytes())).await, None);
        assert_eq!(h.check(None).await, None);
    }
}
