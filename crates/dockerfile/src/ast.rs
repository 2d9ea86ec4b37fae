//! The typed result of parsing a Dockerfile.
//!
//! Values are kept *as written* (quotes, escapes and `$VAR` references
//! included) because Docker expands them only when an instruction is
//! dispatched, with the environment at that point of the build. Call
//! [`Instruction::expand`] (or [`Stage::expand_from`] for the `FROM` line) to
//! get the expanded form.

use std::borrow::Cow;
use std::time::Duration;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// Parser directives found at the top of the file.
    pub directives: Directives,
    /// `ARG` instructions before the first `FROM` (each is [`Command::Arg`]).
    /// They are in scope for `FROM` lines only, unless a stage redeclares them.
    pub global_args: Vec<Instruction>,
    /// The build stages, in file order.
    pub stages: Vec<Stage>,
    /// Non-fatal findings, such as empty continuation lines.
    pub warnings: Vec<Warning>,
}

impl Dockerfile {
    /// The escape character in effect (`\` unless `# escape=` changed it).
    pub fn escape(&self) -> char {
        self.directives.escape
    }

    /// Finds a stage by name (case-insensitive, as names are stored lowercased)
    /// or by index (`"0"`, `"1"`, …), the way `COPY --from` refers to stages.
    pub fn stage(&self, name_or_index: &str) -> Option<&Stage> {
        let lowered = name_or_index.to_ascii_lowercase();
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lowered.as_str()))
            .or_else(|| {
                name_or_index
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| self.stages.get(i))
            })
    }
}

/// Parser directives (`# syntax=`, `# escape=`, `# check=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// The `syntax` directive, recorded but otherwise ignored.
    pub syntax: Option<String>,
    /// The escape character: `\` by default, or `` ` ``.
    pub escape: char,
    /// The `check` directive, recorded but otherwise ignored.
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: crate::lexer::DEFAULT_ESCAPE,
            check: None,
        }
    }
}

/// A non-fatal parser finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// 1-based line the warning refers to.
    pub line: usize,
    /// Human-readable text.
    pub message: String,
}

/// One `FROM` and the instructions that follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The `AS name`, lowercased.
    pub name: Option<String>,
    /// The base image reference as written (may contain `$ARG`s).
    pub base: String,
    /// The `--platform` value as written.
    pub platform: Option<String>,
    /// 1-based line of the `FROM` instruction.
    pub line: usize,
    /// The instructions of this stage, in order.
    pub instructions: Vec<Instruction>,
}

/// One instruction with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// 1-based line where it ends (continuations and heredocs included).
    pub end_line: usize,
    /// The logical line after joining continuations (for `ONBUILD` triggers,
    /// the trigger expression as Docker stores it in the image config).
    pub original: String,
    /// What the instruction does.
    pub command: Command,
}

/// A Dockerfile instruction other than `FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `ADD` (same shape as `COPY`; only `ADD` accepts `--checksum`,
    /// `--keep-git-dir` and `--unpack`).
    Add(CopyFiles),
    /// `ARG name[=default] ...`
    Arg(Vec<ArgDef>),
    /// `CMD`
    Cmd(CommandLine),
    /// `COPY`
    Copy(CopyFiles),
    /// `ENTRYPOINT`
    Entrypoint(CommandLine),
    /// `ENV k=v ...` or the legacy `ENV k v`.
    Env(Vec<KeyValue>),
    /// `EXPOSE port[/proto] ...`
    Expose(Vec<String>),
    /// `HEALTHCHECK`
    Healthcheck(Healthcheck),
    /// `LABEL k=v ...`
    Label(Vec<KeyValue>),
    /// `MAINTAINER name` (deprecated).
    Maintainer(String),
    /// `ONBUILD <instruction>`: the trigger, parsed.
    Onbuild(Box<Instruction>),
    /// `RUN`
    Run(Run),
    /// `SHELL ["executable", "param", ...]` (JSON form only).
    Shell(Vec<String>),
    /// `STOPSIGNAL signal`
    StopSignal(String),
    /// `USER user[:group]`
    User(String),
    /// `VOLUME` paths (JSON array or whitespace-separated list).
    Volume(Vec<String>),
    /// `WORKDIR path`
    Workdir(String),
}

impl Command {
    /// The instruction keyword in upper case, e.g. `"RUN"`.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Add(_) => "ADD",
            Command::Arg(_) => "ARG",
            Command::Cmd(_) => "CMD",
            Command::Copy(_) => "COPY",
            Command::Entrypoint(_) => "ENTRYPOINT",
            Command::Env(_) => "ENV",
            Command::Expose(_) => "EXPOSE",
            Command::Healthcheck(_) => "HEALTHCHECK",
            Command::Label(_) => "LABEL",
            Command::Maintainer(_) => "MAINTAINER",
            Command::Onbuild(_) => "ONBUILD",
            Command::Run(_) => "RUN",
            Command::Shell(_) => "SHELL",
            Command::StopSignal(_) => "STOPSIGNAL",
            Command::User(_) => "USER",
            Command::Volume(_) => "VOLUME",
            Command::Workdir(_) => "WORKDIR",
        }
    }
}

