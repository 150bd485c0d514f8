//! Placement of new tasks, one batch at a time per cluster.
//!
//! Each cluster has a long-lived *view*: its container instances as this
//! process last read or wrote them (each with its mod_revision), and the
//! scheduler's [`scheduler::ClusterState`] built from them once and updated
//! in place by every placement. Concurrent RunTasks (and service launches)
//! queue up; whoever holds the view places everything queued, in arrival
//! order, and commits the whole batch in one store transaction that
//! compares the mod_revision of every instance it changes (as Nomad's plan
//! applier does). While one batch commits, the next one queues.
//!
//! Correctness never depends on the view being current: a stale instance
//! only makes the batch's compare fail, and its requests retry on a view
//! read again from the store. The view is read again when it is older than
//! [`MAX_VIEW_AGE_MS`] (heartbeats, instances registered elsewhere), when
//! something else changed an instance ([`PlacementCache::invalidate`]),
//! and whenever its state holds a placement that was not committed.
//! Reads other than placement (Describe*, List*) never use it.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use model::container_instance::ContainerInstance;
use model::task::Task;
use rand::SeedableRng;
use store::{Compare, Op, Revision, Store, Txn};
use tokio::sync::{oneshot, OwnedMutexGuard};

use crate::container_instances::InstanceTaskRecord;
use crate::tasks::Placed;
use crate::{keys, placement, records, ApiError, Ecs, RequestContext};

/// How long a loaded view is trusted before it is read again (new
/// instances, heartbeats from agent sessions).
pub const MAX_VIEW_AGE_MS: i64 = 1_000;

/// What one RunTask (or one service launch) asks placement for.
pub(crate) struct PlacementRequest {
    pub ctx: RequestContext,
    /// Every new task is a copy of it with its own id and instance.
    pub prototype: Task,
    pub task_request: scheduler::TaskRequest,
    pub strategies: Vec<scheduler::PlacementStrategy>,
    pub count: usize,
    /// The clientToken record written with the tasks (it must be absent).
    pub token: Option<TokenRecord>,
    /// A retry: decide that tasks do not fit even on a view not read for
    /// this request.
    pub reload: bool,
}

/// `(container instance ARN, ECS reason)` of a task not placed.
type PlacementFailureEntry = (Option<String>, String);

/// A RunTask clientToken record: its key, and how its value is made from
/// the tasks placed and the failures.
pub(crate) struct TokenRecord {
    pub key: String,
    pub encode: fn(&[Task], &[PlacementFailureEntry]) -> Vec<u8>,
}

/// `Ok(None)`: retry (the view was stale or the batch lost a race).
type Outcome = Result<Option<Placed>, ApiError>;

struct Queued {
    request: PlacementRequest,
    reply: oneshot::Sender<Outcome>,
}

struct ViewInstance {
    instance: ContainerInstance,
    mod_revision: Revision,
}

/// One cluster's instances as placement sees them.
struct View {
    loaded_at_ms: i64,
    /// [`ClusterPlacer::generation`] when the load started.
    generation: u64,
    /// The state holds placements that were never committed.
    stale: bool,
    /// In the order of the state's instance indexes.
    instances: Vec<ViewInstance>,
    state: scheduler::ClusterState,
}

impl View {
    fn usable(&self, generation: u64, now_ms: i64) -> bool {
        !self.stale && self.generation == generation && now_ms - self.loaded_at_ms < MAX_VIEW_AGE_MS
    }
}

struct ClusterPlacer {
    region: String,
    cluster_name: String,
    /// Bumped by every invalidation: a view loaded before is read again.
    generation: AtomicU64,
    /// Ids of the instances of the last view loaded.
    known_ids: Mutex<HashSet<String>>,
    queue: Mutex<VecDeque<Queued>>,
    /// Held by whoever places and commits a batch (then by its commit).
    view: Arc<tokio::sync::Mutex<Option<View>>>,
}

impl ClusterPlacer {
    fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn queue(&self) -> MutexGuard<'_, VecDeque<Queued>> {
        // Nothing panics while holding these locks; the data stays consistent.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn known_ids(&self) -> MutexGuard<'_, HashSet<String>> {
        self.known_ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The newest request time among the queued requests.
    fn queued_now_ms(&self) -> Option<i64> {
        self.queue().iter().map(|q| q.request.ctx.now_ms).max()
    }

