//! `/networks`: create, list, inspect, remove, prune, connect, disconnect; and the
//! network parts of a container's JSON.

use berth_engine::{ContainerRecord, EndpointSettings, NetworkRecord};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};

use crate::containers::parse_filters;
use crate::{engine_error, json, read_json, status_only, Ctx, Resp};

/// Docker's `Network` object.
pub(crate) fn network_json(ctx: &Ctx, n: &NetworkRecord) -> Value {
    let mut containers = serde_json::Map::new();
    for c in ctx.engine.network_containers(&n.id) {
        if let Some(ep) = c.networks.get(&n.name).filter(|e| !e.ip_address.is_empty()) {
            containers.insert(
                c.id.clone(),
                json!({
                    "Name": c.name,
                    "EndpointID": ep.endpoint_id,
                    "MacAddress": ep.mac_address,
                    "IPv4Address": format!("{}/{}", ep.ip_address, ep.ip_prefix_len),
                    "IPv6Address": "",
                }),
            );
        }
    }
    // Only the options given at creation, as docker shows them: docker-compose
    // 1.29 compares them with the file's driver_opts and would recreate a
    // network whose Options hold more. The default bridge's record carries
    // its bridge name, as docker's does.
    let options = n.options.clone();
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Options": null,
            "Config": [{ "Subnet": n.subnet, "Gateway": n.gateway }],
        },
        "Internal": n.internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": { "Network": "" },
        "ConfigOnly": false,
        "Containers": containers,
        "Options": options,
        "Labels": n.labels,
    })
}

/// The fixed `host` and `none` networks docker always lists.
fn special_json(name: &str) -> Value {
    json!({
        "Name": name, "Id": format!("{name:0>64}").replace(|c: char| !c.is_ascii_hexdigit(), "0"),
        "Created": "0001-01-01T00:00:00Z", "Scope": "local",
        "Driver": if name == "host" { "host" } else { "null" },
        "EnableIPv6": false, "IPAM": { "Driver": "default", "Options": null, "Config": [] },
        "Internal": false, "Attachable": false, "Ingress": false, "ConfigFrom": { "Network": "" },
        "ConfigOnly": false, "Containers": {}, "Options": {}, "Labels": {},
    })
}

pub fn list(ctx: &Ctx) -> Resp {
    let filters = match parse_filters(ctx.q("filters")) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut out: Vec<Value> = ctx
        .engine
        .networks()
        .iter()
        .map(|n| network_json(ctx, n))
        .collect();
    out.push(special_json("host"));
    out.push(special_json("none"));
    out.retain(|n| {
        filters.iter().all(|(k, vals)| {
            if k == "label" {
                return berth_engine::labels_match(vals, |lk| n["Labels"][lk].as_str());
            }
            vals.iter().any(|v| match k.as_str() {
                "name" => n["Name"].as_str().is_some_and(|x| x.contains(v.as_str())),
                "id" => n["Id"].as_str().is_some_and(|x| x.starts_with(v.as_str())),
                "driver" => n["Driver"].as_str() == Some(v.as_str()),
                "type" => {
                    let builtin = matches!(n["Name"].as_str(), Some("bridge" | "host" | "none"));
                    (v == "builtin") == builtin
                }
                _ => false,
            })
        })
    });
    json(StatusCode::OK, &out)
}

pub fn inspect(ctx: &Ctx, reference: &str) -> Resp {
    if reference == "host" || reference == "none" {
        return json(StatusCode::OK, &special_json(reference));
    }
    match ctx.engine.network(reference) {
        Ok(n) => json(StatusCode::OK, &network_json(ctx, &n)),
        Err(e) => engine_error(e),
    }
}

