//! `.dockerignore` matching with Docker's rules (moby/patternmatcher and
//! `ignorefile`).
//!
//! - a line starting with `#` in column 1 is a comment; blank lines are skipped;
//! - patterns are trimmed, cleaned like Go's `filepath.Clean`, and a leading
//!   `/` is dropped (the context root is both `/` and `.`);
//! - `*` matches any run of non-`/` characters, `?` one non-`/` character,
//!   `[...]` a character class (`^` negates), `\` escapes the next character;
//! - `**` matches any number of directories, including none;
//! - a pattern also matches everything below a directory it matches;
//! - `!pattern` re-includes; the last matching line decides.

/// A pattern could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid .dockerignore pattern on line {line}: {pattern:?}: {reason}")]
pub struct IgnoreError {
    /// 1-based line (or position in the list given to
    /// [`IgnoreMatcher::from_patterns`]).
    pub line: usize,
    /// The pattern after cleaning.
    pub pattern: String,
    /// Why it was rejected.
    pub reason: String,
}

/// Compiled `.dockerignore` patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreMatcher {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    /// Cleaned text without the leading `!`.
    text: String,
    exclusion: bool,
    kind: MatchKind,
}

/// Docker's match strategies; `Exact`, `Prefix` and `Suffix` are shortcuts
/// it takes for patterns without wildcards (with slightly looser semantics
/// for `**name`, kept for compatibility).
#[derive(Debug, Clone, PartialEq, Eq)]
enum MatchKind {
    Exact,
    Prefix(String),
    Suffix(String),
    Glob(Vec<Tok>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `?`
    AnyChar,
    /// `*`
    Star,
    /// `**` at the end: anything.
    AnyAll,
    /// `**` (or `**/`) elsewhere: zero or more leading directories.
    AnyDirs,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// Reads `.dockerignore` text into cleaned patterns (`!` kept), with their
/// 1-based line numbers.
pub fn read_patterns(text: &str) -> Vec<(usize, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = clean_path(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        if invert {
            cleaned.insert(0, '!');
        }
        out.push((i + 1, cleaned));
    }
    out
}

impl IgnoreMatcher {
    /// Parses the contents of a `.dockerignore` file.
    pub fn new(text: &str) -> Result<IgnoreMatcher, IgnoreError> {
        Self::build(read_patterns(text))
    }

    /// Uses already-read patterns (each may start with `!`).
    pub fn from_patterns<I, S>(patterns: I) -> Result<IgnoreMatcher, IgnoreError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::build(
            patterns
                .into_iter()
                .enumerate()
                .map(|(i, p)| (i + 1, p.as_ref().to_string())),
        )
    }

    fn build(
        patterns: impl IntoIterator<Item = (usize, String)>,
    ) -> Result<IgnoreMatcher, IgnoreError> {
        let mut out = Vec::new();
        for (line, raw) in patterns {
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                continue;
            }
            let cleaned = clean_path(trimmed);
            let error = |reason: &str| IgnoreError {
                line,
                pattern: cleaned.clone(),
                reason: reason.to_string(),
            };
            let (exclusion, text) = match cleaned.strip_prefix('!') {
                Some("") => return Err(error("illegal exclusion pattern: \"!\"")),
                Some(rest) => (true, rest.to_string()),
                None => (false, cleaned.clone()),
            };
            let kind = compile(&text).ok_or_else(|| error("syntax error in pattern"))?;
            out.push(Pattern {
                text,
                exclusion,
                kind,
            });
        }
        Ok(IgnoreMatcher { patterns: out })
    }

    /// The patterns in order, `!` restored on exceptions.
    pub fn patterns(&self) -> Vec<String> {
        self.patterns
            .iter()
            .map(|p| {
                if p.exclusion {
                    format!("!{}", p.text)
                } else {
                    p.text.clone()
                }
            })
            .collect()
    }

    /// Whether any `!` exception pattern exists.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether `rel_path` (relative to the context root, `/`-separated) is
    /// left out of the build context. A path is excluded when the last pattern
    /// matching it or one of its parent directories is not an exception. The
    /// context root itself is never excluded.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        let file = clean_path(rel_path);
        let file = file.trim_start_matches('/');
        if file.is_empty() || file == "." {
            return false;
        }
        let parents: Vec<&str> = match file.rfind('/') {
            Some(at) => file[..at].split('/').collect(),
            None => Vec::new(),
        };

