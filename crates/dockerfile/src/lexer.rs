//! Variable expansion and word splitting, following the rules of Docker's
//! shell lexer (buildkit `frontend/dockerfile/shell`).
//!
//! This is *not* a shell: only quotes, the escape character and `$` references
//! are interpreted. Supported forms:
//!
//! | form                     | result                                                     |
//! |--------------------------|------------------------------------------------------------|
//! | `$VAR`, `${VAR}`         | value, or empty when unset                                 |
//! | `${VAR:-word}`           | `word` when VAR is unset or empty                          |
//! | `${VAR-word}`            | `word` when VAR is unset                                   |
//! | `${VAR:+word}`           | `word` when VAR is set and not empty, else empty           |
//! | `${VAR+word}`            | `word` when VAR is set, else empty                         |
//! | `${VAR:?msg}`            | error when VAR is unset or empty                           |
//! | `${VAR?msg}`             | error when VAR is unset                                    |
//! | `${VAR#pat}` `${VAR##pat}` | remove shortest / longest matching prefix                |
//! | `${VAR%pat}` `${VAR%%pat}` | remove shortest / longest matching suffix                |
//! | `${VAR/pat/rep}` `${VAR//pat/rep}` | replace first / every match                      |
//!
//! Single quotes keep everything literal; inside double quotes only `$`, the
//! escape character and `"` are special; outside quotes the escape character
//! makes the next character literal.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

/// The default escape character of a Dockerfile.
pub const DEFAULT_ESCAPE: char = '\\';

/// A source of variable values for expansion.
pub trait Env {
    /// The value of `name`, or `None` when the variable is not set.
    fn get(&self, name: &str) -> Option<&str>;
}

impl<S: BuildHasher> Env for HashMap<String, String, S> {
    fn get(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(String::as_str)
    }
}

impl Env for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(String::as_str)
    }
}

/// Ordered pairs; when a name appears twice the last one wins, like an
/// environment list.
impl<K: AsRef<str>, V: AsRef<str>> Env for [(K, V)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k.as_ref() == name)
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Env for Vec<(K, V)> {
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.as_slice(), name)
    }
}

impl<T: Env + ?Sized> Env for &T {
    fn get(&self, name: &str) -> Option<&str> {
        (**self).get(name)
    }
}

/// An environment with no variables set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmptyEnv;

impl Env for EmptyEnv {
    fn get(&self, _name: &str) -> Option<&str> {
        None
    }
}

/// Why a word could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandErrorKind {
    /// A quote or `${...}` body was not closed.
    #[error("unexpected end of statement while looking for matching {0}")]
    Unterminated(&'static str),
    /// `${` without a closing `}`.
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    /// `${VAR/pattern` without the second `/`.
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    /// `${}`, `${:...}` or `${{...`.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// A modifier this lexer (and Docker) does not know, e.g. `${VAR:=x}`.
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// `${VAR?msg}` / `${VAR:?msg}` on an unset (or empty) variable.
    #[error("{name}: {message}")]
    Required {
        /// The variable name.
        name: String,
        /// The message given after `?`, or Docker's default text.
        message: String,
    },
    /// A `#`, `%` or `/` pattern that cannot be compiled.
    #[error("invalid pattern ({0}) in substitution")]
    InvalidPattern(String),
}

/// A word failed to expand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {word:?}: {kind}")]
pub struct ExpandError {
    /// The word as given to the lexer.
    pub word: String,
    /// What went wrong.
    pub kind: ExpandErrorKind,
}

/// Expands variables in `word` and removes quotes, keeping whitespace
/// (Docker's `ProcessWord`).
pub fn expand<E: Env + ?Sized>(word: &str, env: &E, escape: char) -> Result<String, ExpandError> {
    Lexer::new(escape).process_word(word, env)
}

