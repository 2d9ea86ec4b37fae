//! Output formatting: docker-like tables, relative times, and a small subset of Go
//! templates for `--format` (`{{.Field.Sub}}`, `{{json .Field}}`, `{{.}}`).

use serde_json::Value;

/// Prints rows as columns separated by at least three spaces, like docker's tabwriter.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{:<w$}", c, w = widths[i] + 3));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

pub fn ago(unix: i64) -> String {
    let secs = (chrono::Utc::now().timestamp() - unix).max(0);
    let text = match secs {
        0 => return "Less than a second ago".into(),
        1 => "1 second".to_string(),
        s if s < 60 => format!("{s} seconds"),
        s if s < 120 => "About a minute".into(),
        s if s < 3600 => format!("{} minutes", s / 60),
        s if s < 7200 => "About an hour".into(),
        s if s < 172_800 => format!("{} hours", s / 3600),
        s => format!("{} days", s / 86_400),
    };
    format!("{text} ago")
}

/// Three significant digits, like Go's `%.3g` (what docker's size helpers use).
fn three_digits(v: f64) -> String {
    let text = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

fn scaled(bytes: f64, base: f64, units: &[&str]) -> String {
    let mut v = bytes;
    let mut i = 0;
    while v >= base && i + 1 < units.len() {
        v /= base;
        i += 1;
    }
    format!("{}{}", three_digits(v), units[i])
}

/// Decimal sizes for images and disk usage (docker's `HumanSize`): 2.13MB.
pub fn human_size(bytes: f64) -> String {
    scaled(bytes, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB"])
}

/// Binary sizes for memory (docker's `BytesSize`): 64MiB.
pub fn bytes_size(bytes: f64) -> String {
    scaled(
        bytes,
        1024.0,
        &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"],
    )
}

fn lookup<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut v = root;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        v = v.get(part)?;
    }
    Some(v)
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<no value>".into(),
        Value::Array(a) => format!("[{}]", a.iter().map(plain).collect::<Vec<_>>().join(" ")),
        Value::Object(o) => format!(
            "map[{}]",
            o.iter()
                .map(|(k, v)| format!("{k}:{}", plain(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => other.to_string(),
    }
}

/// Renders `template` against `value`; unsupported actions are an error.
pub fn render(template: &str, value: &Value) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("template: unclosed action in {template:?}"))?;
        let action = after[..end]
            .trim()
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim();
        let (func, arg) = match action.split_once(char::is_whitespace) {
            Some((f, a)) => (f, a.trim()),
            None => ("", action),
        };
        if func == "range" {
            // {{range .List}}BODY{{end}}: BODY once per element, with `.` the element.
            let body_and_rest = &after[end + 2..];
            let (body, tail) = split_range_body(body_and_rest)
                .ok_or_else(|| format!("template: unclosed range in {template:?}"))?;
            let items = match lookup(value, arg) {
                Some(Value::Array(a)) => a.clone(),
                Some(Value::Object(o)) => o.values().cloned().collect(),
                _ => Vec::new(),
            };
            for item in &items {
                out.push_str(&render(body, item)?);
            }
            rest = tail;
            continue;
        }
        if func == "index" {
            // {{index .Map "key"}} / {{index .List 0}}
            let (path, key) = arg
                .split_once(char::is_whitespace)
                .ok_or_else(|| format!("template: index needs two arguments in {template:?}"))?;
            let key = key.trim().trim_matches('"');
            let container = lookup(value, path.trim()).cloned().unwrap_or(Value::Null);
            let v = match &container {
                Value::Object(o) => o.get(key).cloned(),
                Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i).cloned()),
                _ => None,
            };
            out.push_str(&plain(&v.unwrap_or(Value::Null)));
            rest = &after[end + 2..];
            continue;
        }
        if !arg.starts_with('.') {
            return Err(format!("template: unsupported action {{{{{action}}}}}"));
        }
        let v = lookup(value, arg).cloned().unwrap_or(Value::Null);
        match func {
            "" => out.push_str(&plain(&v)),
            "json" => out.push_str(&serde_json::to_string(&v).unwrap_or_default()),
            "lower" => out.push_str(&plain(&v).to_lowercase()),
            "upper" => out.push_str(&plain(&v).to_uppercase()),
            "len" => out.push_str(
                &match &v {
                    Value::Array(a) => a.len(),
                    Value::Object(o) => o.len(),
                    Value::String(s) => s.len(),
                    _ => 0,
                }
                .to_string(),
            ),
            other => return Err(format!("template: function {other:?} not defined")),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out.replace("\\n", "\n").replace("\\t", "\t"))
}

