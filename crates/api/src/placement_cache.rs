//! A per-cluster cache of decoded container instances and their scheduler
//! snapshots, so that RunTask does not re-read and re-decode every instance
//! of the cluster on every call.
//!
//! Correctness never depends on it: RunTask commits with a compare on each
//! instance's mod_revision, so a stale entry only makes the commit fail, and
//! the retry reloads the cluster from the store. Reads other than placement
//! (Describe*, List*) never use it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use model::container_instance::ContainerInstance;

use crate::placement;
use crate::records::Versioned;
use crate::{ApiError, Ecs, RequestContext};

/// How long a loaded view is trusted before it is read again (new
/// instances, heartbeats from agent sessions).
pub const MAX_VIEW_AGE_MS: i64 = 1_000;

pub(crate) struct CachedInstance {
    pub instance: ContainerInstance,
    pub mod_revision: store::Revision,
    pub snapshot: scheduler::InstanceSnapshot,
}

/// One cluster's instances as placement sees them.
pub(crate) struct ClusterView {
    pub loaded_at_ms: i64,
    pub instances: Vec<Arc<CachedInstance>>,
}

#[derive(Default)]
pub(crate) struct PlacementCache {
    views: Mutex<HashMap<(String, String), Arc<ClusterView>>>,
}

impl PlacementCache {
    fn get(&self, region: &str, cluster_name: &str) -> Option<Arc<ClusterView>> {
        let views = self.views.lock().expect("placement cache lock");
        views
            .get(&(region.to_string(), cluster_name.to_string()))
            .cloned()
    }

    fn put(&self, region: &str, cluster_name: &str, view: Arc<ClusterView>) {
        let mut views = self.views.lock().expect("placement cache lock");
        views.insert((region.to_string(), cluster_name.to_string()), view);
    }

    pub(crate) fn invalidate(&self, region: &str, cluster_name: &str) {
        let mut views = self.views.lock().expect("placement cache lock");
        views.remove(&(region.to_string(), cluster_name.to_string()));
    }

    /// Drops the view if it does not hold instance `id` (a new
    /// registration). A known instance's stale entry only costs a retry.
    pub(crate) fn invalidate_unless_known(&self, region: &str, cluster_name: &str, id: &str) {
        let mut views = self.views.lock().expect("placement cache lock");
        let key = (region.to_string(), cluster_name.to_string());
        if views
            .get(&key)
            .is_some_and(|view| !view.instances.iter().any(|i| i.instance.id == id))
        {
            views.remove(&key);
        }
    }

    /// Records instances this process just wrote (at `revision`), so the next
    /// RunTask sees them without reading the store. An instance the view
    /// does not hold (newly registered) drops the view instead.
    pub(crate) fn written(
        &self,
        region: &str,
        cluster_name: &str,
        written: &[ContainerInstance],
        revision: store::Revision,
    ) {
        let mut views = self.views.lock().expect("placement cache lock");
        let key = (region.to_string(), cluster_name.to_string());
        let Some(view) = views.get_mut(&key) else {
            return;
        };
        let mut instances = view.instances.clone();
        for instance in written {
            let Some(position) = instances.iter().position(|i| i.instance.id == instance.id) else {
                views.remove(&key);
                return;
            };
            let old = &instances[position];
            if old.mod_revision >= revision {
                continue;
            }
            let snapshot = placement::snapshot(
                instance,
                old.snapshot.agent_connected,
                &old.snapshot.container_instance_arn,
            );
            instances[position] = Arc::new(CachedInstance {
                instance: instance.clone(),
                mod_revision: revision,
                snapshot,
            });
        }
        *view = Arc::new(ClusterView {
            loaded_at_ms: view.loaded_at_ms,
            instances,
        });
    }
}

impl Ecs {
    /// The cluster's instances for placement: cached unless older than
    /// [`MAX_VIEW_AGE_MS`] or `reload` is set.
    pub(crate) async fn cluster_view(
        &self,
        ctx: &RequestContext,
        cluster_name: &str,
        reload: bool,
    ) -> Result<Arc<ClusterView>, ApiError> {
        if !reload {
            if let Some(view) = self.placement_cache().get(&ctx.region, cluster_name) {
                if ctx.now_ms - view.loaded_at_ms < MAX_VIEW_AGE_MS {
                    return Ok(view);
                }
            }
        }
        let instances: Vec<Versioned<ContainerInstance>> =
            self.container_instances(ctx, cluster_name).await?;
        let heartbeats = self.heartbeats(ctx, cluster_name).await?;
        let view = Arc::new(ClusterView {
            loaded_at_ms: ctx.now_ms,
            instances: instances
                .into_iter()
                .map(|versioned| {
                    let snapshot = placement::snapshot(
                        &versioned.value,
                        self.agent_connected(ctx, heartbeats.get(&versioned.value.id).copied()),
                        &ctx.arns()
                            .container_instance(cluster_name, &versioned.value.id),
                    );
                    Arc::new(CachedInstance {
                        instance: versioned.value,
                        mod_revision: versioned.mod_revision,
                        snapshot,
                    })
                })
                .collect(),
        });
        self.placement_cache()
            .put(&ctx.region, cluster_name, Arc::clone(&view));
        Ok(view)
    }
}
