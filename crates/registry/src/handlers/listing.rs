//! Content discovery: catalog and tag listing with pagination.

use serde_json::Value;

use super::*;

/// Largest `n` honoured for pagination; larger values are clamped (a
/// `Link` header then points at the rest).
const MAX_PAGE: usize = 10_000;

pub(super) fn page_size(q: &Query) -> Result<Option<usize>, ApiError> {
    match q.get("n") {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse::<usize>()
            .map(|n| Some(n.min(MAX_PAGE)))
            .map_err(|_| {
                ApiError::new(ErrorCode::Unsupported, "invalid pagination number")
                    .with_status(StatusCode::BAD_REQUEST)
                    .with_detail(json!({ "n": s }))
            }),
    }
}

/// Returns the page and whether more items follow it.
pub(super) fn paginate(
    items: Vec<String>,
    n: Option<usize>,
    last: Option<&str>,
) -> (Vec<String>, bool) {
    let mut it: Vec<String> = match last {
        Some(l) if !l.is_empty() => items.into_iter().filter(|x| x.as_str() > l).collect(),
        _ => items,
    };
    match n {
        None => (it, false),
        Some(n) => {
            let more = it.len() > n;
            it.truncate(n);
            (it, more && n > 0)
        }
    }
}

pub(super) fn link_header(base: &str, n: usize, last: &str) -> String {
    format!("<{base}?n={n}&last={last}>; rel=\"next\"")
}

pub(super) async fn catalog(state: &AppState, q: &Query) -> Result<Resp, ApiError> {
    let n = page_size(q)?;
    let last = q.get("last").map(str::to_string);
    let all = blocking(state, |s| s.list_repositories()).await?;
    let (page, more) = paginate(all, n, last.as_deref());
    json_reply(
        json!({ "repositories": page }),
        more.then(|| {
            link_header(
                "/v2/_catalog",
                n.unwrap_or(0),
                page.last().map_or("", |s| s),
            )
        }),
    )
}

pub(super) async fn tags_list(state: &AppState, name: String, q: &Query) -> Result<Resp, ApiError> {
    let n = page_size(q)?;
    let last = q.get("last").map(str::to_string);
    let repo = name.clone();
    let Some(tags) = blocking(state, move |s| s.list_tags(&repo)).await? else {
        return Err(name_unknown(&name));
    };
    let (page, more) = paginate(tags, n, last.as_deref());
    let link = more.then(|| {
        link_header(
            &format!("/v2/{name}/tags/list"),
            n.unwrap_or(0),
            page.last().map_or("", |s| s),
        )
    });
    json_reply(json!({ "name": name, "tags": page }), link)
}

pub(super) fn json_reply(v: Value, link: Option<String>) -> Result<Resp, ApiError> {
    let body = serde_json::to_vec(&v).map_err(|e| ApiError::internal(&e))?;
    let mut headers = vec![
        ("content-type", "application/json".to_string()),
        ("content-length", body.len().to_string()),
    ];
    if let Some(l) = link {
        headers.push(("link", l));
    }
    reply(StatusCode::OK, &headers, RespBody::full(body))
}
