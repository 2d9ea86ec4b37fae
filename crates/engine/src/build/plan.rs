//! What a build will do before it does it: the stages a target needs,
//! argv of RUN/CMD forms, health checks, relative paths.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use berth_dockerfile::{Command, CommandLine, CopyFiles, Dockerfile};

use super::*;

pub(super) fn shell_of(shell: &[String]) -> Vec<String> {
    if shell.is_empty() {
        vec!["/bin/sh".into(), "-c".into()]
    } else {
        shell.to_vec()
    }
}

pub(super) fn command_argv(cl: &CommandLine, shell: &[String]) -> Vec<String> {
    match cl {
        CommandLine::Exec(v) => v.clone(),
        CommandLine::Shell(s) => {
            let mut argv = shell_of(shell);
            argv.push(s.clone());
            argv
        }
    }
}

pub(super) fn healthcheck_of(h: &berth_dockerfile::Healthcheck) -> crate::model::Healthcheck {
    match h {
        berth_dockerfile::Healthcheck::None => crate::model::Healthcheck {
            test: vec!["NONE".into()],
            ..Default::default()
        },
        berth_dockerfile::Healthcheck::Cmd(c) => {
            let test = match &c.test {
                CommandLine::Exec(v) => {
                    let mut t = vec!["CMD".to_string()];
                    t.extend(v.iter().cloned());
                    t
                }
                CommandLine::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
            };
            let ns = |d: Option<std::time::Duration>| {
                d.map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
                    .unwrap_or(0)
            };
            crate::model::Healthcheck {
                test,
                interval: ns(c.interval),
                timeout: ns(c.timeout),
                start_period: ns(c.start_period),
                start_interval: ns(c.start_interval),
                retries: i64::from(c.retries.unwrap_or(0)),
            }
        }
    }
}

/// The stages to build for `target` (default: the last), dependencies first.
pub(super) fn needed_stages(
    dockerfile: &Dockerfile,
    target: Option<&str>,
) -> std::result::Result<Vec<usize>, BuildError> {
    let last = dockerfile
        .stages
        .len()
        .checked_sub(1)
        .ok_or_else(|| BuildError {
            line: None,
            message: "Dockerfile has no stages".into(),
        })?;
    let target_index = match target.filter(|t| !t.is_empty()) {
        Some(t) => dockerfile
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str()))
            .ok_or_else(|| BuildError {
                line: None,
                message: format!("failed to reach build target {t} in Dockerfile"),
            })?,
        None => last,
    };
    let find = |name: &str, before: usize| -> Option<usize> {
        let lowered = name.to_ascii_lowercase();
        dockerfile.stages[..before]
            .iter()
            .position(|s| s.name.as_deref() == Some(lowered.as_str()))
            .or_else(|| name.parse::<usize>().ok().filter(|i| *i < before))
    };
    let mut needed = BTreeSet::new();
    let mut stack = vec![target_index];
    while let Some(i) = stack.pop() {
        if !needed.insert(i) {
            continue;
        }
        let stage = &dockerfile.stages[i];
        if let Some(dep) = find(&stage.base, i) {
            stack.push(dep);
        }
        for ins in &stage.instructions {
            if let Command::Copy(CopyFiles {
                from: Some(from), ..
            })
            | Command::Add(CopyFiles {
                from: Some(from), ..
            }) = &ins.command
            {
                if let Some(dep) = find(from, i) {
                    stack.push(dep);
                }
            }
        }
    }
    Ok(needed.into_iter().collect())
}

/// A relative path with no `..`, or `None`.
pub(super) fn clean_relative(p: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}
