//! Merging raw YAML models: several `-f` files, and `extends`.
//!
//! The rules are the Compose Specification's: mappings merge recursively and
//! scalars override; within a service, `command`, `entrypoint`, `profiles`
//! and `healthcheck.test` are replaced, the list-valued options append
//! (deduplicated), `volumes` merge by target, `secrets`/`configs` by source,
//! and the dictionary options (`environment`, `labels`, ...) by key after
//! their list forms are turned into mappings. The `!reset` tag removes a
//! value and `!override` replaces it without merging.
//!
//! This runs on values already validated per file, so shapes it does not
//! recognise are left for the final conversion to report.

use serde_norway::{Mapping, Value};

use crate::parse;

const APPEND: &[&str] = &[
    "ports",
    "expose",
    "dns",
    "cap_add",
    "cap_drop",
    "security_opt",
    "extra_hosts",
    "tmpfs",
    "env_file",
];
const REPLACE: &[&str] = &["command", "entrypoint", "profiles"];
const BY_KEY: &[&str] = &[
    "environment",
    "labels",
    "sysctls",
    "ulimits",
    "depends_on",
    "networks",
];

/// Merge a whole file's model over `base`.
pub(crate) fn merge_top(base: &mut Mapping, over: Mapping) {
    for (k, v) in over {
        let key = k.as_str().unwrap_or_default().to_string();
        if let Some(tag) = directive(&v) {
            apply_directive(base, k, v, tag);
            continue;
        }
        match key.as_str() {
            "services" => {
                let (Some(b), Value::Mapping(o)) = (mapping_entry(base, &k), v) else {
                    continue;
                };
                for (name, svc) in o {
                    if let Some(tag) = directive(&svc) {
                        apply_directive(b, name, svc, tag);
                        continue;
                    }
                    let merged = match (b.remove(&name), svc) {
                        (Some(Value::Mapping(bs)), Value::Mapping(os)) => {
                            Value::Mapping(merge_service(bs, os))
                        }
                        (_, other) => other,
                    };
                    b.insert(name, merged);
                }
            }
            _ => merge_into(base, k, v),
        }
    }
}

/// `over` merged onto the service `base`.
pub(crate) fn merge_service(base: Mapping, over: Mapping) -> Mapping {
    let mut base = normalize_service(base);
    let over = normalize_service(over);
    for (k, v) in over {
        if let Some(tag) = directive(&v) {
            apply_directive(&mut base, k, v, tag);
            continue;
        }
        let key = k.as_str().unwrap_or_default().to_string();
        let old = base.remove(&k);
        let merged = match (key.as_str(), old, v) {
            (_, None, v) => v,
            (k, Some(_), v) if REPLACE.contains(&k) => v,
            (k, Some(Value::Sequence(b)), Value::Sequence(o)) if APPEND.contains(&k) => {
                Value::Sequence(append_unique(b, o))
            }
            ("volumes", Some(Value::Sequence(b)), Value::Sequence(o)) => {
                Value::Sequence(merge_by(b, o, volume_target))
            }
            ("secrets" | "configs", Some(Value::Sequence(b)), Value::Sequence(o)) => {
                Value::Sequence(merge_by(b, o, file_source))
            }
            ("ulimits", Some(Value::Mapping(mut b)), Value::Mapping(o)) => {
                // A limit is one value: the override's replaces it whole.
                for (lk, lv) in o {
                    b.insert(lk, lv);
                }
                Value::Mapping(b)
            }
            (k, Some(Value::Mapping(b)), Value::Mapping(o)) if BY_KEY.contains(&k) => {
                Value::Mapping(merge_mappings(b, o))
            }
            ("logging", Some(Value::Mapping(b)), Value::Mapping(o)) => {
                // Another driver's options mean nothing to this one.
                let driver = |m: &Mapping| m.get("driver").cloned();
                if driver(&o).is_some() && driver(&b).is_some() && driver(&o) != driver(&b) {
                    Value::Mapping(o)
                } else {
                    Value::Mapping(merge_mappings(b, o))
                }
            }
            // healthcheck (its `test` is a list, so replaced), build, deploy, ...
            (_, Some(Value::Mapping(b)), Value::Mapping(o)) => Value::Mapping(merge_mappings(b, o)),
            (_, Some(_), v) => v,
        };
        base.insert(k, merged);
    }
    base
}

