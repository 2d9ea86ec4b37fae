//! `compose events`: the project's container events, as compose prints them.

use std::io::{BufRead, BufReader, Write};

use serde_json::{Map, Value};

use berth_api_types::Filters;

use super::{load, ProjectOptions, PROJECT_LABEL, SERVICE_LABEL};
use crate::client::{encode_query, Client, RequestBody};
use crate::{fail, CmdResult};

/// Streams events of the project's containers (of `services` when named)
/// until berthd closes the stream. `--json` prints one object per line with
/// compose's keys (time, type, service, id, action, attributes); compose's own
/// labels are left out of the attributes, as compose does.
pub fn events(
    client: &Client,
    popts: &ProjectOptions,
    services: &[String],
    as_json: bool,
) -> CmdResult {
    let project = load(popts)?;
    if let Some(unknown) = services.iter().find(|s| !project.services.contains_key(*s)) {
        return Err(fail(format!("no such service: {unknown}")));
    }
    let filters = Filters::new()
        .with("type", "container")
        .with("label", format!("{PROJECT_LABEL}={}", project.name));
    let resp = client.call(
        "GET",
        &format!(
            "/events{}",
            encode_query(&[("filters", filters.to_query())])
        ),
        RequestBody::None,
    )?;
    let mut out = std::io::stdout().lock();
    for line in BufReader::new(resp.body).lines() {
        let Ok(line) = line else { break };
        let Ok(ev) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let attributes = ev["Actor"]["Attributes"].as_object();
        let service = attributes
            .and_then(|a| a.get(SERVICE_LABEL))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if !services.is_empty() && !services.contains(&service) {
            continue;
        }
        let kept: Map<String, Value> = attributes
            .map(|a| {
                a.iter()
                    .filter(|(k, _)| !k.starts_with("com.docker.compose."))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let nanos = ev["timeNano"].as_i64().unwrap_or(0);
        let time = chrono::DateTime::from_timestamp(
            nanos.div_euclid(1_000_000_000),
            nanos.rem_euclid(1_000_000_000) as u32,
        )
        .unwrap_or_default();
        let action = ev["Action"].as_str().unwrap_or_default();
        let id = ev["Actor"]["ID"].as_str().unwrap_or_default();
        if as_json {
            let line = JsonEvent {
                time: time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                kind: "container",
                action,
                id,
                service: &service,
                attributes: &kept,
            };
            let text = serde_json::to_string(&line).map_err(|e| fail(e.to_string()))?;
            writeln!(out, "{text}")?;
        } else {
            let attrs: Vec<String> = kept
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            let stamp = time.format("%Y-%m-%d %H:%M:%S%.6f");
            if attrs.is_empty() {
                writeln!(out, "{stamp} container {action} {id}")?;
            } else {
                writeln!(
                    out,
                    "{stamp} container {action} {id} ({})",
                    attrs.join(", ")
                )?;
            }
        }
        out.flush()?;
    }
    Ok(0)
}

/// One line of `compose events --json`, in docker compose's field order.
#[derive(serde::Serialize)]
struct JsonEvent<'a> {
    time: String,
    #[serde(rename = "type")]
    kind: &'static str,
    action: &'a str,
    id: &'a str,
    service: &'a str,
    attributes: &'a Map<String, Value>,
}
