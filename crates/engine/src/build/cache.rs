//! The build cache: steps taken from earlier builds, and its pruning.

use std::collections::BTreeSet;

use super::*;
use crate::model::ImageRecord;
use crate::{Engine, Result};

impl Engine {
    pub(super) async fn adopt(
        &self,
        state: &mut StageState,
        record: ImageRecord,
        progress: &Progress,
    ) {
        progress
            .stream(format!(" ---> {}\n", short(&record.id)))
            .await;
        state.parent = record.id;
        state.size = record.size;
        let args = std::mem::take(&mut state.args);
        state.blob = record.config;
        state.args = args;
    }

    /// A step's earlier result: the child of `parent` with the same key.
    pub(super) fn cached_step(
        &self,
        parent: &str,
        key: &str,
        opts: &BuildOptions,
    ) -> Option<ImageRecord> {
        if opts.no_cache {
            return None;
        }
        let st = self.lock();
        st.images
            .values()
            .find(|i| i.parent == parent && i.build_key == key)
            .cloned()
    }

    /// Removes build cache: intermediate images that no tagged image descends
    /// from and no container uses. With `all`, every cache key is dropped too.
    pub fn prune_build_cache(&self, all: bool) -> Result<(Vec<String>, u64)> {
        let victims = self.cache_only_images();
        let blobs = self.store.root().join("blobs").join("sha256");
        let before = berth_volume::dir_size(&blobs);
        let mut removed = Vec::new();
        for id in victims {
            if self.remove_image(&id, false).is_ok() {
                removed.push(id);
            }
        }
        let reclaimed = before.saturating_sub(berth_volume::dir_size(&blobs));
        if all {
            let mut st = self.lock();
            let ids: Vec<String> = st.images.keys().cloned().collect();
            for id in ids {
                if let Some(img) = st.images.get_mut(&id) {
                    if !img.build_key.is_empty() {
                        img.build_key.clear();
                        self.db.put(crate::db::IMAGES, &id, &*img)?;
                    }
                }
            }
        }
        Ok((removed, reclaimed))
    }

    /// Keeps the cache-only images under `limit` bytes, oldest removed first.
    pub(crate) fn enforce_build_cache_limit(&self, limit: u64) -> Result<()> {
        let ids = self.cache_only_images();
        let mut images: Vec<ImageRecord> =
            ids.iter().filter_map(|id| self.image(id).ok()).collect();
        let mut total: u64 = images.iter().map(|i| i.size).sum();
        images.sort_by(|a, b| a.created.cmp(&b.created));
        for i in images {
            if total <= limit {
                break;
            }
            total = total.saturating_sub(i.size);
            let _ = self.remove_image(&i.id, false);
        }
        Ok(())
    }

    /// Untagged build results that no tagged image or container depends on,
    /// leaves first.
    pub(super) fn cache_only_images(&self) -> Vec<String> {
        let st = self.lock();
        let mut needed: BTreeSet<String> = BTreeSet::new();
        let roots: Vec<String> = st
            .images
            .values()
            .filter(|i| !i.repo_tags.is_empty())
            .map(|i| i.id.clone())
            .chain(st.containers.values().map(|c| c.image_id.clone()))
            .collect();
        for mut id in roots {
            while needed.insert(id.clone()) {
                match st.images.get(&id) {
                    Some(i) if !i.parent.is_empty() => id = i.parent.clone(),
                    _ => break,
                }
            }
        }
        let mut out: Vec<(usize, String)> = st
            .images
            .values()
            .filter(|i| !i.build_key.is_empty() && !needed.contains(&i.id))
            .map(|i| {
                let mut depth = 0;
                let mut p = i.parent.clone();
                while let Some(parent) = st.images.get(&p) {
                    depth += 1;
                    p = parent.parent.clone();
                    if depth > 10_000 {
                        break;
                    }
                }
                (depth, i.id.clone())
            })
            .collect();
        out.sort_by_key(|e| std::cmp::Reverse(e.0));
        out.into_iter().map(|(_, id)| id).collect()
    }
}
