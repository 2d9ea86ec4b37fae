//! Best-effort line numbers for key paths.
//!
//! serde_norway's `Value` keeps no positions, so errors found after parsing
//! walk the source text by indentation instead. This understands block-style
//! YAML (what compose files are written in); for flow style, anchors or keys
//! it cannot match it returns the line of the deepest key it did find, or
//! None — a line number is a hint, never required.

use crate::error::{KeyPath, Seg};

#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    /// 1-based.
    no: usize,
    indent: usize,
    text: &'a str,
}

/// The meaningful lines: no blanks, comments or document markers.
fn logical_lines(src: &str) -> Vec<Line<'_>> {
    src.lines()
        .enumerate()
        .filter_map(|(i, raw)| {
            let text = raw.trim_start();
            let trimmed = text.trim_end();
            if trimmed.is_empty()
                || trimmed.starts_with('#')
                || trimmed == "---"
                || trimmed.starts_with('%')
            {
                return None;
            }
            Some(Line {
                no: i + 1,
                indent: raw.len() - text.len(),
                text: trimmed,
            })
        })
        .collect()
}

fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// Does `text` start with the mapping key `key` (plain or quoted)?
fn key_matches(text: &str, key: &str) -> bool {
    let rest = if let Some(r) = text.strip_prefix(key) {
        r
    } else if let Some(r) = text
        .strip_prefix('"')
        .and_then(|t| t.strip_prefix(key))
        .and_then(|t| t.strip_prefix('"'))
    {
        r
    } else if let Some(r) = text
        .strip_prefix('\'')
        .and_then(|t| t.strip_prefix(key))
        .and_then(|t| t.strip_prefix('\''))
    {
        r
    } else {
        return false;
    };
    let rest = rest.trim_start();
    rest == ":" || rest.starts_with(": ")
}

/// The children of the node on `scope[at]`: the following lines indented
/// deeper (and, for a key, a block sequence at the key's own indent, which
/// YAML allows).
fn children<'a>(scope: &[Line<'a>], at: usize, key: bool) -> Vec<Line<'a>> {
    let head = scope[at];
    scope[at + 1..]
        .iter()
        .take_while(|l| {
            l.indent > head.indent || (key && l.indent == head.indent && is_item(l.text))
        })
        .copied()
        .collect()
}

pub(crate) fn find_line(src: &str, path: &KeyPath) -> Option<usize> {
    let mut scope = logical_lines(src);
    let mut best = None;
    for seg in &path.0 {
        let Some(indent) = scope.first().map(|l| l.indent) else {
            return best;
        };
        match seg {
            Seg::Key(k) => {
                let Some(at) = scope
                    .iter()
                    .position(|l| l.indent == indent && key_matches(l.text, k))
                else {
                    return best;
                };
                best = Some(scope[at].no);
                scope = children(&scope, at, true);
            }
            Seg::Index(n) => {
                let Some(at) = scope
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.indent == indent && is_item(l.text))
                    .map(|(i, _)| i)
                    .nth(*n)
                else {
                    return best;
                };
                let head = scope[at];
                best = Some(head.no);
                let mut next = Vec::new();
                // "- key: value": the item's first line holds content at indent + 2.
                let inner = head.text[1..].trim_start();
                if !inner.is_empty() {
                    next.push(Line {
                        no: head.no,
                        indent: head.indent + (head.text.len() - inner.len()),
                        text: inner,
                    });
                }
                next.extend(children(&scope, at, false));
                scope = next;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(segs: &[Seg]) -> KeyPath {
        KeyPath(segs.to_vec())
    }

    fn k(s: &str) -> Seg {
        Seg::Key(s.into())
    }

    #[test]
    fn finds_nested_keys_and_items() {
        let src = "\
# comment
services:
  web:
    image: nginx
    ports:
      - \"8080:80\"
      - abc
  db:
    environment:
    - A=1
    volumes:
      - type: bind
        source: ./x
";
        assert_eq!(find_line(src, &path(&[k("services")])), Some(2));
        assert_eq!(
            find_line(src, &path(&[k("services"), k("web"), k("image")])),
            Some(4)
        );
        assert_eq!(
            find_line(
                src,
                &path(&[k("services"), k("web"), k("ports"), Seg::Index(1)])
            ),
            Some(7)
        );
        assert_eq!(
            find_line(
                src,
                &path(&[k("services"), k("db"), k("environment"), Seg::Index(0)])
            ),
            Some(10)
        );
        assert_eq!(
            find_line(
                src,
                &path(&[
                    k("services"),
                    k("db"),
                    k("volumes"),
                    Seg::Index(0),
                    k("source")
                ])
            ),
            Some(13)
        );
        // Missing leaf: the deepest key found.
        assert_eq!(
            find_line(src, &path(&[k("services"), k("web"), k("nope")])),
            Some(3)
        );
    }
}
