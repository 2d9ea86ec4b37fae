//! Parsers for the string forms inside compose values: durations, byte sizes,
//! shell words, port specs and short volume specs. Each returns a message
//! (without file or key, which the caller adds) on bad input.

use crate::model::Port;

/// A Go duration ("1m30s", "500ms", "1.5h") in nanoseconds. A bare number
/// is taken as seconds.
pub(crate) fn duration_ns(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid duration {s:?}");
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = t.parse::<f64>() {
        return to_i64(secs * 1e9).ok_or_else(bad);
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let num: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += num * scale;
        rest = &rest[unit_len..];
    }
    to_i64(total).ok_or_else(bad)
}

fn to_i64(f: f64) -> Option<i64> {
    (f.is_finite() && f >= 0.0 && f < i64::MAX as f64).then_some(f.round() as i64)
}

/// A byte size: "100b", "512k", "64m", "1g", "1.5GB", "2MiB" (powers of 1024).
pub(crate) fn size_bytes(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid size {s:?}");
    let t = s.trim().to_ascii_lowercase();
    let num_len = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    if num_len == 0 {
        return Err(bad());
    }
    let num: f64 = t[..num_len].parse().map_err(|_| bad())?;
    let unit = t[num_len..].trim();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(unit);
    let scale: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024f64.powi(2),
        "g" => 1024f64.powi(3),
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    to_i64(num * scale).ok_or_else(bad)
}

/// Split a command line as a POSIX shell would split words: whitespace
/// separates, single quotes are literal, double quotes allow `\"`, `\\`, `\$`
/// and `` \` ``, and a backslash outside quotes escapes the next character.
pub(crate) fn shell_split(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    // Distinguishes `""` (an empty word) from no word at all.
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(format!("unterminated quote in {s:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => cur.push(e),
                            Some(e) => {
                                cur.push('\\');
                                cur.push(e);
                            }
                            None => return Err(format!("unterminated quote in {s:?}")),
                        },
                        Some(c) => cur.push(c),
                        None => return Err(format!("unterminated quote in {s:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(e) => cur.push(e),
                    None => cur.push('\\'),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// "80", "80-81", "8080:80", "8000-8001:80-81", "127.0.0.1:8080:80/udp",
/// "127.0.0.1::80", "[::1]:8080:80". A range expands to one port each.
pub(crate) fn port_spec(spec: &str) -> Result<Vec<Port>, String> {
    let bad = |why: &str| format!("invalid port {spec:?}: {why}");
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, protocol(p).map_err(|m| bad(&m))?),
        None => (spec, "tcp".to_string()),
    };
    // Split from the right: container, then host, then an IP that may itself
    // hold colons (IPv6, bracketed or not).
    let mut parts = rest.rsplitn(3, ':');
    let container = parts.next().unwrap_or_default();
    let host = parts.next();
    let ip = parts.next();
    let host_ip = match ip {
        Some(ip) => {
            let ip = ip
                .strip_prefix('[')
                .and_then(|i| i.strip_suffix(']'))
                .unwrap_or(ip);
            if ip.is_empty() || ip.parse::<std::net::IpAddr>().is_err() {
                return Err(bad("the host IP is not an IP address"));
            }
            Some(ip.to_string())
        }
        None => None,
    };
    let targets = port_range(container).map_err(|m| bad(&m))?;
    let published: Vec<Option<String>> = match host {
        None | Some("") => vec![None; targets.len()],
        Some(h) => {
            let hs = port_range(h).map_err(|m| bad(&m))?;
            if targets.len() == 1 && hs.len() > 1 {
                // One container port, a host range: any free port of it.
                vec![Some(format!("{}-{}", hs[0], hs[hs.len() - 1]))]
            } else if hs.len() != targets.len() {
                return Err(bad(
                    "the host port range must be as long as the container port range",
                ));
            } else {
                hs.into_iter().map(|p| Some(p.to_string())).collect()
            }
        }
    };
    Ok(targets
        .into_iter()
        .zip(published)
        .map(|(target, published)| Port {
            target,
            published,
            host_ip: host_ip.clone(),
            protocol: protocol.clone(),
        })
        .collect())
}

pub(crate) fn protocol(p: &str) -> Result<String, String> {
    match p.to_ascii_lowercase().as_str() {
        "tcp" => Ok("tcp".into()),
        "udp" => Ok("udp".into()),
        other => Err(format!("unsupported protocol {other:?} (tcp or udp)")),
    }
}

/// "80" or "8000-8010" (inclusive).
pub(crate) fn port_range(s: &str) -> Result<Vec<u16>, String> {
    let one = |p: &str| match p.trim().parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{p:?} is not a port number")),
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (one(a)?, one(b)?);
            if b < a {
                return Err(format!("{s:?} is an empty range"));
            }
            Ok((a..=b).collect())
        }
        None => Ok(vec![one(s)?]),
    }
}