        let mut excluded = false;
        for pattern in &self.patterns {
            // An inclusion cannot change an excluded path and an exception
            // cannot change an included one.
            if pattern.exclusion != excluded {
                continue;
            }
            let matched = pattern.matches(file)
                || (1..=parents.len()).any(|n| pattern.matches(&parents[..n].join("/")));
            if matched {
                excluded = !pattern.exclusion;
            }
        }
        excluded
    }

    /// Whether a walker may skip directory `rel_dir` without looking inside:
    /// it is excluded and no exception pattern could re-include anything
    /// below it. Conservative: `false` whenever unsure.
    pub fn can_skip_dir(&self, rel_dir: &str) -> bool {
        if !self.is_excluded(rel_dir) {
            return false;
        }
        let dir = clean_path(rel_dir);
        let dir: Vec<&str> = dir.trim_start_matches('/').split('/').collect();
        !self
            .patterns
            .iter()
            .any(|p| p.exclusion && p.may_match_below(&dir))
    }
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            MatchKind::Exact => path == self.text,
            MatchKind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            MatchKind::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|s| path == s)
            }
            MatchKind::Glob(toks) => glob_match(toks, &path.chars().collect::<Vec<_>>()),
        }
    }

    /// Could this pattern match some path strictly below `dir`?
    fn may_match_below(&self, dir: &[&str]) -> bool {
        let text = &self.text;
        // `**`, classes (which may match `/`) and escapes: assume yes.
        if text.contains("**") || text.contains('[') || text.contains('\\') {
            return true;
        }
        let segments: Vec<&str> = text.split('/').collect();
        if segments.len() <= dir.len() {
            return false;
        }
        segments.iter().zip(dir).all(|(seg, comp)| {
            compile_tokens(seg)
                .is_some_and(|(toks, _)| glob_match(&toks, &comp.chars().collect::<Vec<_>>()))
        })
    }
}

/// Compiles a cleaned pattern (no `!`), or `None` on a syntax error.
fn compile(pattern: &str) -> Option<MatchKind> {
    let (toks, detected) = compile_tokens(pattern)?;
    Some(match detected {
        Detected::Exact => MatchKind::Exact,
        Detected::Prefix => MatchKind::Prefix(pattern[..pattern.len() - 2].to_string()),
        Detected::Suffix => MatchKind::Suffix(pattern[2..].to_string()),
        Detected::Glob => MatchKind::Glob(toks),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detected {
    Exact,
    Prefix,
    Suffix,
    Glob,
}

fn compile_tokens(pattern: &str) -> Option<(Vec<Tok>, Detected)> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut detected = Detected::Exact;
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        let ch = chars[i];
        i += 1;
        match ch {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    // Trailing `**`: anything. Docker matches a plain
                    // `literal**` by prefix.
                    toks.push(Tok::AnyAll);
                    detected = if detected == Detected::Exact {
                        Detected::Prefix
                    } else {
                        Detected::Glob
                    };
                } else {
                    toks.push(Tok::AnyDirs);
                    detected = Detected::Glob;
                }
                // A leading `**` turns Docker's shortcut into a suffix match;
                // any later wildcard switches back to a full glob.
                if start == 0 {
                    detected = Detected::Suffix;
                }
            }
            '*' => {
                toks.push(Tok::Star);
                detected = Detected::Glob;
            }
            '?' => {
                toks.push(Tok::AnyChar);
                detected = Detected::Glob;
            }
            '\\' => {
                // A trailing backslash is a syntax error (as in filepath.Match).
                let &next = chars.get(i)?;
                i += 1;
                toks.push(Tok::Lit(next));
                detected = Detected::Glob;
            }
            '[' => {
                let (tok, next) = parse_class(&chars, i)?;
                toks.push(tok);
                i = next;
                detected = Detected::Glob;
            }
            c => toks.push(Tok::Lit(c)),
        }
    }
    Some((toks, detected))
}

/// Parses a class body starting after `[`; returns the token and the index
/// after `]`. Follows `filepath.Match`: non-empty, `^` negates, `a-z`
/// ranges, `\` escapes, and `-` or `]` must be escaped where ambiguous.
fn parse_class(chars: &[char], mut i: usize) -> Option<(Tok, usize)> {
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if chars.get(i) == Some(&']') && !ranges.is_empty() {
            return Some((Tok::Class { negated, ranges }, i + 1));
        }
        let (lo, next) = class_char(chars, i)?;
        i = next;
        let mut hi = lo;
        if chars.get(i) == Some(&'-') {
            let (h, next) = class_char(chars, i + 1)?;
            if h < lo {
                return None;
            }
            hi = h;
            i = next;
        }
        ranges.push((lo, hi));
    }
}