/// Splits `BODY{{end}}REST` at the `{{end}}` that closes a range (nested ranges
/// count).
fn split_range_body(text: &str) -> Option<(&str, &str)> {
    let mut depth = 0;
    let mut pos = 0;
    while let Some(start) = text[pos..].find("{{") {
        let open = pos + start;
        let close = open + 2 + text[open + 2..].find("}}")?;
        let action = text[open + 2..close].trim().trim_matches('-').trim();
        if action.starts_with("range ") {
            depth += 1;
        } else if action == "end" {
            if depth == 0 {
                return Some((&text[..open], &text[close + 2..]));
            }
            depth -= 1;
        }
        pos = close + 2;
    }
    None
}

/// `--format` for listings: a template per object, or `table TEMPLATE` for aligned
/// columns (tab-separated in the template) under docker's column headers.
pub fn print_formatted(
    template: &str,
    objects: &[Value],
    headers: &[(&str, &str)],
) -> Result<(), String> {
    let template = template.replace("\\t", "\t");
    let Some(table_template) = template.strip_prefix("table") else {
        for o in objects {
            println!("{}", render(&template, o)?);
        }
        return Ok(());
    };
    let table_template = table_template.trim_start();
    let mut header_obj = serde_json::Map::new();
    for (key, title) in headers {
        header_obj.insert(key.to_string(), Value::String(title.to_string()));
    }
    let header = render(table_template, &Value::Object(header_obj))?;
    let header: Vec<String> = header.split('\t').map(String::from).collect();
    let rows: Vec<Vec<String>> = objects
        .iter()
        .map(|o| render(table_template, o).map(|r| r.split('\t').map(String::from).collect()))
        .collect::<Result<_, _>>()?;
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    table(&header_refs, &rows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates() {
        let v = json!({"State": {"ExitCode": 3, "Running": false}, "Name": "/x", "Config": {"Env": ["A=b"]}});
        assert_eq!(render("{{.State.ExitCode}}", &v).unwrap(), "3");
        assert_eq!(
            render("{{ .Name }} {{.State.Running}}", &v).unwrap(),
            "/x false"
        );
        assert_eq!(render("{{json .Config.Env}}", &v).unwrap(), "[\"A=b\"]");
        assert_eq!(render("{{.Missing}}", &v).unwrap(), "<no value>");
        assert!(render("{{range .X}}", &v).is_err());
        let m = json!({"Mounts": [{"Name": "a"}, {"Name": "b"}]});
        assert_eq!(
            render("[{{range .Mounts}}{{.Name}};{{end}}]", &m).unwrap(),
            "[a;b;]"
        );
        let l = json!({"Labels": {"a.b": "c"}});
        assert_eq!(render("{{index .Labels \"a.b\"}}", &l).unwrap(), "c");
    }

    #[test]
    fn table_format_renders_headers() {
        let objs = vec![json!({"Names": "a", "ID": "1"})];
        assert!(print_formatted(
            "table {{.ID}}\t{{.Names}}",
            &objs,
            &[("ID", "CONTAINER ID"), ("Names", "NAMES")]
        )
        .is_ok());
        assert!(print_formatted("{{.Nope", &objs, &[]).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(2_129_920.0), "2.13MB");
        assert_eq!(human_size(512.0), "512B");
        assert_eq!(human_size(67_108_864.0), "67.1MB");
        assert_eq!(bytes_size(67_108_864.0), "64MiB");
        assert_eq!(bytes_size(620_000.0), "605KiB");
    }
}
