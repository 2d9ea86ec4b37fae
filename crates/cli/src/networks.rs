//! `berth network ...` and `berth port`.

use std::collections::BTreeMap;

use berth_api_types::{
    EndpointConfig, EndpointIpamRequest, Ipam, IpamPool, NetworkConnectRequest,
    NetworkCreateRequest,
};
use serde_json::Value;

use crate::client::{encode_query, Client, RequestBody};
use crate::containers::{confirm, each, filters_json, inspect_each};
use crate::{fail, format, CmdResult};

pub struct CreateArgs<'a> {
    pub name: &'a str,
    pub driver: &'a str,
    pub subnet: Option<&'a str>,
    pub gateway: Option<&'a str>,
    pub internal: bool,
    pub labels: &'a [String],
    pub options: &'a [String],
}

/// `KEY=VALUE` flags as a map (a bare `KEY` maps to "").
pub(crate) fn pairs(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

pub fn create(client: &Client, a: &CreateArgs<'_>) -> CmdResult {
    let pool = IpamPool {
        subnet: a.subnet.unwrap_or_default().to_string(),
        gateway: a.gateway.unwrap_or_default().to_string(),
    };
    let body = NetworkCreateRequest {
        name: a.name.to_string(),
        driver: a.driver.to_string(),
        internal: a.internal,
        labels: pairs(a.labels),
        options: pairs(a.options),
        ipam: Ipam {
            driver: "default".into(),
            config: if pool == IpamPool::default() {
                Vec::new()
            } else {
                vec![pool]
            },
        },
        ..Default::default()
    };
    let v = client.post_json("/networks/create", &body)?;
    println!("{}", v["Id"].as_str().unwrap_or_default());
    Ok(0)
}

pub fn list(
    client: &Client,
    quiet: bool,
    filters: &[String],
    template: Option<&str>,
    no_trunc: bool,
) -> CmdResult {
    let q = match filters_json(filters)? {
        Some(f) => encode_query(&[("filters", f)]),
        None => String::new(),
    };
    let v = client.get_json(&format!("/networks{q}"))?;
    let mut nets = v.as_array().cloned().unwrap_or_default();
    nets.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
    let id = |n: &Value| {
        let id = n["Id"].as_str().unwrap_or_default();
        if no_trunc {
            id.to_string()
        } else {
            id.chars().take(12).collect()
        }
    };
    if let Some(t) = template {
        for n in &nets {
            println!("{}", format::render(t, n).map_err(fail)?);
        }
        return Ok(0);
    }
    if quiet {
        for n in &nets {
            println!("{}", id(n));
        }
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = nets
        .iter()
        .map(|n| {
            vec![
                id(n),
                n["Name"].as_str().unwrap_or_default().to_string(),
                n["Driver"].as_str().unwrap_or_default().to_string(),
                n["Scope"].as_str().unwrap_or_default().to_string(),
            ]
        })
        .collect();
    format::table(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"], &rows);
    Ok(0)
}

pub fn inspect(client: &Client, names: &[String], template: Option<&str>) -> CmdResult {
    inspect_each(client, names, template, |n| format!("/networks/{n}"))
}

pub fn remove(client: &Client, names: &[String]) -> CmdResult {
    each(names, |n| {
        client
            .call("DELETE", &format!("/networks/{n}"), RequestBody::None)
            .map(|_| ())
    })
}

pub fn prune(client: &Client, force: bool) -> CmdResult {
    if !confirm(
        force,
        "all custom networks not used by at least one container",
    )? {
        return Ok(0);
    }
    let v = client.post("/networks/prune")?;
    let deleted = v["NetworksDeleted"].as_array().cloned().unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Networks:");
        for d in deleted {
            println!("{}", d.as_str().unwrap_or_default());
        }
    }
    Ok(0)
}

pub fn connect(
    client: &Client,
    network: &str,
    container: &str,
    aliases: &[String],
    ip: Option<&str>,
) -> CmdResult {
    let body = NetworkConnectRequest {
        container: container.to_string(),
        endpoint_config: Some(EndpointConfig {
            aliases: aliases.to_vec(),
            ipam_config: ip.map(|ip| EndpointIpamRequest {
                ipv4_address: ip.to_string(),
            }),
            mac_address: String::new(),
        }),
        force: false,
    };
    client.call(
        "POST",
        &format!("/networks/{network}/connect"),
        RequestBody::json(&body)?,
    )?;
    Ok(0)
}

pub fn disconnect(client: &Client, network: &str, container: &str, force: bool) -> CmdResult {
    let body = NetworkConnectRequest {
        container: container.to_string(),
        endpoint_config: None,
        force,
    };
    client.call(
        "POST",
        &format!("/networks/{network}/disconnect"),
        RequestBody::json(&body)?,
    )?;
    Ok(0)
}

/// `port CONTAINER [PRIVATE_PORT[/PROTO]]`
pub fn port(client: &Client, container: &str, private: Option<&str>) -> CmdResult {
    let c = client.get_json(&format!("/containers/{container}/json"))?;
    let ports = c["NetworkSettings"]["Ports"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let wanted = private.map(|p| {
        if p.contains('/') {
            p.to_string()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut printed = false;
    let mut keys: Vec<&String> = ports.keys().collect();
    keys.sort();
    for key in keys {
        if wanted.as_ref().is_some_and(|w| w != key) {
            continue;
        }
        for b in ports[key].as_array().into_iter().flatten() {
            let addr = format!(
                "{}:{}",
                b["HostIp"].as_str().unwrap_or("0.0.0.0"),
                b["HostPort"].as_str().unwrap_or_default()
            );
            if wanted.is_some() {
                println!("{addr}");
            } else {
                println!("{key} -> {addr}");
            }
            printed = true;
        }
    }
    if !printed {
        if let Some(w) = wanted {
            return Err(fail(format!(
                "Error: No public port '{w}' published for {container}"
            )));
        }
    }
    Ok(0)
}