    /// Takes the queued requests, leaving one whose clientToken another
    /// taken request already uses for the next batch.
    fn take_batch(&self) -> Vec<Queued> {
        let mut queue = self.queue();
        let mut tokens: HashSet<String> = HashSet::new();
        let mut batch = Vec::with_capacity(queue.len());
        let mut deferred = VecDeque::new();
        for queued in queue.drain(..) {
            match &queued.request.token {
                Some(token) if !tokens.insert(token.key.clone()) => deferred.push_back(queued),
                _ => batch.push(queued),
            }
        }
        *queue = deferred;
        batch
    }

    /// Answers every queued request with `error`.
    fn fail_queued(&self, error: &ApiError) {
        for queued in self.queue().drain(..) {
            let _ = queued.reply.send(Err(error.clone()));
        }
    }
}

type PlacerKey = (String, String);

#[derive(Default)]
pub(crate) struct PlacementCache {
    clusters: Mutex<HashMap<PlacerKey, Arc<ClusterPlacer>>>,
}

impl PlacementCache {
    fn clusters(&self) -> MutexGuard<'_, HashMap<PlacerKey, Arc<ClusterPlacer>>> {
        self.clusters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn placer(&self, region: &str, cluster_name: &str) -> Arc<ClusterPlacer> {
        let mut clusters = self.clusters();
        let placer = clusters
            .entry((region.to_string(), cluster_name.to_string()))
            .or_insert_with(|| {
                Arc::new(ClusterPlacer {
                    region: region.to_string(),
                    cluster_name: cluster_name.to_string(),
                    generation: AtomicU64::new(0),
                    known_ids: Mutex::new(HashSet::new()),
                    queue: Mutex::new(VecDeque::new()),
                    view: Arc::new(tokio::sync::Mutex::new(None)),
                })
            });
        Arc::clone(placer)
    }

    fn existing(&self, region: &str, cluster_name: &str) -> Option<Arc<ClusterPlacer>> {
        self.clusters()
            .get(&(region.to_string(), cluster_name.to_string()))
            .cloned()
    }

    /// Something other than placement changed the cluster's instances: the
    /// next placement reads them again.
    pub(crate) fn invalidate(&self, region: &str, cluster_name: &str) {
        if let Some(placer) = self.existing(region, cluster_name) {
            placer.invalidate();
        }
    }

    /// Invalidates unless the view holds instance `id` (a new registration
    /// invalidates). A known instance's stale entry only costs a retry.
    pub(crate) fn invalidate_unless_known(&self, region: &str, cluster_name: &str, id: &str) {
        if let Some(placer) = self.existing(region, cluster_name) {
            if !placer.known_ids().contains(id) {
                placer.invalidate();
            }
        }
    }
}

impl Ecs {
    /// Places `request` together with whatever else is queued for the
    /// cluster, and commits it. `Ok(None)`: retry.
    pub(crate) async fn place_batched(
        &self,
        cluster_name: &str,
        request: PlacementRequest,
    ) -> Outcome {
        let placer = self
            .placement_cache()
            .placer(&request.ctx.region, cluster_name);
        let base_ctx = request.ctx.clone();
        let (reply, mut answer) = oneshot::channel();
        placer.queue().push_back(Queued { request, reply });
        loop {
            tokio::select! {
                biased;
                outcome = &mut answer => {
                    // A dropped answer means the batch never ran: retry.
                    return outcome.unwrap_or(Ok(None));
                }
                view = Arc::clone(&placer.view).lock_owned() => {
                    if let Ok(outcome) = answer.try_recv() {
                        return outcome;
                    }
                    self.lead(&placer, view, &base_ctx, cluster_name).await;
                }
            }
        }
    }

    /// Holding the view: reads it again if it cannot be trusted, places
    /// every queued request, and hands the batch to a commit task (which
    /// then holds the view), so that a cancelled caller cannot leave a
    /// batch half done.
    async fn lead(
        &self,
        placer: &Arc<ClusterPlacer>,
        mut view: OwnedMutexGuard<Option<View>>,
        base_ctx: &RequestContext,
        cluster_name: &str,
    ) {
        let Some(now_ms) = placer.queued_now_ms() else {
            return;
        };
        let generation = placer.generation.load(Ordering::Acquire);
        let usable = view.as_ref().is_some_and(|v| v.usable(generation, now_ms));
        if !usable {
            *view = None;
            let ctx = RequestContext {
                now_ms,
                ..base_ctx.clone()
            };
            match self.load_view(&ctx, cluster_name, generation).await {
                Ok((loaded, ids)) => {
                    *placer.known_ids() = ids;
                    *view = Some(loaded);
                }
                Err(error) => {
                    placer.fail_queued(&error);
                    return;
                }
            }
        }
        let Some(current) = view.as_mut() else {
            return;
        };
        let batch = plan_batch(current, placer, placer.take_batch(), !usable);
        if let Some(batch) = batch {
            tokio::spawn(commit_batches(
                self.store_handle(),
                Arc::clone(placer),
                view,
                batch,
            ));
        }
    }