fn class_char(chars: &[char], i: usize) -> Option<(char, usize)> {
    match chars.get(i)? {
        '-' | ']' => None,
        '\\' => chars.get(i + 1).map(|&c| (c, i + 2)),
        &c => Some((c, i + 1)),
    }
}

/// Whether `toks` matches all of `s`.
fn glob_match(toks: &[Tok], s: &[char]) -> bool {
    // dp[j]: the remaining tokens match s[j..]; filled from the last token.
    let n = s.len();
    let mut dp = vec![false; n + 1];
    dp[n] = true;
    for tok in toks.iter().rev() {
        let mut cur = vec![false; n + 1];
        for j in (0..=n).rev() {
            let c = s.get(j).copied();
            cur[j] = match tok {
                Tok::Lit(l) => c == Some(*l) && dp[j + 1],
                Tok::AnyChar => c.is_some_and(|c| c != '/') && dp[j + 1],
                Tok::Star => dp[j] || (c.is_some_and(|c| c != '/') && cur[j + 1]),
                Tok::AnyAll => dp[j] || (c.is_some() && cur[j + 1]),
                // `(.*/)?`: nothing, or anything up to and including a '/'.
                Tok::AnyDirs => dp[j] || (j..n).any(|k| s[k] == '/' && dp[k + 1]),
                Tok::Class { negated, ranges } => {
                    c.is_some_and(|c| ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated)
                        && dp[j + 1]
                }
            };
        }
        dp = cur;
    }
    dp[0]
}