pub async fn create(ctx: &Ctx, req: Request<Incoming>) -> Resp {
    let body: berth_api_types::NetworkCreateRequest = match read_json(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if body.enable_ipv6 {
        return crate::error(StatusCode::BAD_REQUEST, "IPv6 networks are not supported");
    }
    let ipam = body.ipam.config.into_iter().next().unwrap_or_default();
    let engine = ctx.engine.clone();
    let result = tokio::task::spawn_blocking(move || {
        engine.create_network(
            &body.name,
            &body.driver,
            Some(ipam.subnet.as_str()).filter(|s| !s.is_empty()),
            Some(ipam.gateway.as_str()).filter(|s| !s.is_empty()),
            body.internal,
            body.labels,
            body.options,
        )
    })
    .await;
    match result {
        Ok(Ok(n)) => json(StatusCode::CREATED, &json!({ "Id": n.id, "Warning": "" })),
        Ok(Err(e)) => engine_error(e),
        Err(e) => crate::error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

pub async fn remove(ctx: &Ctx, reference: &str) -> Resp {
    if reference == "host" || reference == "none" {
        return crate::error(
            StatusCode::FORBIDDEN,
            &format!("{reference} is a pre-defined network and cannot be removed"),
        );
    }
    let engine = ctx.engine.clone();
    let reference = reference.to_string();
    match tokio::task::spawn_blocking(move || engine.remove_network(&reference)).await {
        Ok(Ok(())) => status_only(StatusCode::NO_CONTENT),
        Ok(Err(e)) => engine_error(e),
        Err(e) => crate::error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

pub async fn prune(ctx: &Ctx) -> Resp {
    let engine = ctx.engine.clone();
    match tokio::task::spawn_blocking(move || engine.prune_networks()).await {
        Ok(Ok(names)) => json(StatusCode::OK, &json!({ "NetworksDeleted": names })),
        Ok(Err(e)) => engine_error(e),
        Err(e) => crate::error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

pub async fn connect(ctx: &Ctx, network: &str, req: Request<Incoming>) -> Resp {
    let body: berth_api_types::NetworkConnectRequest = match read_json(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let asked = body.endpoint_config.unwrap_or_default();
    let endpoint = EndpointSettings {
        aliases: asked.aliases,
        ipam_config: asked.ipam_config.map(|i| berth_engine::EndpointIpam {
            ipv4_address: i.ipv4_address,
        }),
        ..Default::default()
    };
    match ctx
        .engine
        .connect_network(network, &body.container, endpoint)
        .await
    {
        Ok(()) => status_only(StatusCode::OK),
        Err(e) => engine_error(e),
    }
}

pub async fn disconnect(ctx: &Ctx, network: &str, req: Request<Incoming>) -> Resp {
    let body: berth_api_types::NetworkConnectRequest = match read_json(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let _ = body.force;
    match ctx
        .engine
        .disconnect_network(network, &body.container)
        .await
    {
        Ok(()) => status_only(StatusCode::OK),
        Err(e) => engine_error(e),
    }
}

/// `NetworkSettings` of a container's inspect.
pub(crate) fn settings_json(ctx: &Ctx, c: &ContainerRecord) -> Value {
    let networks: serde_json::Map<String, Value> = c
        .networks
        .iter()
        .map(|(name, ep)| {
            (
                name.clone(),
                json!({
                    "IPAMConfig": ep.ipam_config,
                    "Links": null,
                    "Aliases": if ep.aliases.is_empty() { Value::Null } else { json!(ep.aliases) },
                    "MacAddress": ep.mac_address,
                    "NetworkID": ep.network_id,
                    "EndpointID": ep.endpoint_id,
                    "Gateway": ep.gateway,
                    "IPAddress": ep.ip_address,
                    "IPPrefixLen": ep.ip_prefix_len,
                    "IPv6Gateway": "",
                    "GlobalIPv6Address": "",
                    "GlobalIPv6PrefixLen": 0,
                    "DNSNames": if name == "bridge" { Value::Null } else {
                        let mut n = vec![c.name.clone(), c.id[..12].to_string()];
                        n.extend(ep.aliases.iter().filter(|a| **a != c.id[..12]).cloned());
                        json!(n)
                    },
                }),
            )
        })
        .collect();
    let bridge = c.networks.get("bridge");
    let ports: serde_json::Map<String, Value> = c
        .ports
        .iter()
        .map(|(k, v)| {
            let bindings: Vec<Value> = v
                .iter()
                .map(|b| json!(crate::convert::port_binding(b)))
                .collect();
            (
                k.to_string(),
                if bindings.is_empty() {
                    Value::Null
                } else {
                    json!(bindings)
                },
            )
        })
        .collect();
    let sandbox = if c.state.running() && !c.networks.is_empty() {
        ctx.engine
            .config()
            .exec_root
            .join("netns")
            .join(&c.id)
            .display()
            .to_string()
    } else {
        String::new()
    };
    json!({
        "Bridge": "",
        "SandboxID": if sandbox.is_empty() { "" } else { &c.id },
        "SandboxKey": sandbox,
        "Ports": ports,
        "HairpinMode": false,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "EndpointID": bridge.map(|e| e.endpoint_id.as_str()).unwrap_or(""),
        "Gateway": bridge.map(|e| e.gateway.as_str()).unwrap_or(""),
        "IPAddress": bridge.map(|e| e.ip_address.as_str()).unwrap_or(""),
        "IPPrefixLen": bridge.map(|e| e.ip_prefix_len).unwrap_or(0),
        "MacAddress": bridge.map(|e| e.mac_address.as_str()).unwrap_or(""),
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPv6Gateway": "",
        "Networks": networks,
    })
}

/// `Ports` of a container in `GET /containers/json`.
pub(crate) fn ports_list(c: &ContainerRecord) -> Vec<Value> {
    let mut out = Vec::new();
    for (port, bindings) in &c.ports {
        let (private, proto) = (port.port, port.protocol.as_str());
        if bindings.is_empty() {
            out.push(json!({ "PrivatePort": private, "Type": proto }));
        }
        for b in bindings {
            let public = match b.host_port {
                berth_engine::HostPorts::Port(p) => p,
                _ => 0,
            };
            out.push(json!({
                "IP": b.host_ip_text(),
                "PrivatePort": private,
                "PublicPort": public,
                "Type": proto,
            }));
        }
    }
    out
}
