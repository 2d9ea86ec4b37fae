//! Errors, and the key paths / source files they point at.
//!
//! Every error about the content of a compose file carries the file (as the
//! user would name it), the key path inside it ("services.web.ports[0]") and,
//! when it can be found, the line.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::locate;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ComposeError {
    /// No `-f` files and none of the default names exist in the directory.
    #[error(
        "no configuration file provided: none of compose.yaml, compose.yml, \
         docker-compose.yml, docker-compose.yaml found in {}",
        .dir.display()
    )]
    NoConfigFile { dir: PathBuf },

    /// A file could not be read (a compose file, an env file, an `include`).
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The YAML itself is malformed (the message carries the line and column).
    #[error("{file}: {message}")]
    Syntax {
        file: String,
        line: Option<usize>,
        message: String,
    },

    /// A key the Compose Specification (or this implementation) does not know.
    #[error("{file}: {key}: key {name:?} is not supported{}", line_suffix(.line))]
    UnsupportedKey {
        file: String,
        key: String,
        name: String,
        line: Option<usize>,
    },

    /// `${VAR:?message}` / `${VAR?message}` with the variable unset (or empty).
    #[error(
        "{file}: {key}: required variable {variable} is missing a value{}{}",
        msg_suffix(.message),
        line_suffix(.line)
    )]
    MissingVariable {
        file: String,
        key: String,
        variable: String,
        message: String,
        line: Option<usize>,
    },

    /// A value of the wrong type or form, or a reference that does not resolve.
    #[error("{}{message}{}", key_prefix(.file, .key), line_suffix(.line))]
    Invalid {
        file: String,
        key: String,
        message: String,
        line: Option<usize>,
    },

    /// `depends_on` (or `network_mode: service:x`) loops back on itself.
    #[error("{file}: {key}: dependency cycle detected: {}", .cycle.join(" -> "))]
    DependencyCycle {
        file: String,
        key: String,
        /// The services on the cycle, the first repeated at the end.
        cycle: Vec<String>,
    },

    /// The project name given (or derived from the directory) is unusable.
    #[error(
        "invalid project name {name:?} (from {origin}): it must contain only lower-case \
         letters, digits, '-' and '_', and start with a letter or a digit"
    )]
    ProjectName { name: String, origin: String },

    /// A malformed line in a `.env` / `--env-file` / `env_file` file.
    #[error("{}:{line}: {message}", .file.display())]
    EnvFile {
        file: PathBuf,
        line: usize,
        message: String,
    },
}

fn line_suffix(line: &Option<usize>) -> String {
    match line {
        Some(n) => format!(" (line {n})"),
        None => String::new(),
    }
}

fn msg_suffix(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

fn key_prefix(file: &str, key: &str) -> String {
    if key.is_empty() {
        format!("{file}: ")
    } else {
        format!("{file}: {key}: ")
    }
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// Where a value sits in a compose file: `services.web.ports[0]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyPath(pub(crate) Vec<Seg>);

impl KeyPath {
    pub(crate) fn root() -> Self {
        KeyPath(Vec::new())
    }

    pub(crate) fn key(&self, k: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_string()));
        p
    }

    pub(crate) fn idx(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }

    /// The last key segment (the name an unsupported-key error quotes).
    pub(crate) fn last_key(&self) -> &str {
        self.0
            .iter()
            .rev()
            .find_map(|s| match s {
                Seg::Key(k) => Some(k.as_str()),
                Seg::Index(_) => None,
            })
            .unwrap_or("")
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A compose file as errors refer to it: its display name and its text (kept
/// to find the line of a key path).
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) display: String,
    pub(crate) path: PathBuf,
    pub(crate) text: Arc<str>,
}

impl Source {
    pub(crate) fn line(&self, path: &KeyPath) -> Option<usize> {
        locate::find_line(&self.text, path)
    }

    pub(crate) fn invalid(&self, path: &KeyPath, message: impl Into<String>) -> ComposeError {
        ComposeError::Invalid {
            file: self.display.clone(),
            key: path.to_string(),
            message: message.into(),
            line: self.line(path),
        }
    }

    pub(crate) fn unsupported(&self, path: &KeyPath) -> ComposeError {
        ComposeError::UnsupportedKey {
            file: self.display.clone(),
            key: path.to_string(),
            name: path.last_key().to_string(),
            line: self.line(path),
        }
    }
}

pub(crate) type Result<T, E = ComposeError> = std::result::Result<T, E>;
