//! Images: import a root filesystem, list, resolve references, tag, remove.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::Arc;

use berth_store::Digest;

use crate::model::{HistoryStep, ImageConfigBlob, ImageRecord, RootFs};
use crate::{db, now_rfc3339, Engine, EngineError, Result};

/// `busybox` → `busybox:latest`; `docker.io/library/x:1` → `x:1`.
pub fn normalize_reference(reference: &str) -> String {
    let r = reference
        .strip_prefix("docker.io/library/")
        .or_else(|| reference.strip_prefix("docker.io/"))
        .unwrap_or(reference);
    let last = r.rsplit('/').next().unwrap_or(r);
    if last.contains(':') || r.contains('@') {
        r.to_string()
    } else {
        format!("{r}:latest")
    }
}

/// Docker's reference grammar, loosely: lowercase path components, optional tag.
pub(crate) fn valid_reference(r: &str) -> bool {
    let (name, tag) = match r.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, Some(t)),
        _ => (r, None),
    };
    let name_ok = !name.is_empty()
        && name.split('/').all(|c| {
            !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-:".contains(ch))
        });
    let tag_ok = tag.is_none_or(|t| {
        !t.is_empty()
            && t.len() <= 128
            && t.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "._-".contains(ch))
    });
    name_ok && tag_ok
}

/// Applies Dockerfile-style `--change` instructions (CMD, ENTRYPOINT, ENV, WORKDIR,
/// USER, LABEL, EXPOSE, STOPSIGNAL) to an image config.
pub fn apply_changes(config: &mut crate::model::ContainerConfig, changes: &[String]) -> Result<()> {
    for change in changes {
        let change = change.trim();
        if change.is_empty() {
            continue;
        }
        let (instr, rest) = change
            .split_once(char::is_whitespace)
            .unwrap_or((change, ""));
        let rest = rest.trim();
        let command = |rest: &str| -> Vec<String> {
            match serde_json::from_str::<Vec<String>>(rest) {
                Ok(v) => v,
                Err(_) => vec!["/bin/sh".into(), "-c".into(), rest.to_string()],
            }
        };
        match instr.to_ascii_uppercase().as_str() {
            "CMD" => config.cmd = Some(command(rest)),
            "ENTRYPOINT" => config.entrypoint = Some(command(rest)),
            "WORKDIR" => config.working_dir = rest.to_string(),
            "USER" => config.user = rest.to_string(),
            "STOPSIGNAL" => config.stop_signal = Some(rest.to_string()),
            "ENV" => {
                let (k, v) = match rest.split_once('=') {
                    Some((k, v)) => (k.trim(), v.trim().trim_matches('"')),
                    None => rest
                        .split_once(char::is_whitespace)
                        .map(|(k, v)| (k, v.trim()))
                        .unwrap_or((rest, "")),
                };
                config.env.retain(|e| e.split('=').next() != Some(k));
                config.env.push(format!("{k}={v}"));
            }
            "LABEL" => {
                let (k, v) = rest.split_once('=').unwrap_or((rest, ""));
                config.labels.insert(
                    k.trim().trim_matches('"').into(),
                    v.trim().trim_matches('"').into(),
                );
            }
            "EXPOSE" => {
                let ports = config.exposed_ports.get_or_insert_with(BTreeSet::new);
                for p in rest.split_whitespace() {
                    let named = crate::port::exposed(p)?;
                    ports.extend(named.iter().map(ToString::to_string));
                }
            }
            "VOLUME" => {
                let volumes = config.volumes.get_or_insert_with(BTreeSet::new);
                let paths = serde_json::from_str::<Vec<String>>(rest)
                    .unwrap_or_else(|_| rest.split_whitespace().map(String::from).collect());
                for p in paths {
                    volumes.insert(p);
                }
            }
            other => {
                return Err(EngineError::InvalidArgument(format!(
                    "{other} is not a valid change command"
                )))
            }
        }
    }
    Ok(())
}

