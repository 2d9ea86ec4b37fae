//! Log drivers: which ones exist (docker's `json-file`, `local` and `none`),
//! the options each takes and their defaults, dockerd's merge of the daemon's
//! defaults into a container's configuration, and what the monitor is told.
//! One place for create, daemon.json and the monitor alike.

use std::collections::BTreeMap;
use std::path::Path;

use berth_monitor::logfile::LogFormat;
use berth_monitor::LogConfig;

/// The drivers berth has.
pub const DRIVERS: &[&str] = &["json-file", "local", "none"];

/// json-file: berth rotates by default (docker's json-file never does, which
/// fills disks); 20 MB × 5, as docker's `local`.
const DEFAULT_MAX_SIZE: u64 = 20 * 1024 * 1024;
const DEFAULT_MAX_FILES: u32 = 5;

/// The options a driver accepts.
fn known_options(driver: &str) -> &'static [&'static str] {
    match driver {
        "json-file" | "local" => &["max-size", "max-file", "compress"],
        _ => &[],
    }
}

/// docker's size syntax: a number with an optional k/m/g (binary units).
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1024),
        'm' => (&s[..s.len() - 1], 1024 * 1024),
        'g' => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        _ => (s, 1),
    };
    num.trim().parse::<u64>().ok().map(|n| n * mult)
}

/// dockerd's checks of a log configuration, with its words; `Err` is the
/// message for a 400.
pub fn validate(driver: &str, options: &BTreeMap<String, String>) -> Result<(), String> {
    if !DRIVERS.contains(&driver) {
        // dockerd looks a driver it does not have up as a plugin.
        return Err(format!(
            "error looking up logging plugin {driver}: plugin \"{driver}\" not found"
        ));
    }
    if driver == "none" {
        // dockerd has no option check for `none`: it takes anything.
        return Ok(());
    }
    let known = known_options(driver);
    for (key, value) in options {
        if !known.contains(&key.as_str()) {
            // dockerd's drivers word this differently.
            return Err(if driver == "local" {
                format!("unknown log opt '{key}' for log driver {driver}")
            } else {
                format!("unknown log opt '{key}' for {driver} log driver")
            });
        }
        match key.as_str() {
            "max-size" if parse_size(value).is_none() => {
                return Err(format!("invalid max-size: {value}"))
            }
            "max-size" if parse_size(value) == Some(0) && driver == "local" => {
                return Err("max-size must be a positive number".into())
            }
            "max-file" => match value.parse::<i64>() {
                Ok(n) if n >= 1 => {}
                _ => return Err("max-file cannot be less than 1".into()),
            },
            "compress" if value.parse::<bool>().is_err() => {
                return Err(format!("error reading compress log option: {value:?}"))
            }
            _ => {}
        }
    }
    if driver == "json-file"
        && options.get("compress").is_some_and(|c| c == "true")
        && options.get("max-file").is_some_and(|n| n == "1")
    {
        return Err("compress cannot be true when max-file is less than 2".into());
    }
    Ok(())
}

/// dockerd's merge (`mergeAndVerifyLogConfig`): a container without a driver
/// takes the daemon's, and a container on the daemon's driver takes each
/// daemon option it does not set itself.
pub fn merge_defaults(
    driver: &mut String,
    options: &mut BTreeMap<String, String>,
    daemon_driver: &str,
    daemon_options: &BTreeMap<String, String>,
) {
    if driver.is_empty() {
        *driver = daemon_driver.to_string();
    }
    if driver == daemon_driver {
        for (k, v) in daemon_options {
            options.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

/// What the monitor writes for this configuration (`None`: nothing, the
/// `none` driver).
pub fn monitor_config(
    driver: &str,
    options: &BTreeMap<String, String>,
    dir: &Path,
) -> Option<LogConfig> {
    let format = match driver {
        "none" => return None,
        "local" => LogFormat::Local,
        _ => LogFormat::JsonFile,
    };
    let max_size = options
        .get("max-size")
        .and_then(|s| parse_size(s))
        .unwrap_or(DEFAULT_MAX_SIZE);
    let max_files = options
        .get("max-file")
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_MAX_FILES);
    // local compresses unless told not to; json-file only when told to.
    let compress = options
        .get("compress")
        .and_then(|c| c.parse().ok())
        .unwrap_or(format == LogFormat::Local);
    Some(LogConfig {
        path: dir.join("container.log"),
        max_size,
        max_files,
        format,
        compress: compress && max_files > 1,
    })
}

/// The format a container's log is read in (`None`: the driver keeps none).
pub fn read_format(driver: &str) -> Option<LogFormat> {
    match driver {
        "none" => None,
        "local" => Some(LogFormat::Local),
        _ => Some(LogFormat::JsonFile),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn dockers_refusals() {
        assert!(validate(
            "json-file",
            &opts(&[("max-size", "10m"), ("max-file", "3")])
        )
        .is_ok());
        assert!(validate("local", &opts(&[("compress", "false")])).is_ok());
        assert!(validate("none", &opts(&[])).is_ok());
        assert_eq!(
            validate("syslog", &opts(&[])).unwrap_err(),
            "error looking up logging plugin syslog: plugin \"syslog\" not found"
        );
        assert_eq!(
            validate("json-file", &opts(&[("labels", "a")])).unwrap_err(),
            "unknown log opt 'labels' for json-file log driver"
        );
        assert!(validate("none", &opts(&[("max-size", "1m")])).is_ok());
        assert!(validate("json-file", &opts(&[("max-size", "ten")])).is_err());
        assert!(validate("json-file", &opts(&[("max-file", "0")])).is_err());
        assert!(validate("json-file", &opts(&[("compress", "yes")])).is_err());
        assert!(validate(
            "json-file",
            &opts(&[("compress", "true"), ("max-file", "1")])
        )
        .is_err());
    }

    #[test]
    fn daemon_defaults_merge_per_key_for_the_same_driver_only() {
        let daemon = opts(&[("max-size", "1m"), ("max-file", "2")]);
        let (mut driver, mut own) = (String::new(), opts(&[("max-file", "9")]));
        merge_defaults(&mut driver, &mut own, "json-file", &daemon);
        assert_eq!(driver, "json-file");
        assert_eq!(own, opts(&[("max-size", "1m"), ("max-file", "9")]));
        let (mut driver, mut own) = ("local".to_string(), opts(&[]));
        merge_defaults(&mut driver, &mut own, "json-file", &daemon);
        assert!(
            own.is_empty(),
            "another driver's options are not the daemon's"
        );
    }

    #[test]
    fn what_the_monitor_is_told() {
        let dir = Path::new("/c");
        assert!(monitor_config("none", &opts(&[]), dir).is_none());
        let local = monitor_config("local", &opts(&[]), dir).unwrap();
        assert_eq!(
            (
                local.format,
                local.compress,
                local.max_size,
                local.max_files
            ),
            (LogFormat::Local, true, 20 << 20, 5)
        );
        let json = monitor_config(
            "json-file",
            &opts(&[("max-size", "1k"), ("max-file", "3")]),
            dir,
        )
        .unwrap();
        assert_eq!(
            (json.format, json.compress, json.max_size, json.max_files),
            (LogFormat::JsonFile, false, 1024, 3)
        );
        let single = monitor_config("local", &opts(&[("max-file", "1")]), dir).unwrap();
        assert!(!single.compress, "nothing is rotated, nothing to compress");
        assert_eq!(parse_size("1.5m"), None);
        assert_eq!(parse_size("2g"), Some(2 << 30));
        assert_eq!(parse_size("10kb"), Some(10 << 10));
    }
}
