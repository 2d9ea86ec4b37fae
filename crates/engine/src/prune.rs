//! `container prune` and `image prune`.

use crate::{Engine, Result};
use std::sync::Arc;

impl Engine {
    /// `container prune`: removes every stopped container (optionally only those
    /// matching `label` filters). Returns the removed IDs.
    pub async fn prune_containers(self: &Arc<Self>, labels: &[String]) -> Result<Vec<String>> {
        let mut filters = crate::Filters::new();
        if !labels.is_empty() {
            filters.insert("label".into(), labels.to_vec());
        }
        let stopped: Vec<String> = self
            .containers(true, &filters)?
            .into_iter()
            .filter(|c| !c.state.running() && !c.state.restarting())
            .map(|c| c.id)
            .collect();
        let mut removed = Vec::new();
        for id in stopped {
            if self.forget_container(&id, false).is_ok() {
                removed.push(id);
            }
        }
        Ok(removed)
    }

    /// `image prune`: removes untagged images (all unused ones with `all`) that no
    /// container uses. Returns docker's Untagged/Deleted report.
    pub fn prune_images(&self, all: bool) -> Result<Vec<crate::ImageDeletion>> {
        let used: std::collections::HashSet<String> = self
            .containers(true, &Default::default())?
            .into_iter()
            .map(|c| c.image_id)
            .collect();
        let mut report = Vec::new();
        for image in self.images() {
            if used.contains(&image.id)
                || (!all && !image.repo_tags.is_empty())
                || self.is_intermediate(&image.id)
                || !self.images().iter().any(|i| i.id == image.id)
            {
                continue;
            }
            if let Ok(r) = self.remove_image(&image.id, true) {
                report.extend(r);
            }
        }
        Ok(report)
    }
}