/// Generic recursive merge: mappings merge, anything else is replaced.
fn merge_mappings(mut base: Mapping, over: Mapping) -> Mapping {
    for (k, v) in over {
        merge_into(&mut base, k, v);
    }
    base
}

fn merge_into(base: &mut Mapping, k: Value, v: Value) {
    if let Some(tag) = directive(&v) {
        apply_directive(base, k, v, tag);
        return;
    }
    let merged = match (base.remove(&k), v) {
        (Some(Value::Mapping(b)), Value::Mapping(o)) => Value::Mapping(merge_mappings(b, o)),
        // A key given without a value keeps the base's (compose's rule).
        (Some(b), Value::Null) => b,
        (_, v) => v,
    };
    base.insert(k, merged);
}

fn mapping_entry<'a>(base: &'a mut Mapping, k: &Value) -> Option<&'a mut Mapping> {
    if !base.contains_key(k) {
        base.insert(k.clone(), Value::Mapping(Mapping::new()));
    }
    base.get_mut(k).and_then(Value::as_mapping_mut)
}

#[derive(Clone, Copy)]
enum Directive {
    Reset,
    Override,
}

fn directive(v: &Value) -> Option<Directive> {
    match v {
        Value::Tagged(t) if t.tag == "reset" => Some(Directive::Reset),
        Value::Tagged(t) if t.tag == "override" => Some(Directive::Override),
        _ => None,
    }
}

fn apply_directive(base: &mut Mapping, k: Value, v: Value, d: Directive) {
    match d {
        Directive::Reset => {
            base.shift_remove(&k);
        }
        Directive::Override => {
            if let Value::Tagged(t) = v {
                base.insert(k, t.value);
            }
        }
    }
}

/// Remove `!reset` entries and unwrap `!override` ones left after merging
/// (e.g. in the first file, where there is nothing to reset).
pub(crate) fn strip_directives(v: &mut Value) {
    match v {
        Value::Mapping(m) => strip_mapping(m),
        Value::Sequence(s) => {
            s.retain(|v| !matches!(directive(v), Some(Directive::Reset)));
            s.iter_mut().for_each(strip_directives);
        }
        _ => {}
    }
}

pub(crate) fn strip_mapping(m: &mut Mapping) {
    m.retain(|_, v| !matches!(directive(v), Some(Directive::Reset)));
    for (_, item) in m.iter_mut() {
        if matches!(directive(item), Some(Directive::Override)) {
            if let Value::Tagged(t) = std::mem::replace(item, Value::Null) {
                *item = t.value;
            }
        }
        strip_directives(item);
    }
}

/// Bring a service's mergeable options to one shape: list-form dictionaries
/// to mappings, single strings to lists, `build: ctx` to `{context: ctx}`.
pub(crate) fn normalize_service(mut svc: Mapping) -> Mapping {
    for key in ["environment", "labels", "sysctls"] {
        if let Some(v) = svc.get_mut(key) {
            list_to_mapping(v, '=');
        }
    }
    for key in ["depends_on", "networks"] {
        if let Some(Value::Sequence(seq)) = svc.get(key) {
            let m: Mapping = seq.iter().map(|n| (n.clone(), Value::Null)).collect();
            svc.insert(Value::from(key), Value::Mapping(m));
        }
    }
    for key in ["dns", "tmpfs", "env_file"] {
        if let Some(v @ (Value::String(_) | Value::Mapping(_))) = svc.get_mut(key) {
            *v = Value::Sequence(vec![v.clone()]);
        }
    }
    if let Some(v @ Value::String(_)) = svc.get_mut("build") {
        let mut m = Mapping::new();
        m.insert("context".into(), v.clone());
        *v = Value::Mapping(m);
    }
    if let Some(Value::Mapping(b)) = svc.get_mut("build") {
        for key in ["args", "labels"] {
            if let Some(v) = b.get_mut(key) {
                list_to_mapping(v, '=');
            }
        }
    }
    if let Some(Value::Mapping(hosts)) = svc.get("extra_hosts") {
        let list = extra_hosts_list(hosts);
        svc.insert("extra_hosts".into(), Value::Sequence(list));
    }
    svc
}

