//! Variable interpolation: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?err}`, `${VAR?err}`, `${VAR:+alt}`, `${VAR+alt}` and `$$`.
//!
//! The default / alternative / message texts are themselves interpolated, and
//! only when used, so `${A:-${B}}` works and an unused `${B:?}` never fails.

use serde_norway::Value;

use crate::error::{ComposeError, KeyPath, Result, Source};

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum InterpError {
    /// Bad syntax: `${`, `${}`, `${1A}`, `$` followed by a non-name in strict mode.
    Invalid,
    /// `:?` / `?` with the variable missing.
    Missing { variable: String, message: String },
}

/// Interpolate one string. `strict` (compose files) rejects a `$` that starts
/// no variable, as docker compose does, so a forgotten `$$` is reported
/// instead of silently dropped; env files are lenient and keep it literally.
pub(crate) fn substitute(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    strict: bool,
) -> Result<String, InterpError> {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut literal_from = 0;
    // Only ASCII bytes ('$', '{', '}', name characters) are matched, so every
    // slice boundary below falls on a UTF-8 character boundary.
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        out.push_str(&s[literal_from..i]);
        match b.get(i + 1) {
            Some(b'$') => {
                out.push('$');
                i += 2;
            }
            Some(b'{') => match closing_brace(b, i + 2) {
                Some(end) => {
                    out.push_str(&braced(&s[i + 2..end], lookup, strict)?);
                    i = end + 1;
                }
                None if strict => return Err(InterpError::Invalid),
                None => {
                    out.push('$');
                    i += 1;
                }
            },
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                let start = i + 1;
                let mut end = start;
                while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                    end += 1;
                }
                out.push_str(&lookup(&s[start..end]).unwrap_or_default());
                i = end;
            }
            _ if strict => return Err(InterpError::Invalid),
            _ => {
                out.push('$');
                i += 1;
            }
        }
        literal_from = i;
    }
    out.push_str(&s[literal_from..]);
    Ok(out)
}

