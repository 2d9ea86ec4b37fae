//! The `filters` query parameter of the list, prune and events endpoints.

use std::collections::BTreeMap;

/// Docker's filters: each key with the values asked for. The docker CLI writes
/// them as `{"key": {"value": true}}`; older clients as `{"key": ["value"]}`;
/// dockerd reads both, and so does [`Filters::parse`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    pub fn new() -> Filters {
        Filters::default()
    }

    /// These filters and `key=value`.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Filters {
        self.add(key, value);
        self
    }

    /// Adds `key=value`, once.
    pub fn add(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        let values = self.0.entry(key.to_string()).or_default();
        if !values.contains(&value) {
            values.push(value);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Each key with its values.
    pub fn into_inner(self) -> BTreeMap<String, Vec<String>> {
        self.0
    }

    /// The query parameter's value, as the docker CLI writes it.
    pub fn to_query(&self) -> String {
        let docker: BTreeMap<&str, BTreeMap<&str, bool>> = self
            .0
            .iter()
            .map(|(k, values)| {
                (
                    k.as_str(),
                    values.iter().map(|v| (v.as_str(), true)).collect(),
                )
            })
            .collect();
        // A map of strings to maps of strings to booleans always encodes.
        serde_json::to_string(&docker).unwrap_or_default()
    }

    /// Reads either form; the error says what is wrong, for a 400.
    pub fn parse(raw: &str) -> Result<Filters, String> {
        if raw.is_empty() {
            return Ok(Filters::new());
        }
        let v: serde_json::Value =
            serde_json::from_str(raw).map_err(|e| format!("invalid filters: {e}"))?;
        let Some(obj) = v.as_object() else {
            return Err("invalid filters: not an object".into());
        };
        let mut out = Filters::new();
        for (k, values) in obj {
            match values {
                serde_json::Value::Array(list) => {
                    for value in list.iter().filter_map(|x| x.as_str()) {
                        out.add(k, value);
                    }
                }
                serde_json::Value::Object(set) => {
                    for value in set.keys() {
                        out.add(k, value.as_str());
                    }
                }
                _ => return Err("invalid filters".into()),
            }
            // A key given with no values is still a key that was asked for.
            out.0.entry(k.clone()).or_default();
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_read_and_docker_s_is_written() {
        let f = Filters::new()
            .with("label", "a=b")
            .with("label", "c")
            .with("status", "exited")
            .with("label", "a=b");
        let text = f.to_query();
        assert_eq!(
            text,
            r#"{"label":{"a=b":true,"c":true},"status":{"exited":true}}"#
        );
        assert_eq!(Filters::parse(&text).unwrap(), f);
        let old = Filters::parse(r#"{"label":["a=b","c"],"status":["exited"]}"#).unwrap();
        assert_eq!(old, f);
        assert_eq!(Filters::parse("").unwrap(), Filters::new());
        assert_eq!(
            Filters::parse(r#"{"dangling":[]}"#).unwrap().into_inner()["dangling"],
            Vec::<String>::new()
        );
        for bad in ["[]", "{", r#"{"label":"a"}"#, "null"] {
            assert!(Filters::parse(bad).is_err(), "accepted {bad}");
        }
    }
}
