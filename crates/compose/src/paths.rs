//! Host path handling: `~` expansion, absolutising and lexical cleaning (as
//! Go's `filepath.Abs` does; symlinks are not resolved, the files need not
//! exist).

use std::path::{Component, Path, PathBuf};

use crate::envfile::Env;

/// `a/./b/../c` to `a/c`; `..` above the root stays at the root.
pub(crate) fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() && !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// `p` made absolute against `base` (itself absolute), cleaned.
pub(crate) fn absolutize(p: &Path, base: &Path) -> PathBuf {
    if p.is_absolute() {
        clean(p)
    } else {
        clean(&base.join(p))
    }
}

/// A host path from a compose file: `~` is the user's home (HOME from the
/// environment), relative paths resolve against `base`.
pub(crate) fn host_path(s: &str, base: &Path, env: &Env) -> Result<String, String> {
    let expanded;
    let s = if s == "~" || s.starts_with("~/") {
        let home = env
            .get("HOME")
            .ok_or_else(|| format!("cannot expand {s:?}: HOME is not set"))?;
        expanded = format!("{home}{}", &s[1..]);
        expanded.as_str()
    } else {
        s
    };
    Ok(absolutize(Path::new(s), base)
        .to_string_lossy()
        .into_owned())
}

/// A build context that is a URL (git repository, tarball) is not a path.
pub(crate) fn is_remote_context(s: &str) -> bool {
    s.contains("://") || s.starts_with("git@") || s.starts_with("github.com/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_and_absolutizes() {
        assert_eq!(clean(Path::new("/a/./b/../c/")), PathBuf::from("/a/c"));
        assert_eq!(clean(Path::new("/../x")), PathBuf::from("/x"));
        assert_eq!(
            absolutize(Path::new("./data/../d2"), Path::new("/proj")),
            PathBuf::from("/proj/d2")
        );
        let env = Env::from_pairs([("HOME", "/home/u")]);
        assert_eq!(
            host_path("~/x", Path::new("/p"), &env).unwrap(),
            "/home/u/x"
        );
        assert_eq!(host_path("../y", Path::new("/p/q"), &env).unwrap(), "/p/y");
        assert!(host_path("~/x", Path::new("/p"), &Env::default()).is_err());
    }
}