/// A command in exec (JSON array) or shell form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// `["executable", "arg", ...]`: run directly, no shell.
    Exec(Vec<String>),
    /// `command text`: run through the stage's `SHELL` (default `/bin/sh -c`).
    Shell(String),
}

/// `RUN` and its flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The command. A shell form may reference heredocs (`<<EOF`).
    pub command: CommandLine,
    /// Heredoc bodies, in the order they appear on the line.
    pub heredocs: Vec<Heredoc>,
    /// Raw `--mount=` values (e.g. `type=cache,target=/root/.cache`).
    pub mounts: Vec<String>,
    /// Raw `--network=` value.
    pub network: Option<String>,
    /// Raw `--security=` value.
    pub security: Option<String>,
}

impl Run {
    /// The text to hand to the shell, following Docker: without heredocs the
    /// shell-form command; with a lone `<<EOF` the (tab-stripped) body (Docker
    /// runs a body starting with `#!` as a script file instead); in any other
    /// heredoc case the command line followed by each body and its
    /// terminator, for the shell to interpret. `None` for the exec form.
    pub fn script(&self) -> Option<String> {
        let CommandLine::Shell(cmd) = &self.command else {
            return None;
        };
        if self.heredocs.is_empty() {
            return Some(cmd.clone());
        }
        if let [only] = self.heredocs.as_slice() {
            if crate::parser::parse_heredoc_word(cmd)
                .ok()
                .flatten()
                .is_some()
            {
                return Some(only.data().into_owned());
            }
        }
        let mut full = cmd.clone();
        for doc in &self.heredocs {
            full.push('\n');
            full.push_str(&doc.content);
            full.push_str(&doc.name);
        }
        Some(full)
    }
}

/// A here-document attached to `RUN`, `COPY` or `ADD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word with quotes removed (for `COPY`, the file name).
    pub name: String,
    /// File descriptor prefix, as in `3<<EOF` (0 when absent).
    pub fd: u32,
    /// False when (part of) the delimiter was quoted: no `$` expansion.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from body lines.
    pub chomp: bool,
    /// The body exactly as written, each line with its line ending.
    pub content: String,
}

impl Heredoc {
    /// The body with leading tabs removed from each line when `chomp` is set.
    pub fn data(&self) -> Cow<'_, str> {
        if !self.chomp {
            return Cow::Borrowed(&self.content);
        }
        let mut out = String::with_capacity(self.content.len());
        for line in self.content.split_inclusive('\n') {
            out.push_str(line.trim_start_matches('\t'));
        }
        Cow::Owned(out)
    }
}

/// `COPY` / `ADD` arguments and flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFiles {
    /// Source paths, URLs or globs (heredoc sources are in `heredocs`).
    pub sources: Vec<String>,
    /// Inline sources (`COPY <<EOF /dest`); each becomes a file named after
    /// its delimiter.
    pub heredocs: Vec<Heredoc>,
    /// The destination.
    pub dest: String,
    /// `--from=` stage, image or context name (`COPY` only; not expanded).
    pub from: Option<String>,
    /// `--chown=user[:group]`
    pub chown: Option<String>,
    /// `--chmod=mode`
    pub chmod: Option<String>,
    /// `--link`
    pub link: bool,
    /// `--parents` (`COPY` only)
    pub parents: bool,
    /// `--exclude=` patterns.
    pub exclude: Vec<String>,
    /// `--checksum=` (`ADD` only).
    pub checksum: Option<String>,
    /// `--keep-git-dir` (`ADD` only), when given.
    pub keep_git_dir: Option<bool>,
    /// `--unpack` (`ADD` only), when given.
    pub unpack: Option<bool>,
}

/// A `KEY=value` pair of `ENV` or `LABEL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key as written.
    pub key: String,
    /// The value as written (quotes kept until expansion).
    pub value: String,
}

/// One `ARG` declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDef {
    /// The argument name.
    pub name: String,
    /// The default value as written, if any.
    pub default: Option<String>,
}

/// `HEALTHCHECK`
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any inherited check.
    None,
    /// `HEALTHCHECK [options] CMD command`
    Cmd(HealthcheckCmd),
}

/// The options and command of `HEALTHCHECK CMD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthcheckCmd {
    /// The probe (`CMD` for exec form, `CMD-SHELL` for shell form in Docker's
    /// image config).
    pub test: CommandLine,
    /// `--interval`
    pub interval: Option<Duration>,
    /// `--timeout`
    pub timeout: Option<Duration>,
    /// `--start-period`
    pub start_period: Option<Duration>,
    /// `--start-interval`
    pub start_interval: Option<Duration>,
    /// `--retries`
    pub retries: Option<u32>,
}
