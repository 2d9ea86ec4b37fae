//! Image verbs: import, images/ls, inspect, tag, rmi.

use std::io::Read;

use crate::client::{encode_query, Client, RequestBody};
use crate::{containers, fail, format, CmdResult};

pub fn import(
    client: &Client,
    file: &str,
    reference: Option<String>,
    changes: &[String],
    message: Option<String>,
) -> CmdResult {
    let mut q = vec![("fromSrc", "-".to_string())];
    if let Some(r) = reference {
        // A colon after the last slash separates the tag.
        let (repo, tag) = match r.rfind(':') {
            Some(i) if !r[i..].contains('/') => (r[..i].to_string(), r[i + 1..].to_string()),
            _ => (r.clone(), String::new()),
        };
        q.push(("repo", repo));
        if !tag.is_empty() {
            q.push(("tag", tag));
        }
    }
    for c in changes {
        q.push(("changes", c.clone()));
    }
    if let Some(m) = message {
        q.push(("message", m));
    }
    let mut input: Box<dyn Read> = if file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(file).map_err(|e| fail(format!("open {file}: {e}")))?)
    };
    let path = format!("/images/create{}", encode_query(&q));
    let resp = client.call(
        "POST",
        &path,
        RequestBody::Stream(&mut *input, "application/x-tar"),
    )?;
    let v = resp.json()?;
    println!("{}", v["status"].as_str().unwrap_or_default());
    Ok(0)
}

