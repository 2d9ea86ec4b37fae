//! Turns Dockerfile text into [`Dockerfile`], following the classic builder /
//! buildkit parser: parser directives, comments, line continuations,
//! heredocs, builder flags and per-instruction argument rules.

use std::time::Duration;

use crate::ast::{
    ArgDef, Command, CommandLine, CopyFiles, Directives, Dockerfile, Healthcheck, HealthcheckCmd,
    Heredoc, Instruction, KeyValue, Run, Stage, Warning,
};
use crate::error::{ParseError, ParseErrorKind};
use crate::lexer::{EmptyEnv, ExpandError, Lexer};

/// Parses a Dockerfile.
///
/// Instruction arguments are kept as written; see [`Instruction::expand`] for
/// variable substitution.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    Parser {
        lines,
        next: 0,
        directives: DirectiveParser::default(),
        warnings: Vec::new(),
    }
    .run()
}

struct Parser<'a> {
    lines: Vec<&'a str>,
    /// Index of the next physical line; equals the 1-based number of the
    /// last line read.
    next: usize,
    directives: DirectiveParser,
    warnings: Vec<Warning>,
}

/// A logical line: continuations joined, heredoc bodies read.
struct LogicalLine {
    start: usize,
    end: usize,
    text: String,
    heredocs: Vec<Heredoc>,
}

impl<'a> Parser<'a> {
    fn run(mut self) -> Result<Dockerfile, ParseError> {
        let mut global_args = Vec::new();
        let mut stages: Vec<Stage> = Vec::new();
        let mut seen_any = false;

        while let Some(logical) = self.next_logical_line()? {
            seen_any = true;
            let escape = self.directives.directives.escape;
            let built = build(&logical, escape).map_err(|kind| kind.at(logical.start))?;
            match built {
                Built::From {
                    base,
                    platform,
                    name,
                } => stages.push(Stage {
                    name,
                    base,
                    platform,
                    line: logical.start,
                    instructions: Vec::new(),
                }),
                Built::Command(command) => {
                    let instruction = Instruction {
                        line: logical.start,
                        end_line: logical.end,
                        original: logical.text.clone(),
                        command,
                    };
                    match stages.last_mut() {
                        Some(stage) => stage.instructions.push(instruction),
                        None if matches!(instruction.command, Command::Arg(_)) => {
                            global_args.push(instruction)
                        }
                        None => {
                            let name = instruction.command.name().to_string();
                            return Err(ParseErrorKind::MissingFrom(name).at(logical.start));
                        }
                    }
                }
            }
        }

        let last_line = self.lines.len().max(1);
        if !seen_any {
            return Err(ParseErrorKind::Empty.at(last_line));
        }
        if stages.is_empty() {
            return Err(ParseErrorKind::NoStages.at(last_line));
        }
        Ok(Dockerfile {
            directives: self.directives.directives,
            global_args,
            stages,
            warnings: self.warnings,
        })
    }

    fn read_line(&mut self) -> Option<&'a str> {
        let line = self.lines.get(self.next).copied();
        if line.is_some() {
            self.next += 1;
        }
        line
    }

    /// Reads the next instruction's text, or `None` at the end of the file.
    fn next_logical_line(&mut self) -> Result<Option<LogicalLine>, ParseError> {
        loop {
            let Some(raw) = self.read_line() else {
                return Ok(None);
            };
            let start = self.next;
            let token = trim_newline(raw).trim_start();
            self.directives
                .parse_line(token)
                .map_err(|kind| kind.at(start))?;
            let escape = self.directives.directives.escape;
            let token = if is_comment(token) { "" } else { token };

            let (first, mut end_of_line) = trim_continuation(token, escape);
            if end_of_line && first.is_empty() {
                continue;
            }
            let mut text = first.to_string();
            let mut empty_continuation = false;
            while !end_of_line {
                let Some(raw) = self.read_line() else { break };
                if is_comment(raw) {
                    continue;
                }
                let line = trim_newline(raw);
                if line.trim_start().is_empty() {
                    empty_continuation = true;
                    continue;
                }
                let (part, eol) = trim_continuation(line, escape);
                text.push_str(part);
                end_of_line = eol;
            }
            if empty_continuation {
                self.warnings.push(Warning {
                    line: self.next,
                    message: format!("Empty continuation line found in: {text}"),
                });
            }

            let heredocs = if may_have_heredocs(&text, escape) {
                self.read_heredocs(&text).map_err(|kind| kind.at(start))?
            } else {
                Vec::new()
            };
            return Ok(Some(LogicalLine {
                start,
                end: self.next,
                text,
                heredocs,
            }));
        }
    }

    fn read_heredocs(&mut self, line: &str) -> Result<Vec<Heredoc>, ParseErrorKind> {
        let mut docs =
            heredocs_from_line(line).map_err(|e| ParseErrorKind::Invalid(e.to_string()))?;
        for doc in &mut docs {
            let mut terminated = false;
            while let Some(raw) = self.read_line() {
                let mut candidate = trim_newline(raw);
                if doc.chomp {
                    candidate = candidate.trim_start_matches('\t');
                }
                if candidate == doc.name {
                    terminated = true;
                    break;
                }
                doc.content.push_str(raw);
            }
            if !terminated {
                return Err(ParseErrorKind::UnterminatedHeredoc);
            }
        }
        Ok(docs)
    }
}