/// Expands variables in `line` and splits it into words on unquoted
/// whitespace, removing quotes (Docker's `ProcessWords`). Whitespace coming
/// from a variable's value splits words too; quoted whitespace does not.
pub fn expand_words<E: Env + ?Sized>(
    line: &str,
    env: &E,
    escape: char,
) -> Result<Vec<String>, ExpandError> {
    Lexer::new(escape).process_words(line, env)
}

/// A configurable lexer. [`expand`] and [`expand_words`] use the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_process_quotes: bool,
    skip_unset: bool,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer::new(DEFAULT_ESCAPE)
    }
}

impl Lexer {
    /// A lexer using `escape` (`\` or `` ` ``) as the escape character.
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset: false,
        }
    }

    /// Keep quote characters in the output (they still group words).
    pub fn raw_quotes(mut self, on: bool) -> Self {
        self.raw_quotes = on;
        self
    }

    /// Keep escape characters in the output.
    pub fn raw_escapes(mut self, on: bool) -> Self {
        self.raw_escapes = on;
        self
    }

    /// Treat quotes as ordinary characters (used for heredoc bodies).
    pub fn skip_process_quotes(mut self, on: bool) -> Self {
        self.skip_process_quotes = on;
        self
    }

    /// Leave references to unset variables as written instead of expanding
    /// them to the empty string.
    pub fn skip_unset(mut self, on: bool) -> Self {
        self.skip_unset = on;
        self
    }

    /// Expands a single word; see [`expand`].
    pub fn process_word<E: Env + ?Sized>(
        &self,
        word: &str,
        env: &E,
    ) -> Result<String, ExpandError> {
        self.run(word, env).map(|(result, _)| result)
    }

    /// Expands and splits into words; see [`expand_words`].
    pub fn process_words<E: Env + ?Sized>(
        &self,
        word: &str,
        env: &E,
    ) -> Result<Vec<String>, ExpandError> {
        self.run(word, env).map(|(_, words)| words)
    }

    fn run<E: Env + ?Sized>(
        &self,
        word: &str,
        env: &E,
    ) -> Result<(String, Vec<String>), ExpandError> {
        let mut scan = Scanner {
            lex: self,
            env,
            chars: word.chars().collect(),
            pos: 0,
            raw_escapes: self.raw_escapes,
        };
        scan.process_stop_on(None, self.raw_escapes)
            .map_err(|kind| ExpandError {
                word: word.to_string(),
                kind,
            })
    }
}

/// Collects the word list while the expanded string is built.
#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    /// A character subject to splitting: unquoted whitespace ends a word.
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.buf.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        for ch in s.chars() {
            self.add_char(ch);
        }
    }

    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(self.buf);
        }
        self.words
    }
}

struct Scanner<'a, E: ?Sized> {
    lex: &'a Lexer,
    env: &'a E,
    chars: Vec<char>,
    pos: usize,
    raw_escapes: bool,
}

type Step<T> = Result<T, ExpandErrorKind>;

