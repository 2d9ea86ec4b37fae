//! Token mode: the `GET /token` endpoint and the bearer check in front of
//! `/v2/`.

use std::time::SystemTime;

use super::*;
use crate::token::{parse_scopes, Claims, Required, ResourceActions, MAX_SCOPES, SERVICE};

/// What the authenticated client may do, for handlers that need to check
/// a second resource (cross-repository mounts).
pub(crate) enum Access {
    /// Anonymous or Basic mode: every user may do everything.
    Unrestricted,
    /// Token mode: what the token grants.
    Token(Claims),
}

impl Access {
    /// Whether blobs of `repo` may be read.
    pub fn can_pull(&self, repo: &str) -> bool {
        match self {
            Access::Unrestricted => true,
            Access::Token(c) => Required::repository(repo, &["pull"]).covered_by(&c.access),
        }
    }
}

/// The scope a request needs, `None` for `/v2/` (any valid token).
fn required_access(route: &Route, method: &Method) -> Option<Required> {
    const PULL: &[&str] = &["pull"];
    const PUSH: &[&str] = &["pull", "push"];
    const DELETE: &[&str] = &["delete"];
    let reading = method == Method::GET || method == Method::HEAD;
    match route {
        Route::Base => None,
        Route::Catalog => Some(Required::catalog()),
        Route::Tags(name) | Route::Referrers(name, _) => Some(Required::repository(name, PULL)),
        Route::Manifest(name, _) | Route::Blob(name, _) => Some(Required::repository(
            name,
            if reading {
                PULL
            } else if method == Method::DELETE {
                DELETE
            } else {
                PUSH
            },
        )),
        Route::UploadStart(name) | Route::Upload(name, _) => Some(Required::repository(name, PUSH)),
    }
}

/// Whether a Host header value may be echoed into the realm URL.
fn usable_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 262
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b))
}

fn realm(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(r) = &state.token_realm {
        return r.clone();
    }
    let scheme = if state.tls { "https" } else { "http" };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| usable_host(h))
        .map(str::to_string)
        .unwrap_or_else(|| state.local_addr.to_string());
    format!("{scheme}://{host}/token")
}

/// A 401 with a `Bearer` challenge for `required` (RFC 6750 `error` when
/// a token was presented).
fn challenge(
    state: &AppState,
    headers: &HeaderMap,
    required: Option<&Required>,
    error: Option<&str>,
    message: &str,
) -> ApiError {
    let mut value = format!(
        "Bearer realm=\"{}\",service=\"{SERVICE}\"",
        realm(state, headers)
    );
    let mut e = ApiError::new(ErrorCode::Unauthorized, message);
    if let Some(r) = required {
        let scope = r.scope();
        value.push_str(&format!(",scope=\"{scope}\""));
        e = e.with_detail(
            json!([{ "Type": r.kind, "Name": r.name, "Action": r.actions.join(",") }]),
        );
    }
    if let Some(err) = error {
        value.push_str(&format!(",error=\"{err}\""));
    }
    e.with_header("www-authenticate", value)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Checks the bearer token of a `/v2/` request against the scope the
/// route and method need.
pub(super) fn token_gate(
    state: &AppState,
    issuer: &TokenIssuer,
    req: &Request<Incoming>,
    route: &Route,
    method: &Method,
) -> Result<Access, ApiError> {
    let headers = req.headers();
    let required = required_access(route, method);
    let Some(token) = bearer(headers) else {
        return Err(challenge(
            state,
            headers,
            required.as_ref(),
            None,
            "authentication required",
        ));
    };
    let claims = match issuer.verify(token, SystemTime::now()) {
        Ok(c) => c,
        Err(why) => {
            tracing::debug!(reason = why.as_str(), path = %req.uri().path(), "bearer token refused");
            return Err(challenge(
                state,
                headers,
                required.as_ref(),
                Some("invalid_token"),
                "invalid or expired token",
            ));
        }
    };
    if let Some(r) = &required {
        if !r.covered_by(&claims.access) {
            tracing::debug!(user = %claims.sub, scope = %r.scope(), "token lacks scope");
            return Err(challenge(
                state,
                headers,
                Some(r),
                Some("insufficient_scope"),
                "insufficient scope",
            ));
        }
    }
    Ok(Access::Token(claims))
}

/// `GET /token?service=...&scope=...` with HTTP Basic credentials.
pub(super) async fn token_endpoint(
    issuer: &TokenIssuer,
    users: &Arc<Htpasswd>,
    req: &Request<Incoming>,
) -> Result<Resp, ApiError> {
    if req.method() != Method::GET {
        return Err(method_not_allowed());
    }
    let query = Query::parse(req.uri().query());
    if let Some(service) = query.get("service") {
        if service != SERVICE {
            return Err(ApiError::new(ErrorCode::Denied, "unknown token service")
                .with_status(StatusCode::BAD_REQUEST)
                .with_detail(json!({ "service": service })));
        }
    }
    let hv = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    let Some(user) = users.check(hv).await else {
        tracing::debug!("token request without valid credentials");
        return Err(unauthorized());
    };
    let access: Vec<ResourceActions> = parse_scopes(query.all("scope")).map_err(|_| {
        ApiError::new(
            ErrorCode::Denied,
            format!("more than {MAX_SCOPES} scopes requested"),
        )
        .with_status(StatusCode::BAD_REQUEST)
    })?;
    // Every htpasswd user may do everything: grant what was asked for.
    let scopes: Vec<String> = access
        .iter()
        .map(|a| format!("{}:{}:{}", a.kind, a.name, a.actions.join(",")))
        .collect();
    let issued = issuer.issue(&user, access, SystemTime::now());
    tracing::info!(%user, scopes = ?scopes, "token issued");
    let body = serde_json::to_vec(&json!({
        "token": issued.token,
        "access_token": issued.token,
        "expires_in": issued.expires_in,
        "issued_at": issued.issued_at,
    }))
    .map_err(|e| ApiError::internal(&e))?;
    reply(
        StatusCode::OK,
        &[
            ("content-type", "application/json".into()),
            ("content-length", body.len().to_string()),
            ("cache-control", "no-store".into()),
        ],
        RespBody::full(body),
    )
}
