//! `berth volume ...`

use crate::client::{encode_query, Client};
use crate::containers::{confirm, each, filters_json, inspect_each};
use crate::{fail, format, CmdResult};

pub fn create(
    client: &Client,
    name: Option<&str>,
    driver: Option<&str>,
    opts: &[String],
    labels: &[String],
) -> CmdResult {
    let body = berth_api_types::VolumeCreateRequest {
        name: name.unwrap_or_default().to_string(),
        driver: driver.unwrap_or("local").to_string(),
        driver_opts: crate::networks::pairs(opts),
        labels: crate::networks::pairs(labels),
    };
    let v = client.post_json("/volumes/create", &body)?;
    println!("{}", v["Name"].as_str().unwrap_or_default());
    Ok(0)
}

pub fn list(client: &Client, quiet: bool, filters: &[String], template: Option<&str>) -> CmdResult {
    let q = match filters_json(filters)? {
        Some(f) => encode_query(&[("filters", f)]),
        None => String::new(),
    };
    let v = client.get_json(&format!("/volumes{q}"))?;
    let vols = v["Volumes"].as_array().cloned().unwrap_or_default();
    if let Some(t) = template {
        for vol in &vols {
            println!("{}", format::render(t, vol).map_err(fail)?);
        }
        return Ok(0);
    }
    if quiet {
        for vol in &vols {
            println!("{}", vol["Name"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = vols
        .iter()
        .map(|vol| {
            vec![
                vol["Driver"].as_str().unwrap_or_default().to_string(),
                vol["Name"].as_str().unwrap_or_default().to_string(),
            ]
        })
        .collect();
    format::table(&["DRIVER", "VOLUME NAME"], &rows);
    Ok(0)
}

pub fn inspect(client: &Client, names: &[String], template: Option<&str>) -> CmdResult {
    inspect_each(client, names, template, |n| format!("/volumes/{n}"))
}

pub fn remove(client: &Client, names: &[String], force: bool) -> CmdResult {
    each(names, |n| {
        client
            .call(
                "DELETE",
                &format!("/volumes/{n}?force={}", force as u8),
                crate::client::RequestBody::None,
            )
            .map(|_| ())
    })
}

pub fn prune(client: &Client, force: bool, all: bool, filters: &[String]) -> CmdResult {
    let what = if all {
        "all local volumes not used by at least one container"
    } else {
        "all anonymous local volumes not used by at least one container"
    };
    if !confirm(force, what)? {
        return Ok(0);
    }
    let mut filters = filters.to_vec();
    if all {
        filters.push("all=true".into());
    }
    let q = match filters_json(&filters)? {
        Some(f) => encode_query(&[("filters", f)]),
        None => String::new(),
    };
    let v = client.post(&format!("/volumes/prune{q}"))?;
    let deleted = v["VolumesDeleted"].as_array().cloned().unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Volumes:");
        for name in deleted {
            println!("{}", name.as_str().unwrap_or_default());
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        format::human_size(v["SpaceReclaimed"].as_f64().unwrap_or(0.0))
    );
    Ok(0)
}