/// The index of the `}` closing a `${` whose body starts at `from`, skipping
/// nested `${...}` (in defaults) and `$$`.
fn closing_brace(b: &[u8], from: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'$' if b.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if b.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn braced(
    body: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    strict: bool,
) -> Result<String, InterpError> {
    let name_len = body
        .bytes()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
        .count();
    let name = &body[..name_len];
    if name.is_empty() || name.as_bytes()[0].is_ascii_digit() {
        return Err(InterpError::Invalid);
    }
    let rest = &body[name_len..];
    let value = lookup(name);
    let set = value.is_some();
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    let sub = |text: &str| substitute(text, lookup, strict);
    let (op, arg) = if rest.is_empty() {
        return Ok(value.unwrap_or_default());
    } else if let Some(arg) = rest.strip_prefix(":-") {
        (":-", arg)
    } else if let Some(arg) = rest.strip_prefix(":?") {
        (":?", arg)
    } else if let Some(arg) = rest.strip_prefix(":+") {
        (":+", arg)
    } else if let Some(arg) = rest.strip_prefix('-') {
        ("-", arg)
    } else if let Some(arg) = rest.strip_prefix('?') {
        ("?", arg)
    } else if let Some(arg) = rest.strip_prefix('+') {
        ("+", arg)
    } else {
        return Err(InterpError::Invalid);
    };
    match op {
        ":-" if !non_empty => sub(arg),
        "-" if !set => sub(arg),
        ":?" if !non_empty => Err(InterpError::Missing {
            variable: name.to_string(),
            message: sub(arg)?,
        }),
        "?" if !set => Err(InterpError::Missing {
            variable: name.to_string(),
            message: sub(arg)?,
        }),
        ":+" if non_empty => sub(arg),
        "+" if set => sub(arg),
        ":+" | "+" => Ok(String::new()),
        _ => Ok(value.unwrap_or_default()),
    }
}

/// Interpolate every string scalar under `v` (mapping keys are left alone).
pub(crate) fn interpolate_value(
    v: &mut Value,
    path: &KeyPath,
    lookup: &dyn Fn(&str) -> Option<String>,
    src: &Source,
) -> Result<()> {
    match v {
        Value::String(s) => {
            *s = substitute(s, lookup, true).map_err(|e| match e {
                InterpError::Invalid => src.invalid(
                    path,
                    format!(
                        "invalid interpolation format {s:?}; you may need to escape any $ with another $"
                    ),
                ),
                InterpError::Missing { variable, message } => ComposeError::MissingVariable {
                    file: src.display.clone(),
                    key: path.to_string(),
                    variable,
                    message,
                    line: src.line(path),
                },
            })?;
        }
        Value::Sequence(seq) => {
            for (i, item) in seq.iter_mut().enumerate() {
                interpolate_value(item, &path.idx(i), lookup, src)?;
            }
        }
        Value::Mapping(map) => {
            for (k, item) in map.iter_mut() {
                interpolate_value(item, &path.key(&key_string(k)), lookup, src)?;
            }
        }
        Value::Tagged(tagged) => interpolate_value(&mut tagged.value, path, lookup, src)?,
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

/// A mapping key as it appears in a key path.
pub(crate) fn key_string(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_string(),
        _ => "?".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn run(s: &str) -> Result<String, InterpError> {
        let env: BTreeMap<&str, &str> = [("SET", "value"), ("EMPTY", ""), ("B", "bee")].into();
        substitute(s, &|k| env.get(k).map(|v| v.to_string()), true)
    }

    #[test]
    fn plain_forms() {
        assert_eq!(run("$SET").unwrap(), "value");
        assert_eq!(run("${SET}").unwrap(), "value");
        assert_eq!(run("a${SET}b$SET-c").unwrap(), "avaluebvalue-c");
        assert_eq!(run("x$UNSET/y").unwrap(), "x/y");
        assert_eq!(run("${UNSET}").unwrap(), "");
        assert_eq!(run("$$SET $${SET}").unwrap(), "$SET ${SET}");
        assert_eq!(run("héllo ${SET} wörld").unwrap(), "héllo value wörld");
    }

    #[test]
    fn default_forms() {
        assert_eq!(run("${UNSET:-def}").unwrap(), "def");
        assert_eq!(run("${EMPTY:-def}").unwrap(), "def");
        assert_eq!(run("${SET:-def}").unwrap(), "value");
        assert_eq!(run("${UNSET-def}").unwrap(), "def");
        assert_eq!(run("${EMPTY-def}").unwrap(), "");
        assert_eq!(run("${UNSET:-${B}}").unwrap(), "bee");
        assert_eq!(run("${UNSET:-a ${UNSET2:-b}c}").unwrap(), "a bc");
    }

    #[test]
    fn alternative_forms() {
        assert_eq!(run("${SET:+alt}").unwrap(), "alt");
        assert_eq!(run("${EMPTY:+alt}").unwrap(), "");
        assert_eq!(run("${EMPTY+alt}").unwrap(), "alt");
        assert_eq!(run("${UNSET+alt}").unwrap(), "");
    }

    #[test]
    fn required_forms() {
        assert_eq!(run("${SET:?boom}").unwrap(), "value");
        assert_eq!(run("${EMPTY?boom}").unwrap(), "");
        assert_eq!(
            run("${EMPTY:?must be set}"),
            Err(InterpError::Missing {
                variable: "EMPTY".into(),
                message: "must be set".into()
            })
        );
        assert_eq!(
            run("${UNSET?}"),
            Err(InterpError::Missing {
                variable: "UNSET".into(),
                message: String::new()
            })
        );
        // An unused required default never fires.
        assert_eq!(run("${SET:-${UNSET:?x}}").unwrap(), "value");
    }

    #[test]
    fn invalid_forms() {
        for bad in [
            "${",
            "${}",
            "${1A}",
            "${A B}",
            "cost: $5",
            "trailing $",
            "${A:x}",
        ] {
            assert_eq!(run(bad), Err(InterpError::Invalid), "{bad}");
        }
        // Lenient mode (env files) keeps such dollars.
        assert_eq!(
            substitute("cost $5 ${", &|_| None, false).unwrap(),
            "cost $5 ${"
        );
    }
}
