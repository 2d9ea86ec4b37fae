//! Bearer tokens for the distribution token flow (`AuthMode::Token`).
//!
//! A token is a compact JWT signed with HMAC-SHA256 (`alg: HS256`) under a
//! key that is either random per server start or read from
//! [`crate::RegistryConfig::token_key`]. Its claims follow the distribution
//! token format: `iss`/`aud` are the service name, `sub` the htpasswd user,
//! `exp`/`nbf`/`iat` Unix seconds, and `access` the granted scopes as
//! `[{"type": "repository", "name": "lib/app", "actions": ["pull", "push"]}]`.
//! Tokens are not stored: any token whose signature verifies and that has
//! not expired is accepted until it expires.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::auth::REALM;
use crate::error::AuthError;
use crate::name::is_valid_repository_name;

type HmacSha256 = Hmac<Sha256>;

/// The `service` of the challenge and the `iss`/`aud` of every token.
pub(crate) const SERVICE: &str = REALM;
/// Shortest accepted signing key, in bytes.
pub(crate) const MIN_KEY_LEN: usize = 32;
/// Most scopes honoured in one token request.
pub(crate) const MAX_SCOPES: usize = 64;
/// Longest `Authorization: Bearer` token considered.
const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Tolerated clock difference for `nbf`.
const LEEWAY_SECS: u64 = 60;

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// One granted (or requested) scope: a resource and actions on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ResourceActions {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

impl ResourceActions {
    /// Parses `type:name:actions` (e.g. `repository:lib/app:pull,push`,
    /// `registry:catalog:*`). Unknown resource types, invalid names and
    /// unknown actions are dropped; `None` if nothing usable is left.
    pub fn parse(scope: &str) -> Option<Self> {
        let (kind, rest) = scope.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        // `repository(plugin)` style resource classes are ignored.
        let kind = kind.split_once('(').map_or(kind, |(k, _)| k);
        let allowed: &[&str] = match kind {
            "repository" if is_valid_repository_name(name) => &["pull", "push", "delete", "*"],
            "registry" if name == "catalog" => &["*"],
            _ => return None,
        };
        let mut acts: Vec<String> = Vec::new();
        for a in actions.split(',').map(str::trim) {
            if allowed.contains(&a) && !acts.iter().any(|x| x == a) {
                acts.push(a.to_string());
            }
        }
        if acts.is_empty() {
            return None;
        }
        Some(ResourceActions {
            kind: kind.to_string(),
            name: name.to_string(),
            actions: acts,
        })
    }

    fn allows(&self, action: &str) -> bool {
        self.actions.iter().any(|a| a == action || a == "*")
    }
}

/// Parses the `scope` parameters of a token request (each may hold several
/// space-separated scopes) and merges scopes on the same resource.
pub(crate) fn parse_scopes<'a>(
    values: impl Iterator<Item = &'a str>,
) -> Result<Vec<ResourceActions>, usize> {
    let mut out: Vec<ResourceActions> = Vec::new();
    let mut n = 0;
    // '+' is a form-encoded space; it cannot occur in names or actions.
    for s in values
        .flat_map(|v| v.split([' ', '+']))
        .filter(|s| !s.is_empty())
    {
        n += 1;
        if n > MAX_SCOPES {
            return Err(n);
        }
        let Some(ra) = ResourceActions::parse(s) else {
            tracing::debug!(scope = s, "ignoring unusable scope in token request");
            continue;
        };
        match out
            .iter_mut()
            .find(|o| o.kind == ra.kind && o.name == ra.name)
        {
            Some(o) => {
                for a in ra.actions {
                    if !o.actions.contains(&a) {
                        o.actions.push(a);
                    }
                }
            }
            None => out.push(ra),
        }
    }
    Ok(out)
}

/// The access one request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Required {
    pub kind: &'static str,
    pub name: String,
    pub actions: &'static [&'static str],
}

impl Required {
    pub fn repository(name: &str, actions: &'static [&'static str]) -> Self {
        Required {
            kind: "repository",
            name: name.to_string(),
            actions,
        }
    }

    pub fn catalog() -> Self {
        Required {
            kind: "registry",
            name: "catalog".into(),
            actions: &["*"],
        }
    }

    /// The scope string for a challenge, e.g. `repository:a:pull,push`.
    pub fn scope(&self) -> String {
        format!("{}:{}:{}", self.kind, self.name, self.actions.join(","))
    }

    /// Whether `granted` covers every action needed.
    pub fn covered_by(&self, granted: &[ResourceActions]) -> bool {
        granted
            .iter()
            .find(|g| g.kind == self.kind && g.name == self.name)
            .is_some_and(|g| self.actions.iter().all(|a| g.allows(a)))
    }
}

/// The claims of a token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    pub jti: String,
    #[serde(default)]
    pub access: Vec<ResourceActions>,
}

/// Why a presented token was refused (logged, not sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Invalid {
    Malformed,
    Signature,
    Claims,
    Expired,
}

impl Invalid {
    pub fn as_str(self) -> &'static str {
        match self {
            Invalid::Malformed => "malformed token",
            Invalid::Signature => "bad signature",
            Invalid::Claims => "wrong issuer, audience or start time",
            Invalid::Expired => "token expired",
        }
    }
}

/// A freshly issued token.
#[derive(Debug)]
pub(crate) struct Issued {
    pub token: String,
    pub expires_in: u64,
    pub issued_at: String,
}