/// `extra_hosts` mapping form to its list form "host:ip".
pub(crate) fn extra_hosts_list(hosts: &Mapping) -> Vec<Value> {
    let mut out = Vec::new();
    for (h, ips) in hosts {
        let host = crate::interpolate::key_string(h);
        let ips: Vec<&Value> = match ips {
            Value::Sequence(s) => s.iter().collect(),
            other => vec![other],
        };
        for ip in ips {
            let ip = match ip {
                Value::String(s) => s.clone(),
                other => crate::interpolate::key_string(other),
            };
            out.push(Value::String(format!("{host}:{ip}")));
        }
    }
    out
}

/// ["A=1", "B"] to {A: "1", B: null}; entries that are not strings are kept
/// out of the way (the list stays) so validation reports them.
fn list_to_mapping(v: &mut Value, sep: char) {
    let Value::Sequence(seq) = v else { return };
    let mut m = Mapping::new();
    for item in seq.iter() {
        let Value::String(s) = item else { return };
        match s.split_once(sep) {
            Some((k, val)) => m.insert(k.into(), val.into()),
            None => m.insert(s.as_str().into(), Value::Null),
        };
    }
    *v = Value::Mapping(m);
}

fn append_unique(mut base: Vec<Value>, over: Vec<Value>) -> Vec<Value> {
    for v in over {
        if !base.contains(&v) {
            base.push(v);
        }
    }
    base
}

/// Override entries replace the base entry with the same identity in place;
/// the others are appended.
fn merge_by(
    mut base: Vec<Value>,
    over: Vec<Value>,
    id: fn(&Value) -> Option<String>,
) -> Vec<Value> {
    for v in over {
        let pos = id(&v).and_then(|key| base.iter().position(|b| id(b).as_ref() == Some(&key)));
        match pos {
            Some(i) => base[i] = v,
            None if !base.contains(&v) => base.push(v),
            None => {}
        }
    }
    base
}

fn volume_target(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => parse::volume_short(s).ok().map(|sv| sv.target.to_string()),
        Value::Mapping(m) => m.get("target").and_then(Value::as_str).map(String::from),
        _ => None,
    }
}

fn file_source(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Mapping(m) => m.get("source").and_then(Value::as_str).map(String::from),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Mapping {
        serde_norway::from_str(s).unwrap()
    }

    #[test]
    fn service_rules() {
        let base = yaml(
            "image: a\ncommand: [x, y]\nports: ['80:80']\nenvironment: [A=1, B=2]\n\
             volumes: ['./a:/data', '/cache']\nlabels: {l: '1'}\ndns: 1.1.1.1\n\
             healthcheck: {test: [CMD, a], interval: 5s}\nsecrets: [s1]\n",
        );
        let over = yaml(
            "command: z\nports: ['80:80', '443:443']\nenvironment: {B: '3', C: '4'}\n\
             volumes: ['./b:/data']\nlabels: [m=2]\ndns: [8.8.8.8]\n\
             healthcheck: {test: [CMD, b]}\nsecrets: [{source: s1, target: x}]\n",
        );
        let m = merge_service(base, over);
        let expect = yaml(
            "image: a\ncommand: z\nports: ['80:80', '443:443']\nenvironment: {A: '1', B: '3', C: '4'}\n\
             volumes: ['./b:/data', '/cache']\nlabels: {l: '1', m: '2'}\ndns: [1.1.1.1, 8.8.8.8]\n\
             healthcheck: {test: [CMD, b], interval: 5s}\nsecrets: [{source: s1, target: x}]\n",
        );
        assert_eq!(m, expect);
    }

    #[test]
    fn reset_and_override_tags() {
        let mut base = yaml("services: {web: {image: a, ports: ['1:1'], labels: {a: b}}}");
        let over = yaml("services: {web: {ports: !reset [], labels: !override {c: d}}}");
        merge_top(&mut base, over);
        assert_eq!(base, yaml("services: {web: {image: a, labels: {c: d}}}"));
    }
}