pub fn list(client: &Client, quiet: bool, no_trunc: bool, all: bool) -> CmdResult {
    let list = client.get_json(if all {
        "/images/json?all=1"
    } else {
        "/images/json"
    })?;
    let list = list.as_array().cloned().unwrap_or_default();
    let short = |id: &str| {
        let hex = id.trim_start_matches("sha256:");
        if no_trunc {
            id.to_string()
        } else {
            hex.chars().take(12).collect()
        }
    };
    if quiet {
        for i in &list {
            println!("{}", short(i["Id"].as_str().unwrap_or_default()));
        }
        return Ok(0);
    }
    let mut rows = Vec::new();
    for i in &list {
        let id = short(i["Id"].as_str().unwrap_or_default());
        let created = format::ago(i["Created"].as_i64().unwrap_or(0));
        let size = format::human_size(i["Size"].as_f64().unwrap_or(0.0));
        let tags: Vec<String> = i["RepoTags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if tags.is_empty() {
            rows.push(vec![
                "<none>".into(),
                "<none>".into(),
                id.clone(),
                created.clone(),
                size.clone(),
            ]);
        }
        for t in tags {
            let (repo, tag) = t.rsplit_once(':').unwrap_or((&t, "latest"));
            rows.push(vec![
                repo.to_string(),
                tag.to_string(),
                id.clone(),
                created.clone(),
                size.clone(),
            ]);
        }
    }
    format::table(&["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], &rows);
    Ok(0)
}

pub fn inspect(client: &Client, names: &[String], format: Option<&str>) -> CmdResult {
    let mut objects = Vec::new();
    let mut code = 0;
    for n in names {
        match client.get_json(&format!("/images/{n}/json")) {
            Ok(v) => objects.push(v),
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    containers::print_json_objects(&objects, format)?;
    Ok(code)
}

pub fn tag(client: &Client, source: &str, target: &str) -> CmdResult {
    let (repo, tag) = match target.rfind(':') {
        Some(i) if !target[i..].contains('/') => (&target[..i], &target[i + 1..]),
        _ => (target, "latest"),
    };
    let q = encode_query(&[("repo", repo.to_string()), ("tag", tag.to_string())]);
    client.call(
        "POST",
        &format!("/images/{source}/tag{q}"),
        RequestBody::None,
    )?;
    Ok(0)
}

pub fn remove(client: &Client, names: &[String], force: bool) -> CmdResult {
    let mut code = 0;
    for n in names {
        match client
            .call(
                "DELETE",
                &format!("/images/{n}?force={}", force as u8),
                RequestBody::None,
            )
            .and_then(|r| r.json())
        {
            Ok(v) => {
                for entry in v.as_array().cloned().unwrap_or_default() {
                    if let Some(t) = entry["Untagged"].as_str() {
                        println!("Untagged: {t}");
                    }
                    if let Some(d) = entry["Deleted"].as_str() {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub fn history(client: &Client, name: &str) -> CmdResult {
    let v = client.get_json(&format!("/images/{name}/history"))?;
    let rows: Vec<Vec<String>> = v
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|h| {
            let id = h["Id"].as_str().unwrap_or_default();
            vec![
                if id.starts_with("sha256:") {
                    id[7..19].to_string()
                } else {
                    id.to_string()
                },
                format::ago(h["Created"].as_i64().unwrap_or(0)),
                h["CreatedBy"]
                    .as_str()
                    .unwrap_or_default()
                    .chars()
                    .take(45)
                    .collect(),
                format::human_size(h["Size"].as_f64().unwrap_or(0.0)),
                h["Comment"].as_str().unwrap_or_default().to_string(),
            ]
        })
        .collect();
    format::table(
        &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
        &rows,
    );
    Ok(0)
}

pub fn disk_usage(client: &Client) -> CmdResult {
    let v = client.get_json("/system/df")?;
    let images = v["Images"].as_array().cloned().unwrap_or_default();
    let containers = v["Containers"].as_array().cloned().unwrap_or_default();
    let active_images = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) > 0)
        .count();
    let layers = v["LayersSize"].as_f64().unwrap_or(0.0);
    let unused: f64 = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) == 0)
        .map(|i| i["Size"].as_f64().unwrap_or(0.0) - i["SharedSize"].as_f64().unwrap_or(0.0))
        .sum();
    let rw: f64 = containers
        .iter()
        .map(|c| c["SizeRw"].as_f64().unwrap_or(0.0))
        .sum();
    let running = containers
        .iter()
        .filter(|c| c["State"] == "running")
        .count();
    let stopped_rw: f64 = containers
        .iter()
        .filter(|c| c["State"] != "running")
        .map(|c| c["SizeRw"].as_f64().unwrap_or(0.0))
        .sum();
    let rows = vec![
        vec![
            "Images".into(),
            images.len().to_string(),
            active_images.to_string(),
            format::human_size(layers),
            format::human_size(unused.max(0.0)),
        ],
        vec![
            "Containers".into(),
            containers.len().to_string(),
            running.to_string(),
            format::human_size(rw),
            format::human_size(stopped_rw),
        ],
        vec![
            "Local Volumes".into(),
            "0".into(),
            "0".into(),
            "0B".into(),
            "0B".into(),
        ],
        vec![
            "Build Cache".into(),
            "0".into(),
            "0".into(),
            "0B".into(),
            "0B".into(),
        ],
    ];
    format::table(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &rows);
    Ok(0)
}

pub fn prune(client: &Client, all: bool, force: bool) -> CmdResult {
    let what = if all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    };
    if !containers::confirm(force, what)? {
        return Ok(0);
    }
    let q = if all {
        encode_query(&[("filters", r#"{"dangling":{"false":true}}"#.to_string())])
    } else {
        String::new()
    };
    let v = client.post(&format!("/images/prune{q}"))?;
    let report = v["ImagesDeleted"].as_array().cloned().unwrap_or_default();
    if !report.is_empty() {
        println!("Deleted Images:");
        for entry in report {
            if let Some(t) = entry["Untagged"].as_str() {
                println!("untagged: {t}");
            }
            if let Some(d) = entry["Deleted"].as_str() {
                println!("deleted: {d}");
            }
        }
        println!();
    }
    println!("Total reclaimed space: 0B");
    Ok(0)
}

pub fn save(client: &Client, names: &[String], output: Option<&str>) -> CmdResult {
    if output.is_none() && crate::term::is_terminal(1) {
        return Err(fail(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let q: Vec<(&str, String)> = names.iter().map(|n| ("names", n.clone())).collect();
    let mut resp = client.call(
        "GET",
        &format!("/images/get{}", encode_query(&q)),
        RequestBody::None,
    )?;
    containers::write_output(&mut resp.body, output)?;
    Ok(0)
}

pub fn load(client: &Client, input: Option<&str>, quiet: bool) -> CmdResult {
    let mut reader: Box<dyn Read> = match input {
        Some(path) => {
            Box::new(std::fs::File::open(path).map_err(|e| fail(format!("open {path}: {e}")))?)
        }
        None => Box::new(std::io::stdin().lock()),
    };
    let resp = client.call(
        "POST",
        "/images/load",
        RequestBody::Stream(&mut *reader, "application/x-tar"),
    )?;
    let mut text = String::new();
    let mut body = resp.body;
    body.read_to_string(&mut text)?;
    for line in text.lines() {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
            if let Some(s) = v["stream"].as_str() {
                if !quiet {
                    print!("{s}");
                }
            }
        }
    }
    Ok(0)
}

pub fn commit(
    client: &Client,
    container: &str,
    reference: Option<&str>,
    author: Option<&str>,
    message: Option<&str>,
    changes: &[String],
    pause: bool,
) -> CmdResult {
    let mut pairs: Vec<(&str, String)> = vec![
        ("container", container.to_string()),
        ("pause", pause.to_string()),
    ];
    if let Some(r) = reference {
        // The tag is whatever follows the last ':' that is not part of a registry port.
        let (repo, tag) = match r.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
            _ => (r, None),
        };
        pairs.push(("repo", repo.to_string()));
        if let Some(t) = tag {
            pairs.push(("tag", t.to_string()));
        }
    }
    if let Some(a) = author {
        pairs.push(("author", a.to_string()));
    }
    if let Some(m) = message {
        pairs.push(("comment", m.to_string()));
    }
    for c in changes {
        pairs.push(("changes", c.clone()));
    }
    let v = client.post(&format!("/commit{}", encode_query(&pairs)))?;
    println!("{}", v["Id"].as_str().unwrap_or_default());
    Ok(0)
}