/// Issues and verifies tokens.
pub(crate) struct TokenIssuer {
    key: Vec<u8>,
    ttl: Duration,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl TokenIssuer {
    /// An issuer with a random key (tokens die with the process).
    pub fn random(ttl: Duration) -> Self {
        let key: [u8; 32] = rand::random();
        TokenIssuer {
            key: key.to_vec(),
            ttl,
        }
    }

    /// An issuer whose key is the content of `path`, surrounding
    /// whitespace trimmed (so `openssl rand -hex 32 > key` works).
    pub fn from_key_file(path: &Path, ttl: Duration) -> Result<Self, AuthError> {
        let raw = std::fs::read(path).map_err(|source| AuthError::TokenKeyRead {
            path: path.to_path_buf(),
            source,
        })?;
        let key = raw.trim_ascii();
        if key.len() < MIN_KEY_LEN {
            return Err(AuthError::TokenKeyShort {
                path: path.to_path_buf(),
                len: key.len(),
                min: MIN_KEY_LEN,
            });
        }
        Ok(TokenIssuer {
            key: key.to_vec(),
            ttl,
        })
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length; this cannot fail.
        <HmacSha256 as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!())
    }

    /// Signs a token for `sub` granting `access`.
    pub fn issue(&self, sub: &str, access: Vec<ResourceActions>, now: SystemTime) -> Issued {
        let iat = unix_secs(now);
        let expires_in = self.ttl.as_secs().max(1);
        let jti: [u8; 16] = rand::random();
        let claims = Claims {
            iss: SERVICE.into(),
            sub: sub.into(),
            aud: SERVICE.into(),
            exp: iat.saturating_add(expires_in),
            nbf: iat,
            iat,
            jti: hex::encode(jti),
            access,
        };
        // Serializing plain strings and integers cannot fail.
        let payload = serde_json::to_vec(&claims).unwrap_or_default();
        let mut signing_input = URL_SAFE_NO_PAD.encode(HEADER);
        signing_input.push('.');
        signing_input.push_str(&URL_SAFE_NO_PAD.encode(payload));
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let sig = mac.finalize().into_bytes();
        signing_input.push('.');
        signing_input.push_str(&URL_SAFE_NO_PAD.encode(sig));
        Issued {
            token: signing_input,
            expires_in,
            issued_at: rfc3339(iat),
        }
    }

    /// Checks signature, issuer, audience and lifetime.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<Claims, Invalid> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Invalid::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Invalid::Malformed);
        };
        let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| Invalid::Malformed)?;
        let mut mac = self.mac();
        mac.update(h.as_bytes());
        mac.update(b".");
        mac.update(p.as_bytes());
        mac.verify_slice(&sig).map_err(|_| Invalid::Signature)?;
        // Signed by us, so the header is ours; check it anyway.
        let header: serde_json::Value = URL_SAFE_NO_PAD
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(Invalid::Malformed)?;
        if header["alg"] != "HS256" {
            return Err(Invalid::Malformed);
        }
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(Invalid::Malformed)?;
        let now = unix_secs(now);
        if claims.iss != SERVICE || claims.aud != SERVICE || claims.nbf > now + LEEWAY_SECS {
            return Err(Invalid::Claims);
        }
        if now >= claims.exp {
            return Err(Invalid::Expired);
        }
        Ok(claims)
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds (UTC).
pub(crate) fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (H. Hinnant), valid for the whole u64/86400 range we use.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn scopes() {
        let s = parse_scopes(
            [
                "repository:lib/app:pull",
                "repository:lib/app:push,bogus registry:catalog:*",
                "repository:Bad:pull+repository(plugin):x:pull",
                "nothing",
                "repository:y:",
            ]
            .into_iter(),
        )
        .unwrap();
        assert_eq!(
            s,
            vec![
                ResourceActions {
                    kind: "repository".into(),
                    name: "lib/app".into(),
                    actions: vec!["pull".into(), "push".into()],
                },
                ResourceActions {
                    kind: "registry".into(),
                    name: "catalog".into(),
                    actions: vec!["*".into()],
                },
                ResourceActions {
                    kind: "repository".into(),
                    name: "x".into(),
                    actions: vec!["pull".into()],
                },
            ]
        );
        let many = vec!["repository:a:pull"; MAX_SCOPES + 1];
        assert!(parse_scopes(many.into_iter()).is_err());

        let pull_push = Required::repository("lib/app", &["pull", "push"]);
        assert_eq!(pull_push.scope(), "repository:lib/app:pull,push");
        assert!(pull_push.covered_by(&s));
        assert!(!Required::repository("x", &["pull", "push"]).covered_by(&s));
        assert!(!Required::repository("other", &["pull"]).covered_by(&s));
        assert!(Required::catalog().covered_by(&s));
        let star = parse_scopes(["repository:x:*"].into_iter()).unwrap();
        assert!(Required::repository("x", &["delete"]).covered_by(&star));
    }

    #[test]
    fn sign_and_verify() {
        let now = SystemTime::now();
        let a = TokenIssuer::random(Duration::from_secs(300));
        let b = TokenIssuer::random(Duration::from_secs(300));
        let access = parse_scopes(["repository:a:pull"].into_iter()).unwrap();
        let t = a.issue("alice", access.clone(), now);
        assert_eq!(t.expires_in, 300);
        let c = a.verify(&t.token, now).unwrap();
        assert_eq!(c.sub, "alice");
        assert_eq!(c.access, access);
        assert_eq!(b.verify(&t.token, now).unwrap_err(), Invalid::Signature);
        assert_eq!(
            a.verify(&t.token, now + Duration::from_secs(301))
                .unwrap_err(),
            Invalid::Expired
        );
        // Tamper with the payload: grant push.
        let mut parts: Vec<String> = t.token.split('.').map(String::from).collect();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        claims["access"][0]["actions"] = serde_json::json!(["pull", "push"]);
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        assert_eq!(
            a.verify(&parts.join("."), now).unwrap_err(),
            Invalid::Signature
        );
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "!!.!!.!!",
            &"x".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert!(a.verify(bad, now).is_err(), "{bad}");
        }
    }
}