    /// The cluster's instances and a scheduler state built from them.
    async fn load_view(
        &self,
        ctx: &RequestContext,
        cluster_name: &str,
        generation: u64,
    ) -> Result<(View, HashSet<String>), ApiError> {
        let instances = self.container_instances(ctx, cluster_name).await?;
        let heartbeats = self.heartbeats(ctx, cluster_name).await?;
        let arns = ctx.arns();
        let snapshots = instances
            .iter()
            .map(|versioned| {
                let instance = &versioned.value;
                placement::snapshot(
                    instance,
                    self.agent_connected(ctx, heartbeats.get(&instance.id).copied()),
                    &arns.container_instance(cluster_name, &instance.id),
                )
            })
            .collect();
        let ids = instances.iter().map(|v| v.value.id.clone()).collect();
        let view = View {
            loaded_at_ms: ctx.now_ms,
            generation,
            stale: false,
            state: scheduler::ClusterState::new(snapshots),
            instances: instances
                .into_iter()
                .map(|versioned| ViewInstance {
                    instance: versioned.value,
                    mod_revision: versioned.mod_revision,
                })
                .collect(),
        };
        Ok((view, ids))
    }
}

/// A batch placed on the view, ready to commit.
struct PlannedBatch {
    txn: Txn,
    /// The instances the transaction writes, by position in the view.
    changed: BTreeMap<usize, ContainerInstance>,
    /// The requests answered once it commits, with what each placed.
    placed: Vec<(oneshot::Sender<Outcome>, Placed)>,
}

