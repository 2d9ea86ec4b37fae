//! Docker-style generated container names (`adjective_surname`).

const LEFT: &[&str] = &[
    "admiring", "brave", "busy", "calm", "clever", "cool", "dazzling", "eager", "elegant", "epic",
    "festive", "focused", "gallant", "happy", "jolly", "keen", "kind", "lucid", "modest", "nifty",
    "quirky", "relaxed", "serene", "sharp", "stoic", "sweet", "tender", "vibrant", "wizardly",
    "zen",
];
const RIGHT: &[&str] = &[
    "babbage", "curie", "darwin", "dijkstra", "einstein", "euler", "faraday", "feynman", "gauss",
    "hopper", "hypatia", "johnson", "kepler", "knuth", "lamarr", "lovelace", "mccarthy", "meitner",
    "newton", "noether", "pascal", "ritchie", "shannon", "thompson", "torvalds", "turing",
    "wozniak",
];

pub fn generate(seed: &str, attempt: usize) -> String {
    let n = u64::from_str_radix(&seed[..seed.len().min(12)], 16).unwrap_or(0) as usize;
    let base = format!(
        "{}_{}",
        LEFT[n % LEFT.len()],
        RIGHT[(n / LEFT.len()) % RIGHT.len()]
    );
    if attempt == 0 {
        base
    } else {
        format!("{base}{attempt}")
    }
}

/// Docker's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() > 1
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// A container name the user gave, with dockerd's refusal.
pub fn check_container_name(name: &str) -> crate::Result<()> {
    if valid(name) {
        return Ok(());
    }
    Err(crate::EngineError::InvalidArgument(format!(
        "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_stable_valid_and_numbered_on_retry() {
        let first = generate("0123456789abcdef", 0);
        assert_eq!(first, generate("0123456789abcdef", 0));
        assert!(valid(&first), "{first}");
        assert_eq!(generate("0123456789abcdef", 2), format!("{first}2"));
        assert!(valid(&generate("", 0)), "a short seed still names");
    }

    #[test]
    fn docker_name_rule() {
        for good in ["web", "a1", "web_1.x-y", "9lives"] {
            assert!(valid(good), "{good}");
        }
        for bad in ["", "a", "-web", "_web", "web/1", "wéb", "web 1"] {
            assert!(!valid(bad), "{bad}");
        }
    }
}