#[derive(Default)]
struct DirectiveParser {
    done: bool,
    seen: Vec<String>,
    directives: Directives,
}

impl DirectiveParser {
    /// Looks at a line (newline and leading whitespace removed) while still
    /// at the top of the file. Any line that is not a known directive ends
    /// the directive section.
    fn parse_line(&mut self, line: &str) -> Result<(), ParseErrorKind> {
        if self.done {
            return Ok(());
        }
        let Some((key, value)) = directive_key_value(line) else {
            self.done = true;
            return Ok(());
        };
        let key = key.to_ascii_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(());
        }
        if self.seen.contains(&key) {
            return Err(ParseErrorKind::DuplicateDirective(key));
        }
        match key.as_str() {
            "escape" => {
                self.directives.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    other => return Err(ParseErrorKind::InvalidEscapeToken(other.to_string())),
                }
            }
            "syntax" => self.directives.syntax = Some(value.to_string()),
            _ => self.directives.check = Some(value.to_string()),
        }
        self.seen.push(key);
        Ok(())
    }
}

/// Regex-free `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`.
fn directive_key_value(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let key_len = rest
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_alphabetic() || (*i > 0 && c.is_ascii_digit())))
        .map_or(rest.len(), |(i, _)| i);
    if key_len == 0 {
        return None;
    }
    let (key, rest) = rest.split_at(key_len);
    let value = rest.trim_start_matches(is_re_space).strip_prefix('=')?;
    let value = value.trim_matches(is_re_space);
    if value.is_empty() {
        return None;
    }
    Some((key, value))
}

/// RE2's `\s`.
fn is_re_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r')
}

/// Docker's `reWhitespace`: `[\t\v\f\r ]`.
fn is_separator(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Strips a trailing line-continuation (escape char, then optional blanks).
/// Returns the text and whether the logical line ends here. An escaped escape
/// character (`\\`) at the end is not a continuation.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    if let Some(before) = line.trim_end_matches([' ', '\t']).strip_suffix(escape) {
        if before.is_empty() || !before.ends_with(escape) {
            return (before, false);
        }
    }
    (line, true)
}

/// Splits on runs of Docker whitespace, dropping empty pieces.
pub(crate) fn split_whitespace(s: &str) -> Vec<String> {
    s.split(is_separator)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Splits a logical line into (instruction, builder flags, remaining args).
fn split_command(line: &str, escape: char) -> (String, Vec<String>, String) {
    let line = line.trim();
    match line.find(is_separator) {
        None => (line.to_string(), Vec::new(), String::new()),
        Some(at) => {
            let rest = line[at..].trim_start_matches(is_separator);
            let (args, flags) = extract_builder_flags(rest, escape);
            (line[..at].to_string(), flags, args.trim().to_string())
        }
    }
}

/// Takes the leading `--flag[=value]` words off `line`. Quotes group and are
/// removed, the escape character makes the next character literal, and a
/// lone `--` ends the flags.
fn extract_builder_flags(line: &str, escape: char) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let chars: Vec<char> = line.chars().collect();
    let rest = |pos: usize| chars[pos..].iter().collect::<String>();
    let mut flags = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut phase = Phase::Spaces;
    let mut pos = 0;
    while pos < chars.len() {
        let ch = chars[pos];
        match phase {
            Phase::Spaces => {
                if ch.is_whitespace() {
                    pos += 1;
                    continue;
                }
                if !(ch == '-' && chars.get(pos + 1) == Some(&'-')) {
                    return (rest(pos), flags);
                }
                phase = Phase::Word;
                continue;
            }
            Phase::Word => {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if word == "--" {
                        return (rest(pos), flags);
                    }
                    if blank_ok || !word.is_empty() {
                        flags.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    blank_ok = false;
                } else if ch == '\'' || ch == '"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                } else if ch == escape {
                    if let Some(&next) = chars.get(pos + 1) {
                        word.push(next);
                        pos += 1;
                    }
                } else {
                    word.push(ch);
                }
            }
            Phase::Quote(quote) => {
                if ch == quote {
                    phase = Phase::Word;
                } else if ch == escape {
                    match chars.get(pos + 1) {
                        Some(&next) => {
                            word.push(next);
                            pos += 1;
                        }
                        None => phase = Phase::Word,
                    }
                } else {
                    word.push(ch);
                }
            }
        }
        pos += 1;
    }
    if phase != Phase::Spaces && word != "--" && (blank_ok || !word.is_empty()) {
        flags.push(word);
    }
    (String::new(), flags)
}

