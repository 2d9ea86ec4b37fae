//! Validation of names that end up in kernel requests or nft rule text.
//!
//! Everything interpolated into an nft script goes through one of these, so
//! no caller-supplied string can inject rule text.

use crate::error::{Error, Result};

/// Checks a Linux interface name: 1 to 15 characters from `[a-zA-Z0-9_.-]`,
/// and not `.` / `..`.
pub fn validate_ifname(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 15 {
        return Err(Error::invalid(
            "interface name",
            name,
            "must be 1 to 15 characters",
        ));
    }
    if name == "." || name == ".." {
        return Err(Error::invalid("interface name", name, "reserved name"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(Error::invalid(
            "interface name",
            name,
            "allowed characters are [a-zA-Z0-9_.-]",
        ));
    }
    Ok(())
}

/// Checks a port-publishing owner id (a container id): 1 to 64 hex digits.
pub fn validate_owner(owner: &str) -> Result<()> {
    if owner.is_empty() || owner.len() > 64 {
        return Err(Error::invalid("owner", owner, "must be 1 to 64 hex digits"));
    }
    if !owner.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::invalid("owner", owner, "must be hex digits"));
    }
    Ok(())
}

/// Checks an nftables table name chosen by the caller: a letter followed by
/// up to 63 characters from `[a-zA-Z0-9_]`.
pub fn validate_table_name(name: &str) -> Result<()> {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() => {}
        _ => {
            return Err(Error::invalid(
                "nftables table name",
                name,
                "must start with a letter",
            ))
        }
    }
    if name.len() > 64 {
        return Err(Error::invalid(
            "nftables table name",
            name,
            "must be at most 64 characters",
        ));
    }
    if !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(Error::invalid(
            "nftables table name",
            name,
            "allowed characters are [a-zA-Z0-9_]",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifnames() {
        for ok in [
            "eth0",
            "br-0123456789ab",
            "a",
            "veth1.2_x-y",
            "123456789012345",
        ] {
            assert!(validate_ifname(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1234567890123456",
            "br 0",
            "br\"0",
            "br;0",
            "br/0",
            ".",
            "..",
            "br\n",
            "brü",
            "a{b}",
        ] {
            assert!(validate_ifname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn owners() {
        assert!(validate_owner("abc123").is_ok());
        assert!(validate_owner(&"f".repeat(64)).is_ok());
        assert!(validate_owner(&"f".repeat(65)).is_err());
        assert!(validate_owner("").is_err());
        assert!(validate_owner("xyz").is_err());
        assert!(validate_owner("ab cd").is_err());
        assert!(validate_owner("ab;flush ruleset").is_err());
    }

    #[test]
    fn tables() {
        assert!(validate_table_name("berth").is_ok());
        assert!(validate_table_name("berth_bt123x4").is_ok());
        assert!(validate_table_name("1berth").is_err());
        assert!(validate_table_name("").is_err());
        assert!(validate_table_name("ber-th").is_err());
        assert!(validate_table_name("b; flush ruleset").is_err());
        assert!(validate_table_name(&"b".repeat(65)).is_err());
    }
}
