//! Container verbs other than run/create: start, stop, kill, restart, rm, ps, logs,
//! inspect, wait; and version/info.

use std::io::{self, Write};

use serde_json::Value;

use crate::client::{demux, encode_query, Client, ClientError, RequestBody};
use crate::{fail, format, run, CmdResult, Failure};

/// Runs `action` for every name, printing errors as docker does, and exits 1 if any
/// failed.
pub(crate) fn each(
    names: &[String],
    mut action: impl FnMut(&str) -> Result<(), ClientError>,
) -> CmdResult {
    let mut code = 0;
    for name in names {
        match action(name) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub fn start(client: &Client, names: &[String], attach: bool, interactive: bool) -> CmdResult {
    if attach || interactive {
        if names.len() != 1 {
            return Err(fail(
                "you cannot start and attach multiple containers at once",
            ));
        }
        let c = client.get_json(&format!("/containers/{}/json", names[0]))?;
        let id = c["Id"].as_str().unwrap_or_default().to_string();
        let tty = c["Config"]["Tty"].as_bool().unwrap_or(false);
        let auto_remove = c["HostConfig"]["AutoRemove"].as_bool().unwrap_or(false);
        return run::attach_start_wait(client, &id, tty, interactive, auto_remove);
    }
    each(names, |n| {
        client
            .call("POST", &format!("/containers/{n}/start"), RequestBody::None)
            .map(|_| ())
    })
}

pub fn stop(
    client: &Client,
    names: &[String],
    time: Option<i64>,
    signal: Option<String>,
) -> CmdResult {
    let mut q = Vec::new();
    if let Some(t) = time {
        q.push(("t", t.to_string()));
    }
    if let Some(s) = signal {
        q.push(("signal", s));
    }
    let query = encode_query(&q);
    each(names, |n| {
        client
            .call(
                "POST",
                &format!("/containers/{n}/stop{query}"),
                RequestBody::None,
            )
            .map(|_| ())
    })
}

pub fn restart(client: &Client, names: &[String], time: Option<i64>) -> CmdResult {
    let query = time.map(|t| format!("?t={t}")).unwrap_or_default();
    each(names, |n| {
        client
            .call(
                "POST",
                &format!("/containers/{n}/restart{query}"),
                RequestBody::None,
            )
            .map(|_| ())
    })
}

pub fn kill(client: &Client, names: &[String], signal: &str) -> CmdResult {
    let query = encode_query(&[("signal", signal.to_string())]);
    each(names, |n| {
        client
            .call(
                "POST",
                &format!("/containers/{n}/kill{query}"),
                RequestBody::None,
            )
            .map(|_| ())
    })
}

pub fn remove(client: &Client, names: &[String], force: bool, volumes: bool) -> CmdResult {
    let query = format!("?force={}&v={}", force as u8, volumes as u8);
    each(names, |n| {
        client
            .call(
                "DELETE",
                &format!("/containers/{n}{query}"),
                RequestBody::None,
            )
            .map(|_| ())
    })
}

pub fn ps(
    client: &Client,
    all: bool,
    quiet: bool,
    filters: &[String],
    no_trunc: bool,
    last: Option<i64>,
    template: Option<&str>,
) -> CmdResult {
    let filters_json = filters_json(filters)?;
    let mut q = vec![(
        "all",
        if all || last.is_some() {
            "1".to_string()
        } else {
            "0".to_string()
        },
    )];
    if let Some(f) = filters_json {
        q.push(("filters", f));
    }
    if let Some(n) = last {
        q.push(("limit", n.to_string()));
    }
    let list = client.get_json(&format!("/containers/json{}", encode_query(&q)))?;
    let list = list.as_array().cloned().unwrap_or_default();
    let short = |id: &str| {
        if no_trunc {
            id.to_string()
        } else {
            id.chars().take(12).collect()
        }
    };
    if quiet {
        for c in &list {
            println!("{}", short(c["Id"].as_str().unwrap_or_default()));
        }
        return Ok(0);
    }
    if let Some(template) = template {
        let objects: Vec<Value> = list
            .iter()
            .map(|c| {
                let labels: Vec<String> = c["Labels"]
                    .as_object()
                    .map(|o| {
                        o.iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                            .collect()
                    })
                    .unwrap_or_default();
                let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
                let created = c["Created"].as_i64().unwrap_or(0);
                PsRow {
                    id: short(c["Id"].as_str().unwrap_or_default()),
                    image: text(&c["Image"]),
                    command: format!("\"{}\"", text(&c["Command"])),
                    created_at: chrono::DateTime::from_timestamp(created, 0)
                        .map(|t| t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
                        .unwrap_or_default(),
                    running_for: format::ago(created),
                    status: text(&c["Status"]),
                    state: text(&c["State"]),
                    ports: String::new(),
                    names: text(&c["Names"][0]).trim_start_matches('/').to_string(),
                    labels: labels.join(","),
                    networks: text(&c["HostConfig"]["NetworkMode"]),
                    mounts: String::new(),
                }
            })
            .map(|row| serde_json::to_value(row).unwrap_or_default())
            .collect();
        let headers = [
            ("ID", "CONTAINER ID"),
            ("Image", "IMAGE"),
            ("Command", "COMMAND"),
            ("CreatedAt", "CREATED AT"),
            ("RunningFor", "CREATED"),
            ("Status", "STATUS"),
            ("State", "STATE"),
            ("Ports", "PORTS"),
            ("Names", "NAMES"),
            ("Labels", "LABELS"),
            ("Networks", "NETWORKS"),
            ("Mounts", "MOUNTS"),
        ];
        format::print_formatted(template, &objects, &headers).map_err(fail)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| {
            let mut command = format!("\"{}\"", c["Command"].as_str().unwrap_or_default());
            if !no_trunc && command.chars().count() > 22 {
                command = command.chars().take(19).collect::<String>() + "…\"";
            }
            vec![
                short(c["Id"].as_str().unwrap_or_default()),
                c["Image"].as_str().unwrap_or_default().to_string(),
                command,
                format::ago(c["Created"].as_i64().unwrap_or(0)),
                c["Status"].as_str().unwrap_or_default().to_string(),
                String::new(),
                c["Names"][0]
                    .as_str()
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_string(),
            ]
        })
        .collect();
    format::table(
        &[
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ],
        &rows,
    );
    Ok(0)
}

pub fn logs(
    client: &Client,
    name: &str,
    follow: bool,
    tail: &str,
    timestamps: bool,
    since: Option<String>,
    until: Option<String>,
) -> CmdResult {
    let mut q = vec![
        ("stdout", "1".to_string()),
        ("stderr", "1".to_string()),
        ("follow", (follow as u8).to_string()),
        ("tail", tail.to_string()),
        ("timestamps", (timestamps as u8).to_string()),
    ];
    if let Some(s) = since {
        q.push(("since", s));
    }
    if let Some(u) = until {
        q.push(("until", u));
    }
    let mut resp = client.call(
        "GET",
        &format!("/containers/{name}/logs{}", encode_query(&q)),
        RequestBody::None,
    )?;
    let raw = resp
        .header("Content-Type")
        .is_some_and(|c| c.contains("raw-stream"));
    if raw {
        let mut out = io::stdout().lock();
        io::copy(&mut resp.body, &mut out)?;
        out.flush()?;
    } else {
        demux(
            &mut resp.body,
            &mut io::stdout().lock(),
            &mut io::stderr().lock(),
        )?;
    }
    Ok(0)
}

/// `inspect` of named objects at `path(name)`: found ones printed together,
/// missing ones reported, exit 1 if any was missing.
pub(crate) fn inspect_each(
    client: &Client,
    names: &[String],
    template: Option<&str>,
    path: impl Fn(&str) -> String,
) -> CmdResult {
    let mut found = Vec::new();
    let mut code = 0;
    for n in names {
        match client.get_json(&path(n)) {
            Ok(v) => found.push(v),
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    print_objects(&found, template)?;
    Ok(code)
}

pub(crate) fn print_objects(objects: &[Value], format: Option<&str>) -> CmdResult {
    match format {
        Some(f) => {
            for o in objects {
                println!("{}", format::render(f, o).map_err(fail)?);
            }
        }
        None => {
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            serde::Serialize::serialize(&objects, &mut ser).map_err(|e| fail(e.to_string()))?;
            println!("{}", String::from_utf8_lossy(&buf));
        }
    }
    Ok(0)
}

pub fn inspect(
    client: &Client,
    names: &[String],
    format: Option<&str>,
    kind: Option<&str>,
) -> CmdResult {
    let mut objects = Vec::new();
    let mut code = 0;
    for name in names {
        let container = if kind.is_none_or(|k| k == "container") {
            client.get_json(&format!("/containers/{name}/json")).ok()
        } else {
            None
        };
        let found = container.or_else(|| {
            if kind.is_none_or(|k| k == "image") {
                client.get_json(&format!("/images/{name}/json")).ok()
            } else {
                None
            }
        });
        match found {
            Some(v) => objects.push(v),
            None => {
                eprintln!("Error: No such object: {name}");
                code = 1;
            }
        }
    }
    print_objects(&objects, format)?;
    Ok(code)
}

pub(crate) fn print_json_objects(objects: &[Value], format: Option<&str>) -> CmdResult {
    print_objects(objects, format)
}

pub fn wait(client: &Client, names: &[String]) -> CmdResult {
    let mut code = 0;
    for name in names {
        match client.post(&format!("/containers/{name}/wait")) {
            Ok(v) => println!("{}", v["StatusCode"].as_i64().unwrap_or(-1)),
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// Prints a `--format` template (or `json`) against `value`.
fn print_template(template: &str, value: &Value) -> CmdResult {
    if template == "json" || template == "{{json .}}" {
        println!("{value}");
        return Ok(0);
    }
    println!("{}", crate::format::render(template, value).map_err(fail)?);
    Ok(0)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// docker's `version`: the client's facts, then the server's and its
/// components; `--format` sees docker's template fields (`.Client.Version`,
/// `.Server.APIVersion`, ...).
pub fn version(client: &Client, format: Option<&str>) -> CmdResult {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let host = client.host();
    let client_info = ClientVersion {
        platform: Platform { name: "berth" },
        version: env!("CARGO_PKG_VERSION"),
        api_version: "1.45",
        go_api_version: "1.45",
        default_api_version: "1.45",
        git_commit: env!("BERTH_GIT_COMMIT"),
        go_version: env!("BERTH_RUSTC_VERSION"),
        os: "linux",
        arch,
        build_time: env!("BERTH_BUILD_TIME"),
        context: &host,
    };
    let server = client.get_json("/version");
    if let Some(template) = format {
        let mut server_value = server.as_ref().cloned().unwrap_or(Value::Null);
        // Go's field name, which docker's templates use, beside the JSON one.
        if server_value.is_object() {
            server_value["APIVersion"] = server_value["ApiVersion"].clone();
        }
        let value = serde_json::to_value(VersionTemplate {
            client: &client_info,
            server: server_value,
        })
        .map_err(|e| fail(e.to_string()))?;
        print_template(template, &value)?;
        return server.map(|_| 0).map_err(Failure::from);
    }
    println!("Client:");
    for (label, key) in [
        ("Version", "Version"),
        ("API version", "ApiVersion"),
        ("Rust version", "GoVersion"),
        ("Git commit", "GitCommit"),
        ("Built", "BuildTime"),
    ] {
        let client_value = serde_json::to_value(&client_info).unwrap_or_default();
        println!(" {:<19}{}", format!("{label}:"), text(&client_value[key]));
    }
    println!(" {:<19}linux/{arch}", "OS/Arch:");
    println!(" {:<19}{}", "Host:", client.host());
    let v = server?;
    println!("\nServer: {}", text(&v["Platform"]["Name"]));
    for c in v["Components"].as_array().cloned().unwrap_or_default() {
        println!(" {}:", text(&c["Name"]));
        println!("  {:<18}{}", "Version:", text(&c["Version"]));
        let d = &c["Details"];
        if c["Name"] == "Engine" {
            println!(
                "  {:<18}{} (minimum version {})",
                "API version:",
                text(&d["ApiVersion"]),
                text(&d["MinAPIVersion"])
            );
            println!("  {:<18}{}", "Rust version:", text(&d["RustVersion"]));
            println!("  {:<18}{}", "Git commit:", text(&d["GitCommit"]));
            println!("  {:<18}{}", "Built:", text(&d["BuildTime"]));
            println!(
                "  {:<18}{}/{}",
                "OS/Arch:",
                text(&d["Os"]),
                text(&d["Arch"])
            );
            println!("  {:<18}{}", "Kernel:", text(&d["KernelVersion"]));
        } else if let Some(details) = d.as_object() {
            for (k, value) in details {
                println!("  {:<18}{}", format!("{k}:"), text(value));
            }
        }
    }
    Ok(0)
}

/// docker's `info` layout for the fields berth has; `--format` renders the
/// daemon's JSON.
pub fn info(client: &Client, format: Option<&str>) -> CmdResult {
    let v = client.get_json("/info")?;
    if let Some(template) = format {
        return print_template(template, &v);
    }
    let line = |label: &str, value: String| println!(" {label}: {value}");
    println!(
        "Client:\n Version:    {}\n Host:       {}\n",
        env!("CARGO_PKG_VERSION"),
        client.host()
    );
    println!("Server:");
    line("Containers", text(&v["Containers"]));
    line(" Running", text(&v["ContainersRunning"]));
    line(" Paused", text(&v["ContainersPaused"]));
    line(" Stopped", text(&v["ContainersStopped"]));
    line("Images", text(&v["Images"]));
    line("Server Version", text(&v["ServerVersion"]));
    line("Storage Driver", text(&v["Driver"]));
    line("Logging Driver", text(&v["LoggingDriver"]));
    line("Cgroup Driver", text(&v["CgroupDriver"]));
    line("Cgroup Version", text(&v["CgroupVersion"]));
    println!(" Plugins:");
    for kind in ["Volume", "Network", "Log"] {
        let names: Vec<String> = v["Plugins"][kind]
            .as_array()
            .map(|a| a.iter().map(text).collect())
            .unwrap_or_default();
        println!("  {kind}: {}", names.join(" "));
    }
    let runtimes: Vec<String> = v["Runtimes"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    line("Runtimes", runtimes.join(" "));
    line("Default Runtime", text(&v["DefaultRuntime"]));
    println!(" Security Options:");
    for option in v["SecurityOptions"].as_array().cloned().unwrap_or_default() {
        // name=seccomp,profile=builtin → "seccomp" then "Profile: builtin".
        let option = text(&option);
        let mut parts = option.split(',');
        let name = parts.next().unwrap_or("").trim_start_matches("name=");
        println!("  {name}");
        for part in parts {
            if let Some((k, val)) = part.split_once('=') {
                let mut key = k.to_string();
                if let Some(first) = key.get_mut(0..1) {
                    first.make_ascii_uppercase();
                }
                println!("   {key}: {val}");
            }
        }
    }
    line("Kernel Version", text(&v["KernelVersion"]));
    line("Operating System", text(&v["OperatingSystem"]));
    line("OSType", text(&v["OSType"]));
    line("Architecture", text(&v["Architecture"]));
    line("CPUs", text(&v["NCPU"]));
    line(
        "Total Memory",
        crate::format::human_size(v["MemTotal"].as_f64().unwrap_or(0.0)),
    );
    line("Name", text(&v["Name"]));
    line("Docker Root Dir", text(&v["DockerRootDir"]));
    line("Debug Mode", text(&v["Debug"]));
    line("Live Restore Enabled", text(&v["LiveRestoreEnabled"]));
    Ok(0)
}

pub fn export(client: &Client, name: &str, output: Option<&str>) -> CmdResult {
    if output.is_none() && crate::term::is_terminal(1) {
        return Err(fail(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let mut resp = client.call(
        "GET",
        &format!("/containers/{name}/export"),
        RequestBody::None,
    )?;
    write_output(&mut resp.body, output)?;
    Ok(0)
}

/// Docker's `--filter k=v` flags as the API's JSON (`{"k":{"v":true}}`).
pub(crate) fn filters_json(filters: &[String]) -> Result<Option<String>, Failure> {
    if filters.is_empty() {
        return Ok(None);
    }
    let mut parsed = berth_api_types::Filters::new();
    for f in filters {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| fail(format!("bad format of filter (expected name=value): {f}")))?;
        parsed.add(k, v);
    }
    Ok(Some(parsed.to_query()))
}

/// Copies an archive body to `output` (atomically: temp file, fsync, rename) or to
/// stdout.
pub(crate) fn write_output(body: &mut dyn io::Read, output: Option<&str>) -> Result<(), Failure> {
    match output {
        Some(path) => {
            let tmp = format!("{path}.tmp{}", std::process::id());
            let mut file =
                std::fs::File::create(&tmp).map_err(|e| fail(format!("create {tmp}: {e}")))?;
            io::copy(body, &mut file)?;
            file.sync_all()?;
            std::fs::rename(&tmp, path).map_err(|e| fail(format!("rename to {path}: {e}")))?;
        }
        None => {
            let mut out = io::stdout().lock();
            io::copy(body, &mut out)?;
            out.flush()?;
        }
    }
    Ok(())
}

pub fn simple_post(client: &Client, names: &[String], verb: &str) -> CmdResult {
    each(names, |n| {
        client
            .call(
                "POST",
                &format!("/containers/{n}/{verb}"),
                RequestBody::None,
            )
            .map(|_| ())
    })
}

pub fn rename(client: &Client, name: &str, new_name: &str) -> CmdResult {
    let q = encode_query(&[("name", new_name.to_string())]);
    client.call(
        "POST",
        &format!("/containers/{name}/rename{q}"),
        RequestBody::None,
    )?;
    Ok(0)
}

pub fn top(client: &Client, name: &str) -> CmdResult {
    let v = client.get_json(&format!("/containers/{name}/top"))?;
    let titles: Vec<&str> = v["Titles"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t.as_str()).collect())
        .unwrap_or_default();
    let rows: Vec<Vec<String>> = v["Processes"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    p.as_array()
                        .map(|f| {
                            f.iter()
                                .map(|x| x.as_str().unwrap_or_default().to_string())
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default();
    format::table(&titles, &rows);
    Ok(0)
}

pub fn diff(client: &Client, name: &str) -> CmdResult {
    let v = client.get_json(&format!("/containers/{name}/changes"))?;
    for change in v.as_array().cloned().unwrap_or_default() {
        let kind = match change["Kind"].as_i64() {
            Some(1) => "A",
            Some(2) => "D",
            _ => "C",
        };
        println!("{kind} {}", change["Path"].as_str().unwrap_or_default());
    }
    Ok(0)
}

fn stats_row(v: &Value) -> Vec<String> {
    let cpu = &v["cpu_stats"];
    let pre = &v["precpu_stats"];
    let cpu_delta = cpu["cpu_usage"]["total_usage"].as_f64().unwrap_or(0.0)
        - pre["cpu_usage"]["total_usage"].as_f64().unwrap_or(0.0);
    let sys_delta = cpu["system_cpu_usage"].as_f64().unwrap_or(0.0)
        - pre["system_cpu_usage"].as_f64().unwrap_or(0.0);
    let cpus = cpu["online_cpus"].as_f64().unwrap_or(1.0);
    let cpu_pct = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * cpus * 100.0
    } else {
        0.0
    };
    let mem = &v["memory_stats"];
    let inactive = mem["stats"]["total_inactive_file"]
        .as_f64()
        .or(mem["stats"]["inactive_file"].as_f64())
        .unwrap_or(0.0);
    let used = (mem["usage"].as_f64().unwrap_or(0.0) - inactive).max(0.0);
    let limit = mem["limit"].as_f64().unwrap_or(0.0);
    vec![
        v["id"]
            .as_str()
            .unwrap_or_default()
            .chars()
            .take(12)
            .collect(),
        v["name"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        format!("{cpu_pct:.2}%"),
        format!(
            "{} / {}",
            format::bytes_size(used),
            format::bytes_size(limit)
        ),
        format!(
            "{:.2}%",
            if limit > 0.0 {
                used / limit * 100.0
            } else {
                0.0
            }
        ),
        v["pids_stats"]["current"].as_u64().unwrap_or(0).to_string(),
    ]
}

pub fn stats(client: &Client, names: &[String], no_stream: bool) -> CmdResult {
    let names: Vec<String> = if names.is_empty() {
        client
            .get_json("/containers/json")?
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c["Id"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        names.to_vec()
    };
    let header = [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "PIDS",
    ];
    loop {
        let mut rows = Vec::new();
        for n in &names {
            let v = client
                .call(
                    "GET",
                    &format!("/containers/{n}/stats?stream=false"),
                    RequestBody::None,
                )?
                .json()?;
            rows.push(stats_row(&v));
        }
        if !no_stream {
            print!("\x1b[2J\x1b[H");
        }
        format::table(&header, &rows);
        if no_stream {
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// Docker CLI time arguments: unix seconds, RFC 3339, or a duration ago (`10m`, `1h30m`).
pub(crate) fn timestamp(arg: &str) -> Result<String, Failure> {
    if arg.parse::<f64>().is_ok() || chrono::DateTime::parse_from_rfc3339(arg).is_ok() {
        return Ok(arg.to_string());
    }
    let mut total = 0f64;
    let mut number = String::new();
    for ch in arg.chars() {
        if ch.is_ascii_digit() || ch == '.' {
            number.push(ch);
            continue;
        }
        let n: f64 = number
            .parse()
            .map_err(|_| fail(format!("invalid time {arg:?}")))?;
        number.clear();
        total += n * match ch {
            's' => 1.0,
            'm' => 60.0,
            'h' => 3600.0,
            _ => return Err(fail(format!("invalid time {arg:?}"))),
        };
    }
    if !number.is_empty() {
        return Err(fail(format!("invalid time {arg:?}")));
    }
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) as f64 / 1e9;
    Ok(format!("{:.9}", now - total))
}

pub fn events(
    client: &Client,
    since: Option<String>,
    until: Option<String>,
    filters: &[String],
) -> CmdResult {
    let mut q = Vec::new();
    if let Some(s) = since {
        q.push(("since", timestamp(&s)?));
    }
    if let Some(u) = until {
        q.push(("until", timestamp(&u)?));
    }
    let filters_json = filters_json(filters)?;
    if let Some(f) = filters_json {
        q.push(("filters", f));
    }
    let resp = client.call(
        "GET",
        &format!("/events{}", encode_query(&q)),
        RequestBody::None,
    )?;
    let reader = io::BufReader::new(resp.body);
    let mut out = io::stdout().lock();
    for line in io::BufRead::lines(reader) {
        let Ok(line) = line else { break };
        let Ok(ev) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let nanos = ev["timeNano"].as_i64().unwrap_or(0);
        let time =
            chrono::DateTime::from_timestamp(nanos / 1_000_000_000, (nanos % 1_000_000_000) as u32)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
                .unwrap_or_default();
        let attrs: Vec<String> = ev["Actor"]["Attributes"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        writeln!(
            out,
            "{time} {} {} {} ({})",
            ev["Type"].as_str().unwrap_or_default(),
            ev["Action"].as_str().unwrap_or_default(),
            ev["Actor"]["ID"].as_str().unwrap_or_default(),
            attrs.join(", ")
        )?;
        out.flush()?;
    }
    Ok(0)
}

/// Docker's confirmation prompt for destructive prunes; `-f` skips it.
pub(crate) fn confirm(force: bool, what: &str) -> Result<bool, Failure> {
    if force {
        return Ok(true);
    }
    eprint!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
    let mut answer = String::new();
    io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

pub fn prune(client: &Client, force: bool, filters: &[String]) -> CmdResult {
    if !confirm(force, "all stopped containers")? {
        return Ok(0);
    }
    let filters_json = filters_json(filters)?;
    let q = match filters_json {
        Some(f) => encode_query(&[("filters", f)]),
        None => String::new(),
    };
    let v = client.post(&format!("/containers/prune{q}"))?;
    let deleted = v["ContainersDeleted"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Containers:");
        for id in deleted {
            println!("{}", id.as_str().unwrap_or_default());
        }
        println!();
    }
    println!("Total reclaimed space: 0B");
    Ok(0)
}

/// A row of `ps --format`: docker's `ContainerContext` fields.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct PsRow {
    #[serde(rename = "ID")]
    id: String,
    image: String,
    command: String,
    created_at: String,
    running_for: String,
    status: String,
    state: String,
    ports: String,
    names: String,
    labels: String,
    networks: String,
    mounts: String,
}

/// The client half of `version`, as docker's `--format` templates see it.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct ClientVersion<'a> {
    platform: Platform,
    version: &'a str,
    api_version: &'a str,
    /// Go's field name for `ApiVersion`, which docker's templates use.
    #[serde(rename = "APIVersion")]
    go_api_version: &'a str,
    #[serde(rename = "DefaultAPIVersion")]
    default_api_version: &'a str,
    git_commit: &'a str,
    go_version: &'a str,
    os: &'a str,
    arch: &'a str,
    build_time: &'a str,
    context: &'a str,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Platform {
    name: &'static str,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct VersionTemplate<'a> {
    client: &'a ClientVersion<'a>,
    server: Value,
}