pub struct ImportOptions {
    pub reference: Option<String>,
    pub changes: Vec<String>,
    pub message: String,
}

impl Engine {
    /// Imports a root filesystem tarball (optionally gzip-compressed) as a one-layer
    /// image. Blocking: call from a blocking thread.
    pub fn import_image(
        self: &Arc<Self>,
        reader: impl Read,
        opts: ImportOptions,
    ) -> Result<ImageRecord> {
        let reference = match &opts.reference {
            Some(r) => {
                let n = normalize_reference(r);
                if !valid_reference(&n) {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid reference format: {r}"
                    )));
                }
                Some(n)
            }
            None => None,
        };
        let mut container_config = crate::model::ContainerConfig::default();
        apply_changes(&mut container_config, &opts.changes)?;
        let layer = self.store.import_layer(reader)?;
        let created = now_rfc3339();
        let blob = ImageConfigBlob {
            architecture: go_arch().into(),
            os: "linux".into(),
            created: created.clone(),
            author: String::new(),
            config: container_config,
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: vec![layer.diff_id.to_string()],
            },
            history: vec![HistoryStep {
                created: Some(created.clone()),
                created_by: Some(String::new()),
                comment: Some(if opts.message.is_empty() {
                    "Imported from -".to_string()
                } else {
                    opts.message.clone()
                }),
                ..HistoryStep::default()
            }],
        };
        let bytes =
            serde_json::to_vec(&blob).map_err(|e| EngineError::json("encode image config", e))?;
        let id = self.store.put_blob_bytes(&bytes)?.to_string();
        self.keep_image(ImageRecord {
            created,
            comment: opts.message,
            ..ImageRecord::new(id.clone(), blob, layer.size)
        })?;
        if let Some(r) = reference {
            self.tag_image(&id, &r)?;
        }
        self.events.emit("image", "import", &id, BTreeMap::new());
        self.image(&id)
    }

    /// Records an image unless one of its id is already recorded (the same
    /// config blob is the same image); returns the image as recorded.
    pub(crate) fn keep_image(&self, record: ImageRecord) -> Result<ImageRecord> {
        let mut st = self.lock();
        let id = record.id.clone();
        let kept = st.images.entry(id.clone()).or_insert(record).clone();
        self.db.put(db::IMAGES, &id, &kept)?;
        Ok(kept)
    }

    pub fn images(&self) -> Vec<ImageRecord> {
        let mut v: Vec<ImageRecord> = self.lock().images.values().cloned().collect();
        v.sort_by(|a, b| b.created.cmp(&a.created));
        v
    }

    /// Resolves a tag, a full ID or an unambiguous ID prefix.
    pub fn image(&self, reference: &str) -> Result<ImageRecord> {
        let st = self.lock();
        resolve_image(&st.images, reference)
            .cloned()
            .ok_or_else(|| EngineError::NotFound(format!("No such image: {reference}")))
    }

    /// An untagged image no other image builds on and no container uses.
    fn removable_parent(&self, id: &str) -> bool {
        let st = self.lock();
        let Some(img) = st.images.get(id) else {
            return false;
        };
        img.repo_tags.is_empty()
            && !st.images.values().any(|i| i.parent == id)
            && !st.containers.values().any(|c| c.image_id == id)
    }

    /// Images with a tag, or without children (dangling): what `images` lists
    /// without `-a`.
    pub fn is_intermediate(&self, id: &str) -> bool {
        let st = self.lock();
        st.images.get(id).is_some_and(|img| {
            img.repo_tags.is_empty() && st.images.values().any(|i| i.parent == id)
        })
    }

    pub fn tag_image(&self, source: &str, target: &str) -> Result<()> {
        let target = normalize_reference(target);
        if !valid_reference(&target) {
            return Err(EngineError::InvalidArgument(format!(
                "invalid reference format: {target}"
            )));
        }
        let mut st = self.lock();
        let id = resolve_image(&st.images, source)
            .map(|i| i.id.clone())
            .ok_or_else(|| EngineError::NotFound(format!("No such image: {source}")))?;
        let mut changed = Vec::new();
        for img in st.images.values_mut() {
            if img.id != id && img.repo_tags.contains(&target) {
                img.repo_tags.retain(|t| t != &target);
                changed.push(img.clone());
            }
        }
        if let Some(img) = st.images.get_mut(&id) {
            if !img.repo_tags.contains(&target) {
                img.repo_tags.push(target.clone());
            }
            changed.push(img.clone());
        }
        for img in changed {
            self.db.put(db::IMAGES, &img.id, &img)?;
        }
        drop(st);
        self.events.emit(
            "image",
            "tag",
            &id,
            BTreeMap::from([("name".to_string(), target)]),
        );
        Ok(())
    }

    /// `rmi`: untags a tag reference; deletes the image once no tag is left and no
    /// container uses it (or with `force`). Returns what was untagged and deleted,
    /// in docker's order.
    pub fn remove_image(&self, reference: &str, force: bool) -> Result<Vec<ImageDeletion>> {
        let mut st = self.lock();
        let image = resolve_image(&st.images, reference)
            .cloned()
            .ok_or_else(|| EngineError::NotFound(format!("No such image: {reference}")))?;
        let normalized = normalize_reference(reference);
        let by_tag = image.repo_tags.contains(&normalized);
        let mut report = Vec::new();
        let users: Vec<String> = st
            .containers
            .values()
            .filter(|c| c.image_id == image.id)
            .map(|c| c.id[..12].to_string())
            .collect();

        if by_tag && (image.repo_tags.len() > 1 || (!users.is_empty() && !force)) {
            if image.repo_tags.len() == 1 && !users.is_empty() {
                return Err(EngineError::Conflict(format!(
                    "conflict: unable to remove repository reference \"{reference}\" (must force) - container {} is using its referenced image {}",
                    users[0],
                    &image.id[7..19]
                )));
            }
            let img = st.images.get_mut(&image.id).expect("resolved above");
            img.repo_tags.retain(|t| t != &normalized);
            self.db.put(db::IMAGES, &img.id, &*img)?;
            report.push(ImageDeletion::Untagged(normalized));
            return Ok(report);
        }
        if !users.is_empty() && !force {
            return Err(EngineError::Conflict(format!(
                "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
                &image.id[7..19],
                users[0]
            )));
        }
        if !users.is_empty() {
            // Forced while containers use it: untag only, the layers stay for them.
            let img = st.images.get_mut(&image.id).expect("resolved above");
            for t in std::mem::take(&mut img.repo_tags) {
                report.push(ImageDeletion::Untagged(t.clone()));
            }
            self.db.put(db::IMAGES, &img.id, &*img)?;
            return Ok(report);
        }
        for t in &image.repo_tags {
            report.push(ImageDeletion::Untagged(t.clone()));
        }
        st.images.remove(&image.id);
        self.db.delete(db::IMAGES, &image.id)?;
        let still_used: std::collections::HashSet<String> = st
            .images
            .values()
            .flat_map(|i| i.config.rootfs.diff_ids.iter().cloned())
            .collect();
        drop(st);
        for diff_id in &image.config.rootfs.diff_ids {
            if still_used.contains(diff_id) {
                continue;
            }
            if let Ok(d) = Digest::parse(diff_id) {
                self.store.remove_layer(&d)?;
                report.push(ImageDeletion::Deleted(diff_id.clone()));
            }
        }
        if let Ok(d) = Digest::parse(&image.id) {
            self.store.remove_blob(&d)?;
        }
        report.insert(
            image.repo_tags.len(),
            ImageDeletion::Deleted(image.id.clone()),
        );
        self.events
            .emit("image", "delete", &image.id, BTreeMap::new());
        // Build steps left untagged below it go too, as docker's rmi does, unless
        // something else still needs them.
        if !image.parent.is_empty() && self.removable_parent(&image.parent) {
            if let Ok(more) = self.remove_image(&image.parent, false) {
                report.extend(
                    more.into_iter()
                        .filter(|r| matches!(r, ImageDeletion::Deleted(_))),
                );
            }
        }
        Ok(report)
    }

    /// `history`: the image's build steps, newest first.
    pub fn image_history(&self, reference: &str) -> Result<Vec<HistoryEntry>> {
        let image = self.image(reference)?;
        let mut layers = image.config.rootfs.diff_ids.iter().rev();
        let mut out = Vec::new();
        for (i, h) in image.config.history.iter().rev().enumerate() {
            let size = if h.empty_layer {
                0
            } else {
                layers
                    .next()
                    .and_then(|d| Digest::parse(d).ok())
                    .and_then(|d| std::fs::metadata(self.store.blob_path(&d)).ok())
                    .map(|m| m.len())
                    .unwrap_or(0)
            };
            let created = h
                .created
                .as_deref()
                .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
                .map(|t| t.timestamp())
                .unwrap_or(0);
            out.push(HistoryEntry {
                // Only the newest step is an image of its own (docker's `<missing>`).
                image: (i == 0).then(|| (image.id.clone(), image.repo_tags.clone())),
                created,
                created_by: h.created_by.clone().unwrap_or_default(),
                size,
                comment: h.comment.clone().unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// Layer directories of an image, topmost first (overlayfs lowerdir order).
    pub(crate) fn image_lowers(&self, image: &ImageRecord) -> Result<Vec<std::path::PathBuf>> {
        let mut lowers = Vec::new();
        for diff_id in image.config.rootfs.diff_ids.iter().rev() {
            let d = Digest::parse(diff_id)?;
            lowers.push(self.store.unpack_layer(&d)?);
        }
        Ok(lowers)
    }
}

fn resolve_image<'a>(
    images: &'a std::collections::HashMap<String, ImageRecord>,
    reference: &str,
) -> Option<&'a ImageRecord> {
    let normalized = normalize_reference(reference);
    if let Some(i) = images.values().find(|i| i.repo_tags.contains(&normalized)) {
        return Some(i);
    }
    let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
    if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let mut matches = images.values().filter(|i| i.id[7..].starts_with(hex));
    let first = matches.next()?;
    if matches.next().is_some() {
        return None;
    }
    Some(first)
}

pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(normalize_reference("busybox"), "busybox:latest");
        assert_eq!(
            normalize_reference("docker.io/library/busybox:1"),
            "busybox:1"
        );
        assert_eq!(
            normalize_reference("localhost:5000/x"),
            "localhost:5000/x:latest"
        );
        assert!(valid_reference("busybox:latest"));
        assert!(!valid_reference("Busybox:latest"));
        assert!(!valid_reference("a b:latest"));
    }

    #[test]
    fn changes() {
        let mut c = crate::model::ContainerConfig::default();
        apply_changes(
            &mut c,
            &[
                r#"CMD ["sh", "-c", "echo hi"]"#.into(),
                "ENTRYPOINT /bin/true".into(),
                "ENV A=b".into(),
                "WORKDIR /tmp".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.cmd.as_deref().unwrap(), ["sh", "-c", "echo hi"]);
        assert_eq!(
            c.entrypoint.as_deref().unwrap(),
            ["/bin/sh", "-c", "/bin/true"]
        );
        assert_eq!(c.env, vec!["A=b"]);
        assert_eq!(c.working_dir, "/tmp");
        assert!(apply_changes(&mut c, &["FROB x".into()]).is_err());
    }
}

/// One entry of `rmi`'s report.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageDeletion {
    /// A tag (`name:tag`) that no longer names the image.
    Untagged(String),
    /// An image ID or layer diff ID removed from disk.
    Deleted(String),
}

/// One step of an image's history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// The image this step is, with its tags: only for the newest step.
    pub image: Option<(String, Vec<String>)>,
    /// Unix seconds.
    pub created: i64,
    pub created_by: String,
    /// Bytes of the layer the step made (0 for metadata-only steps).
    pub size: u64,
    pub comment: String,
}
