//! Error types of the Dockerfile parser and of instruction expansion.

use crate::lexer::ExpandError;

/// A Dockerfile could not be parsed. The message names the 1-based line,
/// like Docker's `dockerfile parse error on line N: ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dockerfile parse error on line {line}: {kind}")]
pub struct ParseError {
    /// 1-based line where the offending instruction starts.
    pub line: usize,
    /// What went wrong.
    pub kind: ParseErrorKind,
}

/// The reason a Dockerfile could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    /// An instruction keyword Docker does not know.
    #[error("unknown instruction: {0}")]
    UnknownInstruction(String),
    /// End of file before a heredoc's terminator line.
    #[error("unterminated heredoc")]
    UnterminatedHeredoc,
    /// An instruction other than `ARG` before the first `FROM`.
    #[error("no build stage in current context: {0} must come after a FROM instruction")]
    MissingFrom(String),
    /// Only global `ARG`s, no `FROM`.
    #[error("dockerfile contains no stages to build")]
    NoStages,
    /// Nothing but comments and blank lines.
    #[error("file with no instructions")]
    Empty,
    /// A parser directive given twice.
    #[error("only one {0} parser directive can be used")]
    DuplicateDirective(String),
    /// `# escape=` with something other than `` ` `` or `\`.
    #[error("invalid escape token '{0}' does not match ` or \\")]
    InvalidEscapeToken(String),
    /// A `--flag` the instruction does not accept.
    #[error("unknown flag: {0}")]
    UnknownFlag(String),
    /// A flag given with a bad, missing or duplicate value.
    #[error("{0}")]
    BadFlag(String),
    /// Any other malformed instruction (argument count, JSON form, ...).
    #[error("{0}")]
    Invalid(String),
}

impl ParseErrorKind {
    pub(crate) fn at(self, line: usize) -> ParseError {
        ParseError { line, kind: self }
    }
}

/// Expanding an instruction's variables failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Dockerfile line {line}: {source}")]
pub struct InstructionExpandError {
    /// 1-based line of the instruction.
    pub line: usize,
    /// The failing word and reason.
    pub source: ExpandError,
}