/// Splits ENV/LABEL/ARG arguments into words on unquoted whitespace,
/// keeping quotes and escapes (they are removed at expansion time).
fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut blank_ok = false;
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut pos = 0;
    while pos < chars.len() {
        let ch = chars[pos];
        let last = pos + 1 == chars.len();
        match quote {
            None if !in_word && ch.is_whitespace() => {}
            None => {
                in_word = true;
                if ch.is_whitespace() {
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    blank_ok = false;
                    in_word = false;
                } else if ch == escape {
                    // The escape and the escaped char are both kept; a
                    // trailing escape is dropped.
                    if !last {
                        word.push(ch);
                        word.push(chars[pos + 1]);
                        pos += 1;
                    }
                } else {
                    if ch == '\'' || ch == '"' {
                        quote = Some(ch);
                        blank_ok = true;
                    }
                    word.push(ch);
                }
            }
            Some(q) => {
                if ch == q {
                    quote = None;
                    word.push(ch);
                } else if ch == escape && q != '\'' {
                    if last {
                        // A trailing escape inside quotes is dropped.
                        quote = None;
                    } else {
                        word.push(ch);
                        word.push(chars[pos + 1]);
                        pos += 1;
                    }
                } else {
                    word.push(ch);
                }
            }
        }
        pos += 1;
    }
    if (in_word || quote.is_some()) && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

enum Json {
    Other,
    Strings(Vec<String>),
    NotStrings,
}

fn parse_json(rest: &str) -> Json {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Json::Other;
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(rest) {
        Err(_) => Json::Other,
        Ok(values) => values
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Some(s),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map_or(Json::NotStrings, Json::Strings),
    }
}

const NOT_STRING_ARRAY: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

/// RUN/CMD/ENTRYPOINT/SHELL arguments: exec form when they parse as a JSON
/// string array, shell form otherwise. `None` when empty.
fn maybe_json(rest: &str) -> Result<Option<CommandLine>, ParseErrorKind> {
    if rest.is_empty() {
        return Ok(None);
    }
    match parse_json(rest) {
        Json::Strings(v) => Ok(Some(CommandLine::Exec(v))),
        Json::NotStrings => Err(ParseErrorKind::Invalid(NOT_STRING_ARRAY.into())),
        Json::Other => Ok(Some(CommandLine::Shell(rest.to_string()))),
    }
}

/// COPY/ADD/VOLUME arguments: a JSON string array or whitespace-separated
/// words. The flag tells whether JSON was used.
fn maybe_json_list(rest: &str) -> Result<(Vec<String>, bool), ParseErrorKind> {
    match parse_json(rest) {
        Json::Strings(v) => Ok((v, true)),
        Json::NotStrings => Err(ParseErrorKind::Invalid(NOT_STRING_ARRAY.into())),
        Json::Other => Ok((split_whitespace(rest), false)),
    }
}

fn is_json(rest: &str) -> bool {
    matches!(parse_json(rest), Json::Strings(_))
}

/// Whether heredoc bodies follow this line: RUN/COPY/ADD in shell form
/// (possibly behind ONBUILD) mentioning `<<`.
fn may_have_heredocs(line: &str, escape: char) -> bool {
    if !line.contains("<<") {
        return false;
    }
    let (cmd, _, args) = split_command(line, escape);
    let (cmd, args) = if cmd.eq_ignore_ascii_case("onbuild") {
        let (sub, _, sub_args) = split_command(&args, escape);
        (sub, sub_args)
    } else {
        (cmd, args)
    };
    matches!(cmd.to_ascii_lowercase().as_str(), "run" | "copy" | "add") && !is_json(&args)
}

