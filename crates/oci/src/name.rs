//! Validation of repository names, tags and digests.
//!
//! Everything that reaches the filesystem from a request passes through one
//! of these validators first, which is what keeps path traversal (`..`,
//! absolute paths, `%2e`, empty components) out of the storage layer.

/// Longest repository name accepted (the limit Docker's registry uses).
pub const MAX_NAME_LEN: usize = 255;

/// Longest tag accepted by the spec (`[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`).
pub const MAX_TAG_LEN: usize = 128;

/// Returns true if `name` matches the distribution spec's repository name
/// grammar `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`
/// and is at most [`MAX_NAME_LEN`] bytes long.
pub fn is_valid_repository_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_LEN && name.split('/').all(is_valid_component)
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let mut i = 0;
    loop {
        // An alphanumeric run of at least one character.
        let start = i;
        while i < b.len() && is_alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        // A separator: ".", "_", "__" or "-+".
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// Returns true if `tag` matches `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    if b.is_empty() || b.len() > MAX_TAG_LEN {
        return false;
    }
    let first_ok = b[0].is_ascii_alphanumeric() || b[0] == b'_';
    first_ok
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for ok in [
            "a",
            "library/ubuntu",
            "a.b",
            "a_b",
            "a__b",
            "a---b",
            "foo/bar/baz-1.2_3",
            "0",
        ] {
            assert!(is_valid_repository_name(ok), "{ok} should be valid");
        }
        for bad in [
            "", "A", "..", "a/../b", "../etc", "/a", "a/", "a//b", "a..b", "a.-b", "a___b", "_a",
            "a_", "-a", "a.", "a b", "a%2e", "_catalog",
        ] {
            assert!(!is_valid_repository_name(bad), "{bad} should be invalid");
        }
        assert!(!is_valid_repository_name(&"a".repeat(256)));
        assert!(is_valid_repository_name(&"a".repeat(255)));
    }

    #[test]
    fn tags() {
        assert!(is_valid_tag("latest"));
        assert!(is_valid_tag("_x"));
        assert!(is_valid_tag("v1.2.3-rc_1"));
        assert!(is_valid_tag(&"a".repeat(128)));
        assert!(!is_valid_tag(&"a".repeat(129)));
        assert!(!is_valid_tag(".hidden"));
        assert!(!is_valid_tag("-x"));
        assert!(!is_valid_tag(""));
        assert!(!is_valid_tag("a/b"));
        assert!(!is_valid_tag("a:b"));
    }
}