impl<E: Env + ?Sized> Scanner<'_, E> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let ch = self.peek();
        if ch.is_some() {
            self.pos += 1;
        }
        ch
    }

    fn lookup(&self, name: &str) -> Option<String> {
        self.env.get(name).map(str::to_string)
    }

    /// Processes characters until `stop` (consumed) or the end of input.
    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Step<(String, Vec<String>)> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let out = self.process_stop_on_inner(stop);
        self.raw_escapes = saved;
        out
    }

    fn process_stop_on_inner(&mut self, stop: Option<char>) -> Step<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        let quotes = !self.lex.skip_process_quotes;

        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                    words.add_string(&value);
                }
                '<' => {
                    let text = self.process_possible_heredoc();
                    result.push_str(&text);
                    words.add_raw_string(&text);
                }
                '\'' if quotes => {
                    let text = self.process_single_quote()?;
                    result.push_str(&text);
                    words.add_raw_string(&text);
                }
                '"' if quotes => {
                    let text = self.process_double_quote()?;
                    result.push_str(&text);
                    words.add_raw_string(&text);
                }
                _ => {
                    self.next();
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        // The escape character at the very end is dropped.
                        let Some(escaped) = self.next() else { break };
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
        }
        match stop {
            Some('}') => Err(ExpandErrorKind::Unterminated("}")),
            Some('/') => Err(ExpandErrorKind::Unterminated("/")),
            Some(_) => Err(ExpandErrorKind::Unterminated("character")),
            None => Ok((result, words.finish())),
        }
    }

    fn process_single_quote(&mut self) -> Step<String> {
        let mut out = String::new();
        if let Some(q) = self.next() {
            if self.lex.raw_quotes {
                out.push(q);
            }
        }
        loop {
            match self.next() {
                None => return Err(ExpandErrorKind::Unterminated("single-quote")),
                Some('\'') => {
                    if self.lex.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(ch) => out.push(ch),
            }
        }
    }

    fn process_double_quote(&mut self) -> Step<String> {
        let mut out = String::new();
        if let Some(q) = self.next() {
            if self.lex.raw_quotes {
                out.push(q);
            }
        }
        loop {
            match self.peek() {
                None => return Err(ExpandErrorKind::Unterminated("double-quote")),
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let value = self.process_dollar()?;
                    out.push_str(&value);
                }
                Some(_) => {
                    let Some(mut ch) = self.next() else { continue };
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            out.push(ch);
                        }
                        match self.peek() {
                            // Dropped; the loop then reports the missing quote.
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lex.escape => {
                                self.next();
                                ch = c;
                            }
                            // Any other escape stays literal.
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    fn process_possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".to_string();
        }
        self.next();
        // `<< EOF` stays one word.
        let mut out = String::from("<<");
        while let Some(ch @ (' ' | '\t' | '\r')) = self.peek() {
            out.push(ch);
            self.next();
        }
        out
    }

    fn process_dollar(&mut self) -> Step<String> {
        self.next(); // '$'

        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.lookup(&name) {
                Some(value) => value,
                None if self.lex.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }

        self.next(); // '{'
        match self.peek() {
            None => return Err(ExpandErrorKind::MissingBrace),
            Some('{' | '}' | ':') => return Err(ExpandErrorKind::BadSubstitution),
            Some(_) => {}
        }
        let name = self.process_name();
        let Some(ch) = self.next() else {
            return Err(ExpandErrorKind::MissingBrace);
        };
        match ch {
            '}' => Ok(match self.lookup(&name) {
                Some(value) => value,
                None if self.lex.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => self.process_modifier(name, ch),
            '/' => self.process_replace(name),
            other => Err(ExpandErrorKind::UnsupportedModifier(other.to_string())),
        }
    }

    /// `${name<op>word}` after `<op>`'s first character was read.
    fn process_modifier(&mut self, name: String, first: char) -> Step<String> {
        let mut op = first;
        let mut modifier = first.to_string();
        let null_is_unset = first == ':';
        if null_is_unset {
            let Some(next) = self.next() else {
                return Err(ExpandErrorKind::MissingBrace);
            };
            op = next;
            modifier.push(next);
            if !matches!(op, '+' | '-' | '?') {
                return Err(ExpandErrorKind::UnsupportedModifier(modifier));
            }
        }
        let pattern_op = op == '#' || op == '%';
        let word = match self.process_stop_on(Some('}'), pattern_op) {
            Ok((word, _)) => word,
            Err(_) if self.peek().is_none() => return Err(ExpandErrorKind::MissingBrace),
            Err(e) => return Err(e),
        };

        let value = self.lookup(&name);
        if value.is_none() && self.lex.skip_unset {
            return Ok(format!("${{{name}{modifier}{word}}}"));
        }
        let empty = value.as_deref().is_none_or(str::is_empty);
        let unset = if null_is_unset {
            empty
        } else {
            value.is_none()
        };
        match op {
            '-' => Ok(if unset {
                word
            } else {
                value.unwrap_or_default()
            }),
            '+' => Ok(if unset { String::new() } else { word }),
            '?' => {
                if unset {
                    let message = if !word.is_empty() {
                        word
                    } else if value.is_none() {
                        "is not allowed to be unset".to_string()
                    } else {
                        "is not allowed to be empty".to_string()
                    };
                    Err(ExpandErrorKind::Required { name, message })
                } else {
                    Ok(value.unwrap_or_default())
                }
            }
            _ => {
                // '#' or '%': a doubled operator asks for the longest match.
                let (greedy, pattern) = match word.strip_prefix(op) {
                    Some(rest) => (true, rest.to_string()),
                    None => (false, word),
                };
                let toks = compile_shell_pattern(&pattern)
                    .ok_or_else(|| ExpandErrorKind::InvalidPattern(pattern.clone()))?;
                let value: Vec<char> = value.unwrap_or_default().chars().collect();
                Ok(if op == '#' {
                    trim_prefix(&toks, &value, greedy)
                } else {
                    trim_suffix(&toks, &value, greedy)
                })
            }
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}`.
    fn process_replace(&mut self, name: String) -> Step<String> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let pattern = match self.process_stop_on(Some('/'), true) {
            Ok((p, _)) => p,
            Err(_) if self.peek().is_none() => return Err(ExpandErrorKind::MissingSlash),
            Err(e) => return Err(e),
        };
        let replacement = match self.process_stop_on(Some('}'), true) {
            Ok((r, _)) => r,
            Err(_) if self.peek().is_none() => return Err(ExpandErrorKind::MissingBrace),
            Err(e) => return Err(e),
        };
        let Some(value) = self.lookup(&name) else {
            if self.lex.skip_unset {
                let slash = if all { "//" } else { "/" };
                return Ok(format!("${{{name}{slash}{pattern}/{replacement}}}"));
            }
            return Ok(String::new());
        };
        let toks = compile_shell_pattern(&pattern)
            .ok_or_else(|| ExpandErrorKind::InvalidPattern(pattern.clone()))?;
        Ok(replace_matches(&toks, &value, &replacement, all))
    }

    /// A variable name: letters, digits and `_`; or a run of digits
    /// (positional parameter); or one special parameter character.
    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }
}

/// One element of a `${VAR#pattern}` style shell pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShellTok {
    Lit(char),
    /// `?`: any single character.
    Any,
    /// `*`: any run of characters.
    Star,
}

/// Compiles a substitution pattern; `None` when an escape is invalid.
/// `\` escapes `*`, `?` and `\`; before `}` or `/` it is just dropped.
fn compile_shell_pattern(pattern: &str) -> Option<Vec<ShellTok>> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => toks.push(ShellTok::Star),
            '?' => toks.push(ShellTok::Any),
            '\\' => match chars.get(i + 1) {
                Some('}' | '/') => {}
                Some(&c @ ('*' | '?' | '\\')) => {
                    toks.push(ShellTok::Lit(c));
                    i += 1;
                }
                _ => return None,
            },
            c => toks.push(ShellTok::Lit(c)),
        }
        i += 1;
    }
    Some(toks)
}

/// Whether `toks` matches all of `s`.
fn shell_match(toks: &[ShellTok], s: &[char]) -> bool {
    // dp[j]: toks[i..] matches s[j..]; computed from the last token back.
    let mut dp = vec![false; s.len() + 1];
    dp[s.len()] = true;
    for tok in toks.iter().rev() {
        let mut next = vec![false; s.len() + 1];
        for j in (0..=s.len()).rev() {
            next[j] = match tok {
                ShellTok::Lit(c) => j < s.len() && s[j] == *c && dp[j + 1],
                ShellTok::Any => j < s.len() && dp[j + 1],
                ShellTok::Star => dp[j] || (j < s.len() && next[j + 1]),
            };
        }
        dp = next;
    }
    dp[0]
}

fn trim_prefix(toks: &[ShellTok], value: &[char], greedy: bool) -> String {
    let mut ends: Box<dyn Iterator<Item = usize>> = if greedy {
        Box::new((0..=value.len()).rev())
    } else {
        Box::new(0..=value.len())
    };
    match ends.find(|&end| shell_match(toks, &value[..end])) {
        Some(end) => value[end..].iter().collect(),
        None => value.iter().collect(),
    }
}

fn trim_suffix(toks: &[ShellTok], value: &[char], greedy: bool) -> String {
    let mut starts: Box<dyn Iterator<Item = usize>> = if greedy {
        Box::new(0..=value.len())
    } else {
        Box::new((0..=value.len()).rev())
    };
    match starts.find(|&start| shell_match(toks, &value[start..])) {
        Some(start) => value[..start].iter().collect(),
        None => value.iter().collect(),
    }
}

/// Replaces the leftmost-longest match (or every non-overlapping one).
fn replace_matches(toks: &[ShellTok], value: &str, replacement: &str, all: bool) -> String {
    let chars: Vec<char> = value.chars().collect();
    let mut out = String::new();
    let mut start = 0;
    let mut last_end = None;
    while start <= chars.len() {
        if last_end.is_some() && !all {
            break;
        }
        let found = (start..=chars.len())
            .rev()
            .find(|&end| shell_match(toks, &chars[start..end]))
            // An empty match right after the previous match does not count.
            .filter(|&end| end > start || last_end != Some(start));
        match found {
            Some(end) => {
                out.push_str(replacement);
                last_end = Some(end);
                if end == start {
                    // Empty match: keep one character and move on.
                    if let Some(c) = chars.get(start) {
                        out.push(*c);
                    }
                    start += 1;
                } else {
                    start = end;
                }
            }
            None => {
                if let Some(c) = chars.get(start) {
                    out.push(*c);
                }
                start += 1;
            }
        }
    }
    if start < chars.len() {
        out.extend(&chars[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(&'static str, &'static str)> {
        vec![
            ("PWD", "/home"),
            ("SHELL", "bash"),
            ("NULL", ""),
            ("KOREAN", "한국어"),
            ("str", "foobarbaz"),
        ]
    }

    fn ok(word: &str) -> String {
        match expand(word, &env(), '\\') {
            Ok(s) => s,
            Err(e) => panic!("{word}: {e}"),
        }
    }

    fn err(word: &str) -> ExpandErrorKind {
        match expand(word, &env(), '\\') {
            Ok(s) => panic!("{word}: expected an error, got {s:?}"),
            Err(e) => e.kind,
        }
    }

    #[test]
    fn plain_and_quoted_words() {
        assert_eq!(ok("hello"), "hello");
        assert_eq!(ok("he'll'o"), "hello");
        assert_eq!(ok(r"he\'llo"), "he'llo");
        assert_eq!(ok(r"abc\tdef"), "abctdef");
        assert_eq!(ok(r#""abc\tdef""#), r"abc\tdef");
        assert_eq!(ok(r#""abc\\tdef""#), r"abc\tdef");
        assert_eq!(ok(r"'abc\tdef'"), r"abc\tdef");
        assert_eq!(ok(r"hello\"), "hello");
        assert_eq!(ok(r"hello\\"), r"hello\");
        assert_eq!(ok(r#""hel'lo""#), "hel'lo");
        assert_eq!(ok(r"'hello\'"), r"hello\");
        assert_eq!(ok(r#""''""#), "''");
        assert_eq!(ok(r#"'"hello"'"#), r#""hello""#);
        assert_eq!(ok("안'녕'하세요"), "안녕하세요");
    }

    #[test]
    fn unterminated_quotes_fail() {
        assert_eq!(err("he'llo"), ExpandErrorKind::Unterminated("single-quote"));
        assert_eq!(
            err(r"he\\'llo"),
            ExpandErrorKind::Unterminated("single-quote")
        );
        assert_eq!(
            err(r#""hello"#),
            ExpandErrorKind::Unterminated("double-quote")
        );
        assert_eq!(
            err(r#""hello\""#),
            ExpandErrorKind::Unterminated("double-quote")
        );
    }

    #[test]
    fn dollar_forms() {
        assert_eq!(ok("$."), "$.");
        assert_eq!(ok("he$1x"), "hex");
        assert_eq!(ok("he$.x"), "he$.x");
        assert_eq!(ok("he$pwd."), "he.");
        assert_eq!(ok("he$PWD"), "he/home");
        assert_eq!(ok(r"he\$PWD"), "he$PWD");
        assert_eq!(ok(r"he\\$PWD"), r"he\/home");
        assert_eq!(ok(r#""he\$PWD""#), "he$PWD");
        assert_eq!(ok(r#""he\\$PWD""#), r"he\/home");
        assert_eq!(ok(r"\${}"), "${}");
        assert_eq!(ok(r"he\${}xx"), "he${}xx");
        assert_eq!(ok("he${hi}xx"), "hexx");
        assert_eq!(ok("he${PWD}"), "he/home");
        assert_eq!(ok("'he${XX}'"), "he${XX}");
        assert_eq!(ok(r#""he'$PWD'""#), "he'/home'");
        assert_eq!(ok("'$PWD'"), "$PWD");
        assert_eq!(ok(r"'\$PWD'"), r"\$PWD");
        assert_eq!(ok("안녕$KOREAN"), "안녕한국어");
        assert_eq!(ok("${aaa}}"), "}");
    }

    #[test]
    fn bad_substitutions() {
        assert_eq!(err("${}"), ExpandErrorKind::BadSubstitution);
        assert_eq!(err("he${}xx"), ExpandErrorKind::BadSubstitution);
        assert_eq!(err("${{aaa}"), ExpandErrorKind::BadSubstitution);
        assert_eq!(err("${:}"), ExpandErrorKind::BadSubstitution);
        assert_eq!(err("${:-bbb}"), ExpandErrorKind::BadSubstitution);
        assert_eq!(
            err("he${.}"),
            ExpandErrorKind::UnsupportedModifier(".".into())
        );
        assert_eq!(
            err("he${XXX:YYY}"),
            ExpandErrorKind::UnsupportedModifier(":Y".into())
        );
        assert_eq!(
            err("he${PWD:=000}xx"),
            ExpandErrorKind::UnsupportedModifier(":=".into())
        );
        assert_eq!(err("he${PWD"), ExpandErrorKind::MissingBrace);
        assert_eq!(err("${aaa:-bbb"), ExpandErrorKind::MissingBrace);
        assert_eq!(err("${aaa:-bbb ${foo}"), ExpandErrorKind::MissingBrace);
        assert_eq!(err("${"), ExpandErrorKind::MissingBrace);
    }

    #[test]
    fn default_and_alternative_values() {
        assert_eq!(ok("he${XXX:-000}xx"), "he000xx");
        assert_eq!(ok("he${PWD:-000}xx"), "he/homexx");
        assert_eq!(ok("he${XXX:-$PWD}xx"), "he/homexx");
        assert_eq!(ok("he${XXX:-${PWD:-yyy}}xx"), "he/homexx");
        assert_eq!(ok("he${XXX:-${YYY:-yyy}}xx"), "heyyyxx");
        assert_eq!(ok("he${XXX:+${PWD}}xx"), "hexx");
        assert_eq!(ok("he${PWD:+${XXX}}xx"), "hexx");
        assert_eq!(ok("he${PWD:+${SHELL}}xx"), "hebashxx");
        assert_eq!(ok("he${XXX:+000}xx"), "hexx");
        assert_eq!(ok("he${PWD:+000}xx"), "he000xx");
        assert_eq!(ok("he${PWD:+${PWD}:}xx"), "he/home:xx");
        assert_eq!(ok(r"he${XXX:-\$PWD:}xx"), "he$PWD:xx");
        assert_eq!(ok(r"he${XXX:-\${PWD}z}xx"), "he${PWDz}xx");
        assert_eq!(ok("${aaa:-bbb}}"), "bbb}");
        assert_eq!(ok("${aaa:-bbb {foo}"), "bbb {foo");
        assert_eq!(ok(r#"${aaa:-"x  y"}"#), "x  y");
        // Without the colon only "unset" counts, not "empty".
        assert_eq!(ok("${NULL-default}"), "");
        assert_eq!(ok("${NULL:-default}"), "default");
        assert_eq!(ok("${NULL+alt}"), "alt");
        assert_eq!(ok("${NULL:+alt}"), "");
        assert_eq!(ok("${UNSET-default}"), "default");
        assert_eq!(ok("${UNSET+alt}"), "");
    }

    #[test]
    fn required_values() {
        assert_eq!(ok("he${PWD?}"), "he/home");
        assert_eq!(ok("he${PWD:?}"), "he/home");
        assert_eq!(ok("he${NULL?}"), "he");
        assert_eq!(
            err("he${XXX?}"),
            ExpandErrorKind::Required {
                name: "XXX".into(),
                message: "is not allowed to be unset".into()
            }
        );
        assert_eq!(
            err("he${NULL:?}"),
            ExpandErrorKind::Required {
                name: "NULL".into(),
                message: "is not allowed to be empty".into()
            }
        );
        let e = expand("${VERSION:?set a version}", &env(), '\\').unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"failed to process "${VERSION:?set a version}": VERSION: set a version"#
        );
    }

    #[test]
    fn positional_and_special_parameters_are_unset() {
        for w in [
            "$1", "${1}", "$999", "${001}", "$@", "${*}", "$#", "$?", "$-", "$$", "$!", "$0",
        ] {
            assert_eq!(ok(w), "", "{w}");
        }
        assert_eq!(ok("${1:-bbb}"), "bbb");
        assert_eq!(ok("$999aaa"), "aaa");
        assert_eq!(ok("${001:-bbb}aaa"), "bbbaaa");
        assert_eq!(ok("$@@@"), "@@");
        assert_eq!(ok("${#:-bbb}"), "bbb");
        assert_eq!(ok("${$:+bbb}"), "");
    }

    #[test]
    fn pattern_removal_and_replacement_from_reference() {
        assert_eq!(ok("${str#f*b}"), "arbaz");
        assert_eq!(ok("${str##f*b}"), "az");
        assert_eq!(ok("${str%b*}"), "foobar");
        assert_eq!(ok("${str%%b*}"), "foo");
        assert_eq!(ok("${str/ba/fo}"), "fooforbaz");
        assert_eq!(ok("${str//ba/fo}"), "fooforfoz");
        assert_eq!(ok("${str#xyz}"), "foobarbaz");
        assert_eq!(ok("${str%?}"), "foobarba");
        assert_eq!(ok(r"${str/\*/x}"), "foobarbaz");
        assert_eq!(ok("${UNSET#x}"), "");
        assert_eq!(ok("${UNSET/x/y}"), "");
        assert_eq!(
            err("${str:#x}"),
            ExpandErrorKind::UnsupportedModifier(":#".into())
        );
        assert_eq!(
            err(r"${str#\q}"),
            ExpandErrorKind::InvalidPattern(r"\q".into())
        );
        assert_eq!(err("${str/ba"), ExpandErrorKind::MissingSlash);
    }

    #[test]
    fn backtick_escape() {
        assert_eq!(expand("c:\\", &EmptyEnv, '`').unwrap(), "c:\\");
        assert_eq!(expand("a`$b", &EmptyEnv, '`').unwrap(), "a$b");
        assert_eq!(expand("`\"x`\"", &EmptyEnv, '`').unwrap(), "\"x\"");
        assert_eq!(expand("\"a`\"b\"", &EmptyEnv, '`').unwrap(), "a\"b");
    }

    fn words(line: &str, env: &[(&str, &str)]) -> Vec<String> {
        match expand_words(line, env, '\\') {
            Ok(w) => w,
            Err(e) => panic!("{line}: {e}"),
        }
    }

    #[test]
    fn word_splitting() {
        let env = [
            ("hi", "hi"),
            ("space", "abc  def"),
            ("leading", "  ab c"),
            ("trailing", "ab c   "),
        ];
        assert_eq!(words("hello", &env), ["hello"]);
        assert_eq!(words("hello${hi}bye", &env), ["hellohibye"]);
        assert_eq!(words("hello${space}bye", &env), ["helloabc", "defbye"]);
        assert_eq!(words(r#"hello"${space}"bye"#, &env), ["helloabc  defbye"]);
        assert_eq!(
            words(r#"hello "${space}"bye"#, &env),
            ["hello", "abc  defbye"]
        );
        assert_eq!(words("hello${leading}def", &env), ["hello", "ab", "cdef"]);
        assert_eq!(
            words(r#"hello"${leading}" def"#, &env),
            ["hello  ab c", "def"]
        );
        assert_eq!(words("hello${trailing}d", &env), ["helloab", "c", "d"]);
        assert_eq!(words(r#"hel"lo${trailing}""#, &env), ["helloab c   "]);
        assert_eq!(words(r#"hello" there  ""#, &env), ["hello there  "]);
        assert_eq!(words("hello there     ", &env), ["hello", "there"]);
        assert_eq!(words(r"hello\ there", &env), ["hello there"]);
        assert_eq!(words(r#"hello\" there"#, &env), ["hello\"", "there"]);
        assert_eq!(words(r#"hello"\\there""#, &env), [r"hello\there"]);
        assert_eq!(words(r"hello'\\there'", &env), [r"hello\\there"]);
        assert_eq!(words("hello'$there'", &env), ["hello$there"]);
        assert_eq!(words(r#"a "" b"#, &env), ["a", "b"]);
        assert!(expand_words(r#"hello" there"#, &env[..], '\\').is_err());
    }

    #[test]
    fn process_word_keeps_whitespace() {
        let env = [("space", "abc  def")];
        assert_eq!(
            expand("  a   $space ", &env[..], '\\').unwrap(),
            "  a   abc  def "
        );
    }

    #[test]
    fn skip_unset_keeps_references() {
        let lex = Lexer::new('\\').skip_unset(true);
        let env = [("A", "1")];
        assert_eq!(
            lex.process_word("$A $B ${C} ${D:-x}", &env[..]).unwrap(),
            "1 $B ${C} ${D:-x}"
        );
    }

    #[test]
    fn skip_process_quotes_for_heredoc_bodies() {
        let lex = Lexer::new('\\').skip_process_quotes(true);
        let env = [("FOO", "bar")];
        assert_eq!(
            lex.process_word("echo \"hello ${FOO}\" 'x'\n", &env[..])
                .unwrap(),
            "echo \"hello bar\" 'x'\n"
        );
    }

    #[test]
    fn env_implementations() {
        let mut map = HashMap::new();
        map.insert("A".to_string(), "1".to_string());
        assert_eq!(expand("$A", &map, '\\').unwrap(), "1");
        let mut tree = BTreeMap::new();
        tree.insert("A".to_string(), "2".to_string());
        assert_eq!(expand("$A", &tree, '\\').unwrap(), "2");
        let pairs = vec![
            ("A".to_string(), "3".to_string()),
            ("A".to_string(), "4".to_string()),
        ];
        assert_eq!(expand("$A", &pairs, '\\').unwrap(), "4");
        assert_eq!(expand("[$A]", &EmptyEnv, '\\').unwrap(), "[]");
    }
}