/// Finds the heredoc openers on a line (bodies still empty).
fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, ExpandError> {
    let words = Lexer::new('\\')
        .raw_quotes(true)
        .raw_escapes(true)
        .skip_unset(true)
        .process_words(line, &EmptyEnv)
        .unwrap_or_default();
    let mut docs = Vec::new();
    for word in words {
        if let Some(doc) = parse_heredoc_word(&word)? {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// Parses one word as a heredoc opener: `[n]<<[-]WORD` (regex-free
/// `^(\d*)<<(-?)\s*([^<]*)$`). Quoting any part of WORD disables expansion.
pub(crate) fn parse_heredoc_word(word: &str) -> Result<Option<Heredoc>, ExpandError> {
    let digits_len = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (digits, rest) = word.split_at(digits_len);
    let Some(rest) = rest.strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start_matches(is_re_space);
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let lex = Lexer::new('\\').skip_unset(true);
    let words = lex.process_words(rest, &EmptyEnv)?;
    let [name] = words.as_slice() else {
        return Ok(None);
    };
    let raw = lex.raw_quotes(true).process_words(rest, &EmptyEnv)?;
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    let expand = raw.len() == 1 && quotes(name) == quotes(&raw[0]);
    Ok(Some(Heredoc {
        name: name.clone(),
        fd: digits.parse().unwrap_or(0),
        expand,
        chomp,
        content: String::new(),
    }))
}

enum Built {
    From {
        base: String,
        platform: Option<String>,
        name: Option<String>,
    },
    Command(Command),
}

fn build(line: &LogicalLine, escape: char) -> Result<Built, ParseErrorKind> {
    let (cmd, flags, args) = split_command(&line.text, escape);
    if cmd.eq_ignore_ascii_case("from") {
        return build_from(&flags, &args);
    }
    let ctx = Ctx {
        escape,
        line: line.start,
        end_line: line.end,
        original: &line.text,
    };
    build_command(&cmd, &flags, &args, line.heredocs.clone(), &ctx).map(Built::Command)
}

struct Ctx<'a> {
    escape: char,
    line: usize,
    end_line: usize,
    original: &'a str,
}

fn build_from(flags: &[String], args: &str) -> Result<Built, ParseErrorKind> {
    let words = split_whitespace(args);
    let name = match words.as_slice() {
        [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
            let lowered = name.to_ascii_lowercase();
            if !valid_stage_name(&lowered) {
                return Err(ParseErrorKind::Invalid(format!(
                    "invalid name for build stage: \"{name}\", name can't start with a number or contain symbols"
                )));
            }
            Some(lowered)
        }
        [_] => None,
        _ => {
            return Err(ParseErrorKind::Invalid(
                "FROM requires either one or three arguments".into(),
            ))
        }
    };
    let flags = Flags::parse(flags, &[("platform", FlagKind::String)])?;
    Ok(Built::From {
        base: words[0].clone(),
        platform: flags.string("platform"),
        name,
    })
}

/// `^[a-z][a-z0-9-_.]*$`
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

fn at_least_one(name: &str) -> ParseErrorKind {
    ParseErrorKind::Invalid(format!("{name} requires at least one argument"))
}

fn exactly_one(name: &str) -> ParseErrorKind {
    ParseErrorKind::Invalid(format!("{name} requires exactly one argument"))
}

fn build_command(
    cmd: &str,
    raw_flags: &[String],
    args: &str,
    heredocs: Vec<Heredoc>,
    ctx: &Ctx<'_>,
) -> Result<Command, ParseErrorKind> {
    let upper = cmd.to_ascii_uppercase();
    let no_flags = || Flags::parse(raw_flags, &[]);
    Ok(match upper.as_str() {
        "RUN" => {
            let flags = Flags::parse(
                raw_flags,
                &[
                    ("mount", FlagKind::Strings),
                    ("network", FlagKind::String),
                    ("security", FlagKind::String),
                ],
            )?;
            let command = maybe_json(args)?.ok_or_else(|| at_least_one("RUN"))?;
            Command::Run(Run {
                command,
                heredocs,
                mounts: flags.strings("mount"),
                network: flags.string("network"),
                security: flags.string("security"),
            })
        }
        "CMD" | "ENTRYPOINT" => {
            no_flags()?;
            let line = maybe_json(args)?.unwrap_or_else(|| CommandLine::Shell(String::new()));
            if upper == "CMD" {
                Command::Cmd(line)
            } else {
                Command::Entrypoint(line)
            }
        }
        "SHELL" => {
            no_flags()?;
            match maybe_json(args)? {
                None => return Err(at_least_one("SHELL")),
                Some(CommandLine::Exec(v)) if v.is_empty() => return Err(at_least_one("SHELL")),
                Some(CommandLine::Exec(v)) => Command::Shell(v),
                Some(CommandLine::Shell(_)) => {
                    return Err(ParseErrorKind::Invalid(
                        "SHELL requires the arguments to be in JSON form".into(),
                    ))
                }
            }
        }
        "ENV" | "LABEL" => {
            no_flags()?;
            let pairs = parse_key_values(args, &upper, ctx.escape)?;
            if upper == "ENV" {
                Command::Env(pairs)
            } else {
                Command::Label(pairs)
            }
        }
        "ARG" => {
            no_flags()?;
            let words = parse_words(args, ctx.escape);
            if words.is_empty() {
                return Err(at_least_one("ARG"));
            }
            let defs = words
                .into_iter()
                .map(|word| match word.split_once('=') {
                    Some(("", _)) => {
                        Err(ParseErrorKind::Invalid("ARG names can not be blank".into()))
                    }
                    Some((name, value)) => Ok(ArgDef {
                        name: name.to_string(),
                        default: Some(value.to_string()),
                    }),
                    None => Ok(ArgDef {
                        name: word,
                        default: None,
                    }),
                })
                .collect::<Result<_, _>>()?;
            Command::Arg(defs)
        }
        "COPY" | "ADD" => build_copy(&upper, raw_flags, args, heredocs)?,
        "EXPOSE" => {
            no_flags()?;
            let ports = split_whitespace(args);
            if ports.is_empty() {
                return Err(at_least_one("EXPOSE"));
            }
            Command::Expose(ports)
        }
        "VOLUME" => {
            no_flags()?;
            let (paths, _) = maybe_json_list(args)?;
            if paths.is_empty() {
                return Err(at_least_one("VOLUME"));
            }
            let paths = paths
                .into_iter()
                .map(|p| {
                    let p = p.trim();
                    if p.is_empty() {
                        Err(ParseErrorKind::Invalid(
                            "VOLUME specified can not be an empty string".into(),
                        ))
                    } else {
                        Ok(p.to_string())
                    }
                })
                .collect::<Result<_, _>>()?;
            Command::Volume(paths)
        }
        "USER" | "WORKDIR" | "STOPSIGNAL" | "MAINTAINER" => {
            no_flags()?;
            if args.is_empty() {
                return Err(exactly_one(&upper));
            }
            let value = args.to_string();
            match upper.as_str() {
                "USER" => Command::User(value),
                "WORKDIR" => Command::Workdir(value),
                "STOPSIGNAL" => Command::StopSignal(value),
                _ => Command::Maintainer(value),
            }
        }
        "HEALTHCHECK" => Command::Healthcheck(build_healthcheck(raw_flags, args)?),
        "ONBUILD" => {
            no_flags()?;
            build_onbuild(args, heredocs, ctx)?
        }
        "FROM" => {
            // Only reachable through ONBUILD, which rejects it first.
            return Err(ParseErrorKind::Invalid(
                "FROM isn't allowed as an ONBUILD trigger".into(),
            ));
        }
        _ => return Err(ParseErrorKind::UnknownInstruction(cmd.to_string())),
    })
}

/// ENV and LABEL: `k=v k2="v 2" ...`, or the legacy `KEY value with spaces`.
fn parse_key_values(args: &str, name: &str, escape: char) -> Result<Vec<KeyValue>, ParseErrorKind> {
    let words = parse_words(args, escape);
    if words.is_empty() {
        return Err(at_least_one(name));
    }
    let pairs = if !words[0].contains('=') {
        // Legacy form: the first word is the key, the rest of the line the value.
        let Some(at) = args.find(is_separator) else {
            return Err(ParseErrorKind::Invalid(format!(
                "{name} must have two arguments"
            )));
        };
        vec![KeyValue {
            key: args[..at].to_string(),
            value: args[at..].trim_start_matches(is_separator).to_string(),
        }]
    } else {
        words
            .iter()
            .map(|word| match word.split_once('=') {
                Some((key, value)) => Ok(KeyValue {
                    key: key.to_string(),
                    value: value.to_string(),
                }),
                None => Err(ParseErrorKind::Invalid(format!(
                    "Syntax error - can't find = in \"{word}\". Must be of the form: name=value"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    if pairs.iter().any(|kv| kv.key.is_empty()) {
        return Err(ParseErrorKind::Invalid(format!(
            "{name} names can not be blank"
        )));
    }
    Ok(pairs)
}

fn build_copy(
    name: &str,
    raw_flags: &[String],
    args: &str,
    heredocs: Vec<Heredoc>,
) -> Result<Command, ParseErrorKind> {
    let (mut words, _) = maybe_json_list(args)?;
    if words.len() < 2 {
        return Err(ParseErrorKind::Invalid(format!(
            "{name} requires at least two arguments, but only one was provided. Destination could not be determined"
        )));
    }
    let is_add = name == "ADD";
    let spec: &[(&str, FlagKind)] = if is_add {
        &[
            ("chown", FlagKind::String),
            ("chmod", FlagKind::String),
            ("link", FlagKind::Bool),
            ("keep-git-dir", FlagKind::Bool),
            ("checksum", FlagKind::String),
            ("unpack", FlagKind::Bool),
            ("exclude", FlagKind::Strings),
        ]
    } else {
        &[
            ("chown", FlagKind::String),
            ("from", FlagKind::String),
            ("chmod", FlagKind::String),
            ("link", FlagKind::Bool),
            ("exclude", FlagKind::Strings),
            ("parents", FlagKind::Bool),
        ]
    };
    let flags = Flags::parse(raw_flags, spec)?;

    let dest = words.pop().unwrap_or_default();
    if parse_heredoc_word(&dest).ok().flatten().is_some() {
        return Err(ParseErrorKind::Invalid(format!(
            "{name} cannot accept a heredoc as a destination"
        )));
    }
    let mut sources = Vec::new();
    let mut inline = Vec::new();
    for word in words {
        let doc = parse_heredoc_word(&word)
            .ok()
            .flatten()
            .and_then(|h| heredocs.iter().find(|d| d.name == h.name));
        match doc {
            Some(doc) => inline.push(doc.clone()),
            None => sources.push(word),
        }
    }
    let copy = CopyFiles {
        sources,
        heredocs: inline,
        dest,
        from: flags.string("from"),
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.bool("link").unwrap_or(false),
        parents: flags.bool("parents").unwrap_or(false),
        exclude: flags.strings("exclude"),
        checksum: flags.string("checksum"),
        keep_git_dir: flags.bool("keep-git-dir"),
        unpack: flags.bool("unpack"),
    };
    Ok(if is_add {
        Command::Add(copy)
    } else {
        Command::Copy(copy)
    })
}

fn build_healthcheck(raw_flags: &[String], args: &str) -> Result<Healthcheck, ParseErrorKind> {
    let (kind, rest) = match args.find(char::is_whitespace) {
        Some(at) => (&args[..at], args[at..].trim_start()),
        None => (args, ""),
    };
    if kind.is_empty() {
        return Err(at_least_one("HEALTHCHECK"));
    }
    let kind = kind.to_ascii_uppercase();
    let command = maybe_json(rest)?;
    if kind == "NONE" {
        // Docker ignores flags here.
        if command.is_some() {
            return Err(ParseErrorKind::Invalid(
                "HEALTHCHECK NONE takes no arguments".into(),
            ));
        }
        return Ok(Healthcheck::None);
    }
    let flags = Flags::parse(
        raw_flags,
        &[
            ("interval", FlagKind::String),
            ("timeout", FlagKind::String),
            ("start-period", FlagKind::String),
            ("start-interval", FlagKind::String),
            ("retries", FlagKind::String),
        ],
    )?;
    if kind != "CMD" {
        return Err(ParseErrorKind::Invalid(format!(
            "Unknown type \"{kind}\" in HEALTHCHECK (try CMD)"
        )));
    }
    let test = match command {
        Some(CommandLine::Exec(v)) if v.is_empty() => None,
        other => other,
    }
    .ok_or_else(|| ParseErrorKind::Invalid("Missing command after HEALTHCHECK CMD".into()))?;
    let interval = |name: &str| -> Result<Option<Duration>, ParseErrorKind> {
        match flags.string(name) {
            None => Ok(None),
            Some(v) if v.is_empty() => Ok(None),
            Some(v) => parse_interval(name, &v).map(Some),
        }
    };
    let retries = match flags.string("retries").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => {
            let n: i32 = v.parse().map_err(|_| {
                ParseErrorKind::BadFlag(format!("invalid value for --retries: \"{v}\""))
            })?;
            let n = u32::try_from(n).map_err(|_| {
                ParseErrorKind::BadFlag(format!("--retries cannot be negative ({n})"))
            })?;
            Some(n)
        }
    };
    Ok(Healthcheck::Cmd(HealthcheckCmd {
        test,
        interval: interval("interval")?,
        timeout: interval("timeout")?,
        start_period: interval("start-period")?,
        start_interval: interval("start-interval")?,
        retries,
    }))
}

/// A healthcheck duration: 0, or at least 1ms.
fn parse_interval(name: &str, value: &str) -> Result<Duration, ParseErrorKind> {
    let nanos = parse_go_duration(value)
        .ok_or_else(|| ParseErrorKind::BadFlag(format!("time: invalid duration \"{value}\"")))?;
    if nanos == 0 {
        return Ok(Duration::ZERO);
    }
    if nanos < 1_000_000 {
        return Err(ParseErrorKind::BadFlag(format!(
            "Interval \"{name}\" cannot be less than 1ms"
        )));
    }
    u64::try_from(nanos)
        .map(Duration::from_nanos)
        .map_err(|_| ParseErrorKind::BadFlag(format!("time: invalid duration \"{value}\"")))
}

/// Go's `time.ParseDuration`, in nanoseconds: e.g. `300ms`, `1.5h`, `2m30s`
/// (the syntax of HEALTHCHECK's flags, and of docker's `--health-*` and
/// `--since` values).
pub fn parse_go_duration(s: &str) -> Option<i128> {
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_len = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(a) => {
                let frac_len = a.len() - a.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                a.split_at(frac_len)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let unit_len = after.len()
            - after
                .trim_start_matches(|c: char| c != '.' && !c.is_ascii_digit())
                .len();
        let (unit, after) = after.split_at(unit_len);
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let int: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().ok()?
        };
        let mut value = int.checked_mul(scale)?;
        if !frac_part.is_empty() {
            let digits = frac_part.len().min(30);
            let frac: i128 = frac_part[..digits].parse().ok()?;
            value =
                value.checked_add(frac.checked_mul(scale)? / 10i128.checked_pow(digits as u32)?)?;
        }
        total = total.checked_add(value)?;
        rest = after;
    }
    Some(if negative { -total } else { total })
}

fn build_onbuild(
    args: &str,
    heredocs: Vec<Heredoc>,
    ctx: &Ctx<'_>,
) -> Result<Command, ParseErrorKind> {
    if args.is_empty() {
        return Err(at_least_one("ONBUILD"));
    }
    let (sub, sub_flags, sub_args) = split_command(args, ctx.escape);
    let trigger = sub.to_ascii_uppercase();
    match trigger.as_str() {
        "ONBUILD" => {
            return Err(ParseErrorKind::Invalid(
                "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into(),
            ))
        }
        "MAINTAINER" | "FROM" => {
            return Err(ParseErrorKind::Invalid(format!(
                "{trigger} isn't allowed as an ONBUILD trigger"
            )))
        }
        _ => {}
    }
    // The expression Docker stores: the line without the ONBUILD keyword,
    // with heredoc bodies re-attached.
    let original = ctx.original.trim_start();
    let mut expression = original
        .get(..7)
        .filter(|kw| kw.eq_ignore_ascii_case("onbuild"))
        .map_or(original, |_| &original[7..])
        .trim_start()
        .to_string();
    for doc in &heredocs {
        expression.push('\n');
        expression.push_str(&doc.content);
        expression.push_str(&doc.name);
    }
    let command = build_command(&sub, &sub_flags, &sub_args, heredocs, ctx)?;
    Ok(Command::Onbuild(Box::new(Instruction {
        line: ctx.line,
        end_line: ctx.end_line,
        original: expression,
        command,
    })))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FlagKind {
    Bool,
    String,
    Strings,
}

/// Parsed `--name=value` builder flags.
struct Flags {
    values: Vec<(&'static str, String)>,
}

impl Flags {
    fn parse(raw: &[String], spec: &[(&'static str, FlagKind)]) -> Result<Flags, ParseErrorKind> {
        let mut values: Vec<(&'static str, String)> = Vec::new();
        for arg in raw {
            if arg == "--" {
                break;
            }
            let Some(body) = arg.strip_prefix("--") else {
                return Err(ParseErrorKind::BadFlag(format!(
                    "arg should start with -- : {arg}"
                )));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let flag_name = format!("--{name}");
            let Some(&(key, kind)) = spec.iter().find(|(n, _)| *n == name) else {
                return Err(ParseErrorKind::UnknownFlag(flag_name));
            };
            if kind != FlagKind::Strings && values.iter().any(|(n, _)| *n == key) {
                return Err(ParseErrorKind::BadFlag(format!(
                    "duplicate flag specified: {flag_name}"
                )));
            }
            let missing =
                || ParseErrorKind::BadFlag(format!("missing a value on flag: {flag_name}"));
            let stored = match kind {
                FlagKind::Bool => match value {
                    None => "true".to_string(),
                    Some("") => return Err(missing()),
                    Some(v) if v.eq_ignore_ascii_case("true") => "true".to_string(),
                    Some(v) if v.eq_ignore_ascii_case("false") => "false".to_string(),
                    Some(v) => {
                        return Err(ParseErrorKind::BadFlag(format!(
                            "expecting boolean value for flag {flag_name}, not: {v}"
                        )))
                    }
                },
                FlagKind::String | FlagKind::Strings => value.ok_or_else(missing)?.to_string(),
            };
            values.push((key, stored));
        }
        Ok(Flags { values })
    }

    fn string(&self, name: &str) -> Option<String> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    }

    fn strings(&self, name: &str) -> Vec<String> {
        self.values
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn bool(&self, name: &str) -> Option<bool> {
        self.string(name).map(|v| v == "true")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_detection() {
        assert_eq!(trim_continuation("a \\", '\\'), ("a ", false));
        assert_eq!(trim_continuation("a \\  \t", '\\'), ("a ", false));
        assert_eq!(trim_continuation("\\", '\\'), ("", false));
        assert_eq!(trim_continuation("a\\\\", '\\'), ("a\\\\", true));
        assert_eq!(trim_continuation("c:\\", '`'), ("c:\\", true));
        assert_eq!(trim_continuation("a `", '`'), ("a ", false));
        assert_eq!(trim_continuation("plain", '\\'), ("plain", true));
    }

    #[test]
    fn directive_syntax() {
        for line in [
            "#directive=value",
            "# directive =value",
            "#\tdirective= value",
            "# directive = value",
            "#\t  dIrEcTiVe=value",
        ] {
            let (k, v) = directive_key_value(line).unwrap();
            assert_eq!(k.to_ascii_lowercase(), "directive", "{line}");
            assert_eq!(v, "value", "{line}");
        }
        assert_eq!(directive_key_value("# direc \\"), None);
        assert_eq!(directive_key_value("# key="), None);
        assert_eq!(directive_key_value("FROM x"), None);
        assert_eq!(directive_key_value("# 1abc=x"), None);
    }

    #[test]
    fn builder_flags() {
        let f = |s: &str| extract_builder_flags(s, '\\');
        assert_eq!(f("foo /tmp/"), ("foo /tmp/".into(), vec![]));
        assert_eq!(
            f("--user=me foo /tmp/"),
            ("foo /tmp/".into(), vec!["--user=me".into()])
        );
        assert_eq!(
            f("--user=me --doit=true foo"),
            ("foo".into(), vec!["--user=me".into(), "--doit=true".into()])
        );
        // A lone `--` ends the flags and is dropped.
        assert_eq!(
            f("--doit=true -- foo /tmp/"),
            (" foo /tmp/".into(), vec!["--doit=true".into()])
        );
        assert_eq!(f("-- foo"), (" foo".into(), vec![]));
        assert_eq!(
            f("--doit [ \"a\" ]"),
            ("[ \"a\" ]".into(), vec!["--doit".into()])
        );
        assert_eq!(f("--doit"), (String::new(), vec!["--doit".into()]));
        assert_eq!(
            f("--mount=\"type=bind,source=a b\" cmd"),
            ("cmd".into(), vec!["--mount=type=bind,source=a b".into()])
        );
        assert_eq!(f("-x y"), ("-x y".into(), vec![]));
    }

    #[test]
    fn split_command_trims() {
        assert_eq!(
            split_command("  RUN   --network=none   echo hi  ", '\\'),
            (
                "RUN".into(),
                vec!["--network=none".into()],
                "echo hi".into()
            )
        );
        assert_eq!(
            split_command("CMD", '\\'),
            ("CMD".into(), vec![], String::new())
        );
    }

    #[test]
    fn words_keep_quotes_and_escapes() {
        let w = |s: &str| parse_words(s, '\\');
        assert_eq!(w("a=1 b=\"x y\""), ["a=1", "b=\"x y\""]);
        assert_eq!(w("name=value\\ value2"), ["name=value\\ value2"]);
        assert_eq!(w("name='a\\'b'"), ["name='a\\'b'"]);
        assert_eq!(w("  x   y  "), ["x", "y"]);
        assert_eq!(w("x\\"), ["x"]);
        assert_eq!(w("k=\"\""), ["k=\"\""]);
    }

    #[test]
    fn json_detection() {
        assert!(matches!(parse_json("[\"a\", \"b\"]"), Json::Strings(v) if v == ["a", "b"]));
        assert!(matches!(parse_json("[]"), Json::Strings(v) if v.is_empty()));
        assert!(matches!(parse_json("['a']"), Json::Other));
        assert!(matches!(parse_json("[\"a\""), Json::Other));
        assert!(matches!(parse_json("[\"a\"] x"), Json::Other));
        assert!(matches!(parse_json("[1]"), Json::NotStrings));
        assert!(matches!(parse_json("echo [\"a\"]"), Json::Other));
    }

    #[test]
    fn heredoc_words() {
        for src in [
            "<<EOF",
            "<<'EOF'",
            "<<\"EOF\"",
            "<<-EOF",
            "<<-'EOF'",
            "<<-\"EOF\"",
            "<<EO\"F\"",
            "<< EOF",
            "<<- EOF",
        ] {
            let doc = parse_heredoc_word(src).unwrap().unwrap();
            assert_eq!(doc.name, "EOF", "{src}");
        }
        for src in ["", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "<<EOF sh"] {
            assert!(parse_heredoc_word(src).unwrap().is_none(), "{src}");
        }
        for src in ["<<'EOF", "<<\"EOF", "<<EOF'", "<<EOF\""] {
            assert!(parse_heredoc_word(src).is_err(), "{src}");
        }
        let doc = parse_heredoc_word("3<<-'X'").unwrap().unwrap();
        assert_eq!((doc.fd, doc.chomp, doc.expand), (3, true, false));
        assert!(parse_heredoc_word("<<X").unwrap().unwrap().expand);
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("0"), Some(0));
        assert_eq!(parse_go_duration("5s"), Some(5_000_000_000));
        assert_eq!(parse_go_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_go_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration("300ms"), Some(300_000_000));
        assert_eq!(parse_go_duration("10us"), Some(10_000));
        assert_eq!(parse_go_duration("-2s"), Some(-2_000_000_000));
        assert_eq!(parse_go_duration(".5s"), Some(500_000_000));
        assert_eq!(parse_go_duration(""), None);
        assert_eq!(parse_go_duration("5"), None);
        assert_eq!(parse_go_duration("5x"), None);
        assert_eq!(parse_go_duration("s"), None);
    }

    #[test]
    fn flag_values() {
        let spec = [
            ("link", FlagKind::Bool),
            ("from", FlagKind::String),
            ("exclude", FlagKind::Strings),
        ];
        let raw = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let f = Flags::parse(
            &raw(&["--link", "--from=a", "--exclude=x", "--exclude=y"]),
            &spec,
        )
        .unwrap();
        assert_eq!(f.bool("link"), Some(true));
        assert_eq!(f.string("from").as_deref(), Some("a"));
        assert_eq!(f.strings("exclude"), ["x", "y"]);
        let f = Flags::parse(&raw(&["--link=FALSE"]), &spec).unwrap();
        assert_eq!(f.bool("link"), Some(false));
        let err = |v: &[&str]| Flags::parse(&raw(v), &spec).err().unwrap().to_string();
        assert_eq!(err(&["--nope"]), "unknown flag: --nope");
        assert_eq!(err(&["--from"]), "missing a value on flag: --from");
        assert_eq!(err(&["--link="]), "missing a value on flag: --link");
        assert_eq!(
            err(&["--link=maybe"]),
            "expecting boolean value for flag --link, not: maybe"
        );
        assert_eq!(
            err(&["--from=a", "--from=b"]),
            "duplicate flag specified: --from"
        );
    }
}
