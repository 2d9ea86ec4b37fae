//! berth-dockerfile: the Dockerfile language of Docker's builder, without
//! building anything.
//!
//! - [`parse`] turns Dockerfile text into a [`Dockerfile`]: parser directives,
//!   the global `ARG`s before the first `FROM`, and a list of [`Stage`]s, each
//!   holding typed [`Instruction`]s ([`Command`] variants) that remember their
//!   1-based source line. Arguments are stored as written.
//! - [`Instruction::expand`] / [`Stage::expand_from`] substitute variables the
//!   way the builder does when it reaches an instruction; the underlying
//!   lexer is available as [`expand`], [`expand_words`] and [`Lexer`].
//! - [`IgnoreMatcher`] applies `.dockerignore` rules to context paths.
//!
//! Modules: `parser` (lines, directives, heredocs, flags), `ast` (types),
//! `lexer` (quotes, `$VAR` forms, word splitting), `expand` (which
//! instructions get substitution), `ignore` (`.dockerignore`).
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use berth_dockerfile::{parse, Command, KeyValue};
//!
//! let df = parse("FROM alpine AS base\nENV A=1 B=\"$A 2\"\nRUN echo $A\n")?;
//! let stage = &df.stages[0];
//! assert_eq!(stage.name.as_deref(), Some("base"));
//! assert_eq!(stage.instructions[1].line, 3);
//!
//! let env = vec![("A", "x")];
//! let expanded = stage.instructions[0].expand(&env, df.escape())?;
//! assert_eq!(
//!     expanded.command,
//!     Command::Env(vec![
//!         KeyValue { key: "A".into(), value: "1".into() },
//!         KeyValue { key: "B".into(), value: "x 2".into() },
//!     ])
//! );
//! # Ok(())
//! # }
//! ```

mod ast;
mod error;
mod expand;
mod ignore;
mod lexer;
mod parser;

pub use ast::{
    ArgDef, Command, CommandLine, CopyFiles, Directives, Dockerfile, Healthcheck, HealthcheckCmd,
    Heredoc, Instruction, KeyValue, Run, Stage, Warning,
};
pub use error::{InstructionExpandError, ParseError, ParseErrorKind};
pub use ignore::{clean_path, read_patterns, IgnoreError, IgnoreMatcher};
pub use lexer::{
    expand, expand_words, EmptyEnv, Env, ExpandError, ExpandErrorKind, Lexer, DEFAULT_ESCAPE,
};
pub use parser::parse;
pub use parser::parse_go_duration;
