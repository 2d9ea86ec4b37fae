//! `.env` / `--env-file` / `env_file:` files: `KEY=VALUE` lines.
//!
//! Supported: `#` comment lines and ` #` trailing comments on unquoted
//! values, an `export ` prefix, single quotes (literal, may span lines),
//! double quotes (`\n`, `\t`, `\r`, `\"`, `\\`, `\$` escapes, may span lines),
//! `${VAR}` expansion in unquoted and double-quoted values (from the outer
//! environment first, then keys defined earlier in the same file), and a bare
//! `KEY` line, which takes `KEY` from the outer environment when it is set.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{ComposeError, Result};
use crate::interpolate::{substitute, InterpError};

/// Read and parse an env file; `(key, value)` pairs in file order.
pub(crate) fn read(
    path: &Path,
    outer: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).map_err(|source| ComposeError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text, outer)
}

pub(crate) fn parse(
    path: &Path,
    text: &str,
    outer: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>> {
    let err = |line: usize, message: String| ComposeError::EnvFile {
        file: path.to_path_buf(),
        line,
        message,
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line_no = i + 1;
        let line = lines[i].trim();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = match line.strip_prefix("export") {
            Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start(),
            _ => line,
        };
        let Some((key, raw)) = line.split_once('=') else {
            // A bare name passes the outer value through, when there is one.
            let key = line;
            check_key(key).map_err(|m| err(line_no, m))?;
            if let Some(v) = outer(key) {
                out.push((key.to_string(), v));
            }
            continue;
        };
        let key = key.trim();
        check_key(key).map_err(|m| err(line_no, m))?;
        let raw = raw.trim_start();

        // Values are expanded against the outer environment, then earlier keys.
        let expand = |value: &str, out: &[(String, String)]| {
            let lookup = |name: &str| {
                outer(name).or_else(|| {
                    out.iter()
                        .rev()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                })
            };
            substitute(value, &lookup, false).map_err(|e| match e {
                InterpError::Missing { variable, message } => err(
                    line_no,
                    format!("required variable {variable} is missing a value: {message}"),
                ),
                InterpError::Invalid => err(line_no, format!("invalid value {value:?}")),
            })
        };

        let value = match raw.chars().next() {
            Some(q @ ('"' | '\'')) => {
                // Gather lines until the closing quote.
                let mut body = raw[1..].to_string();
                let close = loop {
                    if let Some(pos) = find_close(&body, q) {
                        break pos;
                    }
                    if i >= lines.len() {
                        return Err(err(line_no, format!("unterminated quoted value for {key}")));
                    }
                    body.push('\n');
                    body.push_str(lines[i]);
                    i += 1;
                };
                let inner = &body[..close];
                if q == '\'' {
                    inner.to_string()
                } else {
                    expand(&unescape(inner), &out)?
                }
            }
            _ => {
                // An unquoted value ends at a ` #` comment.
                let mut value = raw;
                if let Some(pos) = value.find(" #").or_else(|| value.find("\t#")) {
                    value = &value[..pos];
                }
                expand(value.trim(), &out)?
            }
        };
        out.push((key.to_string(), value));
    }
    Ok(out)
}

fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.chars().any(char::is_whitespace) {
        return Err(format!("invalid variable name {key:?}"));
    }
    Ok(())
}

/// The byte offset of the closing quote `q` in `body` (a double quote may be
/// escaped with a backslash).
fn find_close(body: &str, q: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        if q == '"' && !escaped && c == '\\' {
            escaped = true;
            continue;
        }
        if c == q && !escaped {
            return Some(i);
        }
        escaped = false;
    }
    None
}

/// Double-quote escapes. `\$` becomes `$$` so the expansion that follows
/// turns it into a literal `$`.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('$') => out.push_str("$$"),
            Some(other @ ('"' | '\\')) => out.push(other),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Vec<(String, String)> {
        parse(Path::new("t.env"), text, &|k| {
            (k == "OUTER").then(|| "out".to_string())
        })
        .unwrap()
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_forms() {
        let got = p("# comment\n\
             A=1\n\
             export B = two words  # trailing\n\
             C=\"quoted # not a comment\"\n\
             D='single $A'\n\
             E=\"line\\nbreak \\$A\"\n\
             F=${A}-$OUTER\n\
             OUTER\n\
             MISSING\n\
             G=\n\
             H=\"multi\n\
             line\"\n\
             I=a=b\n");
        assert_eq!(
            got,
            kv(&[
                ("A", "1"),
                ("B", "two words"),
                ("C", "quoted # not a comment"),
                ("D", "single $A"),
                ("E", "line\nbreak $A"),
                ("F", "1-out"),
                ("OUTER", "out"),
                ("G", ""),
                ("H", "multi\nline"),
                ("I", "a=b"),
            ])
        );
    }

    #[test]
    fn errors_name_line() {
        let e = parse(Path::new("x.env"), "A=1\nB=\"open\n", &|_| None).unwrap_err();
        assert_eq!(e.to_string(), "x.env:2: unterminated quoted value for B");
        let e = parse(Path::new("x.env"), "A B=1\n", &|_| None).unwrap_err();
        assert!(e.to_string().starts_with("x.env:1: invalid variable name"));
    }
}

/// The variables interpolation and `env_file` expansion see: env files
/// first, the process environment over them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    pub(crate) fn new(vars: BTreeMap<String, String>) -> Self {
        Env { vars }
    }

    #[cfg(test)]
    pub(crate) fn from_pairs<const N: usize>(pairs: [(&str, &str); N]) -> Self {
        Env {
            vars: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    pub(crate) fn get(&self, k: &str) -> Option<String> {
        self.vars.get(k).cloned()
    }

    /// This environment with `lower` under it (its values only where this has none).
    pub(crate) fn over(&self, lower: impl IntoIterator<Item = (String, String)>) -> Env {
        let mut vars: BTreeMap<String, String> = lower.into_iter().collect();
        vars.extend(self.vars.clone());
        Env { vars }
    }
}