/// Go's `filepath.Clean` for `/`-separated paths.
pub fn clean_path(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(text: &str) -> IgnoreMatcher {
        match IgnoreMatcher::new(text) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn clean_like_go() {
        assert_eq!(clean_path(""), ".");
        assert_eq!(clean_path("./foo/"), "foo");
        assert_eq!(clean_path("/foo//bar/"), "/foo/bar");
        assert_eq!(clean_path("a/../b"), "b");
        assert_eq!(clean_path("../a"), "../a");
        assert_eq!(clean_path("/../a"), "/a");
        assert_eq!(clean_path("a/.."), ".");
        assert_eq!(clean_path("/"), "/");
        assert_eq!(clean_path("**/"), "**");
    }

    #[test]
    fn read_patterns_rules() {
        let got = read_patterns(
            "\u{feff}# comment\n  \n /foo/bar/ \n! /baz\n #notcomment\n./x/../y\n/\n",
        );
        let texts: Vec<&str> = got.iter().map(|(_, p)| p.as_str()).collect();
        assert_eq!(texts, ["foo/bar", "!baz", "#notcomment", "y", "/"]);
        assert_eq!(got[0].0, 3);
    }

    #[test]
    fn glob_tokens() {
        let m = |p: &str, s: &str| {
            compile(p).map(|k| {
                Pattern {
                    text: p.into(),
                    exclusion: false,
                    kind: k,
                }
                .matches(s)
            })
        };
        assert_eq!(m("a*c", "abbc"), Some(true));
        assert_eq!(m("a*c", "a/c"), Some(false));
        assert_eq!(m("a?c", "abc"), Some(true));
        assert_eq!(m("a?c", "a/c"), Some(false));
        assert_eq!(m("[a-c]x", "bx"), Some(true));
        assert_eq!(m("[a-c]x", "dx"), Some(false));
        assert_eq!(m("[^a-c]x", "dx"), Some(true));
        assert_eq!(m("[\\]]", "]"), Some(true));
        assert_eq!(m("a\\*", "a*"), Some(true));
        assert_eq!(m("a\\*", "ab"), Some(false));
        assert_eq!(m("a.b", "a.b"), Some(true));
        assert_eq!(m("a.b", "axb"), Some(false));
        assert_eq!(m("**/foo", "foo"), Some(true));
        assert_eq!(m("**/foo", "a/b/foo"), Some(true));
        assert_eq!(m("foo/**", "foo/a/b"), Some(true));
        assert_eq!(m("foo/**", "foo"), Some(false));
        assert_eq!(m("a/**/b", "a/b"), Some(true));
        assert_eq!(m("a/**/b", "a/x/y/b"), Some(true));
        assert_eq!(m("**", "anything/at/all"), Some(true));
        for bad in ["[", "[]", "[a", "[z-a]", "[a-]", "a\\", "[-]"] {
            assert_eq!(compile(bad), None, "{bad}");
        }
    }

    #[test]
    fn reference_example_temp_patterns() {
        let m = matcher("# comment\n*/temp*\n*/*/temp*\ntemp?\n");
        assert!(m.is_excluded("somedir/temporary.txt"));
        assert!(m.is_excluded("somedir/temp"));
        assert!(m.is_excluded("somedir/temp/inside.txt"));
        assert!(m.is_excluded("somedir/subdir/temporary.txt"));
        assert!(m.is_excluded("tempa"));
        assert!(m.is_excluded("tempb"));
        assert!(!m.is_excluded("temp"));
        assert!(!m.is_excluded("tempab"));
        assert!(!m.is_excluded("temporary.txt"));
        assert!(!m.is_excluded("a/b/c/temporary.txt"));
        assert!(!m.is_excluded("# comment"));
    }

    #[test]
    fn reference_example_double_star() {
        let m = matcher("**/*.go\n");
        assert!(m.is_excluded("main.go"));
        assert!(m.is_excluded("cmd/tool/main.go"));
        assert!(!m.is_excluded("main.rs"));
        assert!(!m.is_excluded("go.mod"));
    }

    #[test]
    fn reference_example_exceptions() {
        let m = matcher("*.md\n!README.md\n");
        assert!(m.is_excluded("CHANGELOG.md"));
        assert!(!m.is_excluded("README.md"));
        assert!(
            !m.is_excluded("docs/guide.md"),
            "*.md only matches at the root"
        );

        let m = matcher("*.md\n!README*.md\nREADME-secret.md\n");
        assert!(m.is_excluded("CHANGELOG.md"));
        assert!(!m.is_excluded("README.md"));
        assert!(!m.is_excluded("README-public.md"));
        assert!(m.is_excluded("README-secret.md"));

        let m = matcher("*.md\nREADME-secret.md\n!README*.md\n");
        assert!(!m.is_excluded("README-secret.md"));
        assert!(m.is_excluded("other.md"));
    }

    #[test]
    fn leading_slash_and_cleaning() {
        let m = matcher("/foo/bar\n./baz/\n");
        assert!(m.is_excluded("foo/bar"));
        assert!(m.is_excluded("/foo/bar"));
        assert!(m.is_excluded("foo/bar/deeper/file"));
        assert!(!m.is_excluded("bar"));
        assert!(!m.is_excluded("foo"));
        assert!(m.is_excluded("baz"));
        assert!(m.is_excluded("./baz/x"));
    }

    #[test]
    fn everything_but() {
        let m = matcher("*\n!src\n!Cargo.toml\n");
        assert!(m.is_excluded("target"));
        assert!(m.is_excluded("target/debug/x"));
        assert!(!m.is_excluded("src"));
        assert!(!m.is_excluded("src/main.rs"));
        assert!(!m.is_excluded("Cargo.toml"));
        assert!(!m.is_excluded("."));
        assert!(!m.is_excluded(""));
    }

    #[test]
    fn skip_dirs() {
        let m = matcher("node_modules\n.git\n");
        assert!(m.can_skip_dir("node_modules"));
        assert!(m.can_skip_dir(".git"));
        assert!(!m.can_skip_dir("src"));
        assert!(!m.has_exceptions());

        let m = matcher("vendor\n!vendor/keep.txt\n");
        assert!(m.is_excluded("vendor"));
        assert!(m.is_excluded("vendor/other.txt"));
        assert!(!m.is_excluded("vendor/keep.txt"));
        assert!(!m.can_skip_dir("vendor"));
        assert!(m.has_exceptions());

        let m = matcher("build\ncache\n!cache/keep\n");
        assert!(m.can_skip_dir("build"));
        assert!(!m.can_skip_dir("cache"));

        let m = matcher("*\n!**/*.rs\n");
        assert!(!m.can_skip_dir("anything"));

        let m = matcher("a\n!b/c\n");
        assert!(m.can_skip_dir("a"));
        let m = matcher("a\n!*/c\n");
        assert!(!m.can_skip_dir("a"));
        let m = matcher("a/b\n!a/c/d\n");
        assert!(m.can_skip_dir("a/b"));
    }

    #[test]
    fn errors_name_the_line() {
        let e = IgnoreMatcher::new("ok\n\n!\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.to_string().contains("illegal exclusion pattern"), "{e}");
        let e = IgnoreMatcher::new("# c\nfoo[\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(
            e.to_string(),
            "invalid .dockerignore pattern on line 2: \"foo[\": syntax error in pattern"
        );
    }

    #[test]
    fn from_pattern_list() {
        let m = IgnoreMatcher::from_patterns(["*.log", "!keep.log", " "]).unwrap();
        assert!(m.is_excluded("a.log"));
        assert!(!m.is_excluded("keep.log"));
        assert_eq!(m.patterns(), ["*.log", "!keep.log"]);
    }
}