/// The parts of a short volume spec "[source:]target[:mode]".
#[derive(Debug, PartialEq)]
pub(crate) struct ShortVolume<'a> {
    pub(crate) source: Option<&'a str>,
    pub(crate) target: &'a str,
    pub(crate) mode: Option<&'a str>,
}

pub(crate) fn volume_short(spec: &str) -> Result<ShortVolume<'_>, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let v = match parts.as_slice() {
        [target] => ShortVolume {
            source: None,
            target,
            mode: None,
        },
        [source, target] => ShortVolume {
            source: Some(source),
            target,
            mode: None,
        },
        [source, target, mode] => ShortVolume {
            source: Some(source),
            target,
            mode: Some(mode),
        },
        _ => return Err(format!("invalid volume {spec:?}: too many colons")),
    };
    if v.source == Some("") {
        return Err(format!("invalid volume {spec:?}: empty source"));
    }
    if !v.target.starts_with('/') {
        return Err(format!(
            "invalid volume {spec:?}: the container path must be absolute"
        ));
    }
    Ok(v)
}

/// Whether a volume source is a host path (a bind) rather than a volume name.
pub(crate) fn is_host_path(source: &str) -> bool {
    source.starts_with('/') || source.starts_with('.') || source.starts_with('~')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration_ns("10s"), Ok(10_000_000_000));
        assert_eq!(duration_ns("1m30s"), Ok(90_000_000_000));
        assert_eq!(duration_ns("500ms"), Ok(500_000_000));
        assert_eq!(duration_ns("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(duration_ns("2us"), Ok(2_000));
        assert_eq!(duration_ns("7"), Ok(7_000_000_000));
        assert!(duration_ns("10x").is_err());
        assert!(duration_ns("s").is_err());
        assert!(duration_ns("").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(size_bytes("100b"), Ok(100));
        assert_eq!(size_bytes("512k"), Ok(512 * 1024));
        assert_eq!(size_bytes("64m"), Ok(64 * 1024 * 1024));
        assert_eq!(size_bytes("1g"), Ok(1 << 30));
        assert_eq!(size_bytes("1GB"), Ok(1 << 30));
        assert_eq!(size_bytes("2MiB"), Ok(2 << 20));
        assert_eq!(size_bytes("1.5k"), Ok(1536));
        assert_eq!(size_bytes("42"), Ok(42));
        assert!(size_bytes("12q").is_err());
        assert!(size_bytes("m").is_err());
    }

    #[test]
    fn shell_words() {
        assert_eq!(
            shell_split(r#"sh -c "echo \"hi\" $HOME" 'a b' c\ d "" "#).unwrap(),
            vec!["sh", "-c", "echo \"hi\" $HOME", "a b", "c d", ""]
        );
        assert_eq!(shell_split("  ").unwrap(), Vec::<String>::new());
        assert!(shell_split("echo 'open").is_err());
    }

    fn port(target: u16, published: Option<u16>, ip: Option<&str>, proto: &str) -> Port {
        Port {
            target,
            published: published.map(|p| p.to_string()),
            host_ip: ip.map(String::from),
            protocol: proto.into(),
        }
    }

    #[test]
    fn ports() {
        assert_eq!(port_spec("80").unwrap(), vec![port(80, None, None, "tcp")]);
        assert_eq!(
            port_spec("8080:80").unwrap(),
            vec![port(80, Some(8080), None, "tcp")]
        );
        assert_eq!(
            port_spec("127.0.0.1:8080:80/udp").unwrap(),
            vec![port(80, Some(8080), Some("127.0.0.1"), "udp")]
        );
        assert_eq!(
            port_spec("127.0.0.1::80").unwrap(),
            vec![port(80, None, Some("127.0.0.1"), "tcp")]
        );
        assert_eq!(
            port_spec("[::1]:8080:80").unwrap(),
            vec![port(80, Some(8080), Some("::1"), "tcp")]
        );
        assert_eq!(
            port_spec("8000-8001:80-81").unwrap(),
            vec![
                port(80, Some(8000), None, "tcp"),
                port(81, Some(8001), None, "tcp")
            ]
        );
        assert_eq!(port_spec("80-81").unwrap().len(), 2);
        // One container port, a host range: one port, any free one of the range.
        assert_eq!(
            port_spec("127.0.0.1:8000-8010:80").unwrap(),
            vec![Port {
                target: 80,
                published: Some("8000-8010".into()),
                host_ip: Some("127.0.0.1".into()),
                protocol: "tcp".into(),
            }]
        );
        for bad in [
            "abc",
            "8080:abc",
            "0",
            "70000",
            "1:2:3",
            "8000-8002:80-81",
            "80/sctp",
        ] {
            assert!(port_spec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn short_volumes() {
        assert_eq!(
            volume_short("./data:/data:ro").unwrap(),
            ShortVolume {
                source: Some("./data"),
                target: "/data",
                mode: Some("ro")
            }
        );
        assert_eq!(volume_short("/anon").unwrap().source, None);
        assert!(volume_short("data").is_err());
        assert!(volume_short("a:b:c:d").is_err());
    }
}