/// Commits `batch`, applies it to the view, answers its requests; then
/// places and commits whatever queued meanwhile while the view can be
/// trusted. Releases the view when done.
async fn commit_batches(
    store: Arc<dyn Store>,
    placer: Arc<ClusterPlacer>,
    mut view: OwnedMutexGuard<Option<View>>,
    mut batch: PlannedBatch,
) {
    loop {
        let committed = store.txn(batch.txn).await;
        let Some(current) = view.as_mut() else {
            return;
        };
        match committed {
            Ok(response) if response.succeeded => {
                for (index, instance) in batch.changed {
                    let entry = &mut current.instances[index];
                    entry.instance = instance;
                    entry.mod_revision = response.revision;
                }
                for (reply, placed) in batch.placed {
                    let _ = reply.send(Ok(Some(placed)));
                }
            }
            Ok(_) => {
                // Something else changed an instance: read them again.
                current.stale = true;
                for (reply, _) in batch.placed {
                    let _ = reply.send(Ok(None));
                }
            }
            Err(error) => {
                current.stale = true;
                let error = ApiError::from(error);
                for (reply, _) in batch.placed {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
        let generation = placer.generation.load(Ordering::Acquire);
        let next = match placer.queued_now_ms() {
            Some(now_ms) if current.usable(generation, now_ms) => {
                plan_batch(current, &placer, placer.take_batch(), false)
            }
            // Nothing queued, or the next holder must read the view again.
            _ => None,
        };
        match next {
            Some(next) => batch = next,
            None => return,
        }
    }
}

/// Places each request of `batch` in order on the view's state. Requests
/// that need no write are answered at once; the others go into one
/// transaction. `fresh`: the view was read for this batch, so "does not
/// fit" can be decided on it.
fn plan_batch(
    view: &mut View,
    placer: &ClusterPlacer,
    batch: Vec<Queued>,
    fresh: bool,
) -> Option<PlannedBatch> {
    let (region, cluster_name) = (&placer.region, &placer.cluster_name);
    let mut changed: BTreeMap<usize, ContainerInstance> = BTreeMap::new();
    let mut txn = Txn::new();
    let mut placed = Vec::new();
    for Queued { request, reply } in batch {
        match place_request(view, &changed, cluster_name, &request, fresh) {
            RequestOutcome::Retry => {
                // Its placements are in the state but will not be written.
                view.stale = true;
                let _ = reply.send(Ok(None));
            }
            RequestOutcome::Answer(answer) => {
                let _ = reply.send(Ok(Some(answer)));
            }
            RequestOutcome::Commit { result, instances } => {
                txn = add_request_writes(txn, region, cluster_name, &request, &result);
                changed.extend(instances);
                placed.push((reply, result));
            }
        }
    }
    if placed.is_empty() {
        return None;
    }
    for (index, instance) in &changed {
        let key = keys::container_instance(region, cluster_name, &instance.id);
        txn = txn
            .when(Compare::mod_revision_is(
                key.clone(),
                view.instances[*index].mod_revision,
            ))
            .then(Op::put(key, records::encode(instance)));
    }
    Some(PlannedBatch {
        txn,
        changed,
        placed,
    })
}

enum RequestOutcome {
    /// The view may be stale: retry on one read again.
    Retry,
    /// Nothing to write.
    Answer(Placed),
    /// Tasks (or a clientToken) to write, with the instances they change.
    Commit {
        result: Placed,
        instances: BTreeMap<usize, ContainerInstance>,
    },
}

/// Places `request.count` copies of its prototype on the view's state (which
/// records them), and reserves them on copies of the instances (as left by
/// the batch so far, `changed`).
fn place_request(
    view: &mut View,
    changed: &BTreeMap<usize, ContainerInstance>,
    cluster_name: &str,
    request: &PlacementRequest,
    fresh: bool,
) -> RequestOutcome {
    let ctx = &request.ctx;
    let fresh = fresh || request.reload;
    // Seeded from the request id: a decision is a function of its inputs.
    let seed = ctx
        .request_id
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let requests = vec![request.task_request.clone(); request.count];
    let results = scheduler::place(&mut view.state, &requests, &request.strategies, &mut rng);

    let prototype = &request.prototype;
    let mut instances: BTreeMap<usize, ContainerInstance> = BTreeMap::new();
    let mut new_tasks = Vec::new();
    let mut failures: Vec<PlacementFailureEntry> = Vec::new();
    for result in results {
        match result {
            Ok(placement) => {
                let index = placement.instance.get();
                let instance = instances.entry(index).or_insert_with(|| {
                    changed
                        .get(&index)
                        .unwrap_or(&view.instances[index].instance)
                        .clone()
                });
                if instance.reserve(&prototype.reservation).is_err() {
                    // The scheduler and the instance disagree: treat as a race.
                    return RequestOutcome::Retry;
                }
                if let Some(group) = &prototype.group {
                    instance.add_to_group(group);
                }
                instance.version += 1;
                let mut task = prototype.clone();
                task.id = uuid::Uuid::new_v4().simple().to_string();
                task.container_instance_id = Some(instance.id.clone());
                task.availability_zone = instance
                    .attributes
                    .get("ecs.availability-zone")
                    .cloned()
                    .flatten();
                new_tasks.push(task);
            }
            Err(scheduler::PlacementFailure::NoContainerInstances) => {
                if !fresh {
                    return RequestOutcome::Retry;
                }
                if new_tasks.is_empty() {
                    return RequestOutcome::Answer(Placed {
                        tasks: Vec::new(),
                        failures: Vec::new(),
                        no_container_instances: true,
                    });
                }
            }
            Err(scheduler::PlacementFailure::NoInstanceFits { rejections }) => {
                for rejection in rejections {
                    let arn = ctx.arns().container_instance(
                        cluster_name,
                        &view.instances[rejection.instance.get()].instance.id,
                    );
                    let entry = (Some(arn), rejection.reason.as_ecs_reason().to_string());
                    if !failures.contains(&entry) {
                        failures.push(entry);
                    }
                }
            }
        }
    }
    if !fresh && (!failures.is_empty() || new_tasks.len() < request.count) {
        // A view can be stale (an instance freed resources or joined
        // since): decide "does not fit" only on fresh data.
        return RequestOutcome::Retry;
    }
    let result = Placed {
        tasks: new_tasks,
        failures,
        no_container_instances: false,
    };
    if result.tasks.is_empty() && request.token.is_none() {
        return RequestOutcome::Answer(result);
    }
    RequestOutcome::Commit { result, instances }
}

/// The writes of one request's new tasks and clientToken (the instances
/// are written once for the whole batch).
fn add_request_writes(
    mut txn: Txn,
    region: &str,
    cluster_name: &str,
    request: &PlacementRequest,
    placed: &Placed,
) -> Txn {
    for task in &placed.tasks {
        if let Some(instance_id) = &task.container_instance_id {
            txn = txn.then(Op::put(
                keys::instance_task(region, cluster_name, instance_id, &task.id),
                records::encode(&InstanceTaskRecord::Pending),
            ));
        }
        txn = txn.then(Op::put(
            keys::task(region, cluster_name, &task.id),
            records::encode(task),
        ));
    }
    if let Some(token) = &request.token {
        txn = txn.when(Compare::absent(token.key.clone())).then(Op::put(
            token.key.clone(),
            (token.encode)(&placed.tasks, &placed.failures),
        ));
    }
    txn
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::{json, Value};

    use crate::test_support::Harness;

    /// Cluster `default` with `count` instances of `cpu_units` CPU, and task
    /// definition `job` (256 CPU units, 64 MiB).
    async fn cluster(count: usize, cpu_units: i32) -> Arc<Harness> {
        let h = Harness::new();
        h.ok("CreateCluster", json!({})).await;
        for _ in 0..count {
            h.ok(
                "RegisterContainerInstance",
                json!({"totalResources": [
                    {"name": "CPU", "type": "INTEGER", "integerValue": cpu_units},
                    {"name": "MEMORY", "type": "INTEGER", "integerValue": 4096}]}),
            )
            .await;
        }
        h.ok(
            "RegisterTaskDefinition",
            json!({"family": "job", "containerDefinitions": [
                {"name": "job", "image": "busybox", "cpu": 256, "memory": 64}]}),
        )
        .await;
        Arc::new(h)
    }

    /// Runs `bodies` concurrently; their responses in order.
    async fn run_concurrently(h: &Arc<Harness>, bodies: Vec<Value>) -> Vec<Value> {
        let mut running = Vec::new();
        for body in bodies {
            let h = Arc::clone(h);
            running.push(tokio::spawn(async move { h.ok("RunTask", body).await }));
        }
        let mut responses = Vec::new();
        for handle in running {
            responses.push(handle.await.expect("RunTask panicked"));
        }
        responses
    }

    fn task_arns(response: &Value) -> Vec<String> {
        response["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["taskArn"].as_str().unwrap().to_string())
            .collect()
    }

    async fn listed_tasks(h: &Harness) -> usize {
        h.ok("ListTasks", json!({})).await["taskArns"]
            .as_array()
            .unwrap()
            .len()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_run_tasks_never_over_commit_an_instance() {
        // Four instances hold four tasks each; 24 are asked for.
        let h = cluster(4, 1024).await;
        let bodies = (0..12)
            .map(|_| json!({"taskDefinition": "job", "count": 2}))
            .collect();
        let responses = run_concurrently(&h, bodies).await;

        let placed: usize = responses.iter().map(|r| task_arns(r).len()).sum();
        assert_eq!(placed, 16);
        for response in &responses {
            if task_arns(response).len() < 2 {
                assert_eq!(response["failures"][0]["reason"], "RESOURCE:CPU");
            }
        }
        assert_eq!(listed_tasks(&h).await, 16);
        let arns = h.ok("ListContainerInstances", json!({})).await["containerInstanceArns"].clone();
        let described = h
            .ok(
                "DescribeContainerInstances",
                json!({"containerInstances": arns}),
            )
            .await;
        for instance in described["containerInstances"].as_array().unwrap() {
            let cpu = instance["remainingResources"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == "CPU")
                .unwrap()["integerValue"]
                .clone();
            assert_eq!(cpu, 0, "{instance}");
            assert_eq!(instance["pendingTasksCount"], 4, "{instance}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_retries_of_one_client_token_start_its_tasks_once() {
        let h = cluster(2, 4096).await;
        let bodies = (0..8)
            .map(|_| json!({"taskDefinition": "job", "count": 3, "clientToken": "once"}))
            .collect();
        let responses = run_concurrently(&h, bodies).await;

        let first = task_arns(&responses[0]);
        assert_eq!(first.len(), 3);
        for response in &responses {
            assert_eq!(task_arns(response), first);
        }
        assert_eq!(listed_tasks(&h).await, 3);
    }

    #[tokio::test]
    async fn resources_a_stopped_task_frees_are_placed_again() {
        let h = cluster(1, 512).await;
        let full = h
            .ok("RunTask", json!({"taskDefinition": "job", "count": 2}))
            .await;
        let arns = task_arns(&full);
        assert_eq!(arns.len(), 2);
        let refused = h
            .ok("RunTask", json!({"taskDefinition": "job", "count": 1}))
            .await;
        assert_eq!(task_arns(&refused).len(), 0);
        assert_eq!(refused["failures"][0]["reason"], "RESOURCE:CPU");

        h.ok("StopTask", json!({"task": arns[0]})).await;
        h.ok(
            "SubmitTaskStateChange",
            json!({"task": arns[0], "status": "STOPPED"}),
        )
        .await;
        let again = h
            .ok("RunTask", json!({"taskDefinition": "job", "count": 1}))
            .await;
        assert_eq!(task_arns(&again).len(), 1, "{again}");
    }
}
