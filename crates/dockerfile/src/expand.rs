//! Variable substitution applied to whole instructions, per the Dockerfile
//! reference: `ADD`, `COPY`, `ENV`, `EXPOSE`, `FROM`, `LABEL`, `STOPSIGNAL`,
//! `USER`, `VOLUME`, `WORKDIR` (and `ARG`, as buildkit does) are expanded by
//! the builder. `RUN`, `CMD`, `ENTRYPOINT`, `SHELL`, `HEALTHCHECK`,
//! `MAINTAINER` and `ONBUILD` are left alone: their variables belong to the
//! shell at run time, or to the child build for `ONBUILD`.

use crate::ast::{ArgDef, Command, CopyFiles, Heredoc, Instruction, KeyValue, Stage};
use crate::error::InstructionExpandError;
use crate::lexer::{Env, ExpandError, Lexer};

impl Instruction {
    /// Returns a copy with variables expanded and quotes removed where Docker
    /// does so (see [`Command::expand`]). `env` is the environment in effect
    /// before this instruction (stage `ENV`s plus `ARG`s in scope); `escape` is
    /// the Dockerfile's escape character.
    pub fn expand<E: Env + ?Sized>(
        &self,
        env: &E,
        escape: char,
    ) -> Result<Instruction, InstructionExpandError> {
        let command =
            self.command
                .expand(env, escape)
                .map_err(|source| InstructionExpandError {
                    line: self.line,
                    source,
                })?;
        Ok(Instruction {
            line: self.line,
            end_line: self.end_line,
            original: self.original.clone(),
            command,
        })
    }
}

impl Command {
    /// Whether the builder substitutes variables in this instruction.
    pub fn expands_variables(&self) -> bool {
        matches!(
            self,
            Command::Add(_)
                | Command::Arg(_)
                | Command::Copy(_)
                | Command::Env(_)
                | Command::Expose(_)
                | Command::Label(_)
                | Command::StopSignal(_)
                | Command::User(_)
                | Command::Volume(_)
                | Command::Workdir(_)
        )
    }

    /// Expands variables the way Docker's builder does:
    ///
    /// - `ENV`/`LABEL`: keys and values, each as one word (quotes removed,
    ///   whitespace kept); all pairs see the same `env`, so
    ///   `ENV a=1 b=$a` uses the *previous* `a`.
    /// - `ARG`: names and defaults.
    /// - `COPY`/`ADD`: every source, the destination, `--chown`, `--chmod`,
    ///   `--checksum`; heredoc bodies whose delimiter was not quoted (quotes
    ///   inside a body stay literal). Heredoc bodies come back final: tabs
    ///   chomped, `chomp` and `expand` cleared. `--from` is not expanded.
    /// - `EXPOSE`: each item expanded and split into words.
    /// - `VOLUME`, `USER`, `WORKDIR`, `STOPSIGNAL`: each item as one word.
    /// - anything else is returned unchanged.
    pub fn expand<E: Env + ?Sized>(&self, env: &E, escape: char) -> Result<Command, ExpandError> {
        let lex = Lexer::new(escape);
        let word = |w: &str| lex.process_word(w, env);
        let opt = |w: &Option<String>| w.as_deref().map(word).transpose();
        let pairs = |kvs: &[KeyValue]| {
            kvs.iter()
                .map(|kv| {
                    Ok(KeyValue {
                        key: word(&kv.key)?,
                        value: word(&kv.value)?,
                    })
                })
                .collect::<Result<Vec<_>, ExpandError>>()
        };
        let copy = |c: &CopyFiles, is_add: bool| -> Result<CopyFiles, ExpandError> {
            Ok(CopyFiles {
                sources: c
                    .sources
                    .iter()
                    .map(|s| word(s))
                    .collect::<Result<_, _>>()?,
                heredocs: c
                    .heredocs
                    .iter()
                    .map(|h| expand_heredoc(h, env))
                    .collect::<Result<_, _>>()?,
                dest: word(&c.dest)?,
                from: c.from.clone(),
                chown: opt(&c.chown)?,
                chmod: opt(&c.chmod)?,
                link: c.link,
                parents: c.parents,
                exclude: c.exclude.clone(),
                checksum: if is_add {
                    opt(&c.checksum)?
                } else {
                    c.checksum.clone()
                },
                keep_git_dir: c.keep_git_dir,
                unpack: c.unpack,
            })
        };
        Ok(match self {
            Command::Env(kvs) => Command::Env(pairs(kvs)?),
            Command::Label(kvs) => Command::Label(pairs(kvs)?),
            Command::Arg(defs) => Command::Arg(
                defs.iter()
                    .map(|d| {
                        Ok(ArgDef {
                            name: word(&d.name)?,
                            default: opt(&d.default)?,
                        })
                    })
                    .collect::<Result<_, ExpandError>>()?,
            ),
            Command::Copy(c) => Command::Copy(copy(c, false)?),
            Command::Add(c) => Command::Add(copy(c, true)?),
            Command::Expose(ports) => {
                let mut out = Vec::new();
                for p in ports {
                    out.extend(lex.process_words(p, env)?);
                }
                Command::Expose(out)
            }
            Command::Volume(paths) => {
                Command::Volume(paths.iter().map(|p| word(p)).collect::<Result<_, _>>()?)
            }
            Command::User(u) => Command::User(word(u)?),
            Command::Workdir(w) => Command::Workdir(word(w)?),
            Command::StopSignal(s) => Command::StopSignal(word(s)?),
            other => other.clone(),
        })
    }
}

/// A `COPY`/`ADD` heredoc body as the file will be written.
fn expand_heredoc<E: Env + ?Sized>(doc: &Heredoc, env: &E) -> Result<Heredoc, ExpandError> {
    let data = doc.data();
    let content = if doc.expand {
        // Docker always uses `\` here, whatever the escape directive says.
        Lexer::new('\\')
            .skip_process_quotes(true)
            .process_word(&data, env)?
    } else {
        data.into_owned()
    };
    Ok(Heredoc {
        name: doc.name.clone(),
        fd: doc.fd,
        expand: false,
        chomp: false,
        content,
    })
}

impl Stage {
    /// Expands the base image and `--platform` of the `FROM` line. `env`
    /// holds the global `ARG`s (and build args / automatic platform args).
    pub fn expand_from<E: Env + ?Sized>(
        &self,
        env: &E,
        escape: char,
    ) -> Result<(String, Option<String>), InstructionExpandError> {
        let lex = Lexer::new(escape);
        let at_line = |source| InstructionExpandError {
            line: self.line,
            source,
        };
        let base = lex.process_word(&self.base, env).map_err(at_line)?;
        let platform = self
            .platform
            .as_deref()
            .map(|p| lex.process_word(p, env))
            .transpose()
            .map_err(at_line)?;
        Ok((base, platform))
    }
}
