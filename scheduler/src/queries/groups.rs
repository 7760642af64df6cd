//! Admission control with Trino's file-based resource groups ([`ResourceGroups`]).
//!
//! The file is Trino's JSON: `rootGroups` (each `name`, `hardConcurrencyLimit`, `maxQueued`,
//! `softMemoryLimit`, `subGroups`) and `selectors` (`user` and `source` regexes that must match
//! whole, `clientTags` that the query must all carry, and the dotted `group` they pick). Group names may hold `${USER}` and `${SOURCE}`,
//! which make one group per user or source. Without a file, every query goes to one group,
//! `global` ([`DEFAULT_CONCURRENCY`] running, [`DEFAULT_MAX_QUEUED`] queued).
//!
//! A query runs when its group and every group above it run fewer queries than their
//! `hardConcurrencyLimit` and hold less than their `softMemoryLimit` on the workers (as the
//! coordinator last heard, `ResourceGroups::memory_seen`); else it waits, first come first served, unless one of those groups
//! already has `maxQueued` waiting: then it is rejected at once with `QUERY_QUEUE_FULL`.
//! A running query holds a [`Permit`]; a waiting one a [`Ticket`]. Dropping either (the query
//! ended, or was cancelled while waiting) frees its place and starts the next waiting query.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use regex::Regex;
use serde::Deserialize;
use tokio::sync::oneshot;

use super::Submitter;
use super::failure::{ErrorCode, QueryFailure};

/// Running queries of the default group.
pub const DEFAULT_CONCURRENCY: usize = 100;
/// Waiting queries of the default group.
pub const DEFAULT_MAX_QUEUED: usize = 5000;

/// Trino's resource-groups file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GroupsFile {
    root_groups: Vec<GroupSpec>,
    selectors: Vec<SelectorSpec>,
    /// Trino's CPU quota period; Braid has no CPU quotas.
    #[serde(default)]
    cpu_quota_period: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GroupSpec {
    name: String,
    hard_concurrency_limit: usize,
    max_queued: usize,
    /// A size (`10GB`) or a share of the cluster's memory (`80%`).
    #[serde(default)]
    soft_memory_limit: Option<String>,
    #[serde(default)]
    sub_groups: Vec<GroupSpec>,
    // Trino's scheduling and CPU settings: accepted so that Trino's files load, without effect.
    #[serde(default)]
    soft_concurrency_limit: Option<serde_json::Value>,
    #[serde(default)]
    scheduling_policy: Option<serde_json::Value>,
    #[serde(default)]
    scheduling_weight: Option<serde_json::Value>,
    #[serde(default)]
    jmx_export: Option<serde_json::Value>,
    #[serde(default)]
    soft_cpu_limit: Option<serde_json::Value>,
    #[serde(default)]
    hard_cpu_limit: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SelectorSpec {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    client_tags: Vec<String>,
    group: String,
}

/// One selector: its regexes (anchored) and the path of group specs it picks.
#[derive(Debug)]
struct Selector {
    user: Option<Regex>,
    source: Option<Regex>,
    /// Tags the query must all carry (`X-Trino-Client-Tags`).
    client_tags: Vec<String>,
    path: Vec<GroupSpec>,
}

/// One group on a query's path: its id (`global.adhoc_bob`) and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupNode {
    id: String,
    hard_concurrency_limit: usize,
    max_queued: usize,
    soft_memory_limit: Option<SoftMemoryLimit>,
}

/// A group's `softMemoryLimit`: while its running queries hold that much on the workers, it
/// starts no other query (they wait in its queue).
#[derive(Debug, Clone, Copy, PartialEq)]
enum SoftMemoryLimit {
    Bytes(usize),
    /// A share of the cluster's memory (the workers' pools together).
    Share(f64),
}

impl Eq for SoftMemoryLimit {}

impl SoftMemoryLimit {
    /// A size (`10GB`) or a share of the cluster (`80%`).
    fn parse(text: &str) -> Result<Self, String> {
        match text.trim().strip_suffix('%') {
            Some(share) => match share.trim().parse::<f64>() {
                Ok(p) if (0.0..=100.0).contains(&p) => Ok(Self::Share(p / 100.0)),
                _ => Err(format!("'{text}' is not a percentage (0% to 100%)")),
            },
            None => braid_optimizer_rules::memory::parse_size(text).map(Self::Bytes),
        }
    }

    fn bytes(self, cluster: usize) -> usize {
        match self {
            Self::Bytes(bytes) => bytes,
            // No worker has reported yet: the share of an unknown size does not hold queries.
            Self::Share(_) if cluster == 0 => usize::MAX,
            Self::Share(share) => (cluster as f64 * share) as usize,
        }
    }
}

/// The groups a query belongs to, root first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPath {
    nodes: Vec<GroupNode>,
}

impl GroupPath {
    /// The group's name parts, as `system.runtime.queries` shows them: `[global, adhoc_bob]`.
    pub fn parts(&self) -> Vec<String> {
        self.nodes
            .last()
            .map(|leaf| leaf.id.split('.').map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// The dotted id of the query's own group.
    pub fn id(&self) -> String {
        self.nodes
            .last()
            .map(|leaf| leaf.id.clone())
            .unwrap_or_default()
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    running: usize,
    queued: usize,
}

struct Waiter {
    ticket: u64,
    path: GroupPath,
    grant: oneshot::Sender<()>,
}

#[derive(Default)]
struct State {
    counts: HashMap<String, Counts>,
    queue: VecDeque<Waiter>,
    next_ticket: u64,
    /// What each group's running queries hold on the workers, as last reported, and the
    /// workers' pools together (`ResourceGroups::memory_seen`).
    memory: HashMap<String, usize>,
    cluster_memory: usize,
}

impl State {
    fn can_run(&self, path: &GroupPath) -> bool {
        path.nodes.iter().all(|node| {
            let running = self.counts.get(&node.id).map_or(0, |c| c.running);
            let held = self.memory.get(&node.id).copied().unwrap_or(0);
            let under_memory = node
                .soft_memory_limit
                .is_none_or(|limit| held < limit.bytes(self.cluster_memory));
            running < node.hard_concurrency_limit && under_memory
        })
    }

    /// The first group on `path` whose queue is full.
    fn full_queue<'a>(&self, path: &'a GroupPath) -> Option<&'a GroupNode> {
        path.nodes
            .iter()
            .find(|node| self.counts.get(&node.id).map_or(0, |c| c.queued) >= node.max_queued)
    }

    fn add(&mut self, path: &GroupPath, running: isize, queued: isize) {
        for node in &path.nodes {
            let counts = self.counts.entry(node.id.clone()).or_default();
            counts.running = counts.running.saturating_add_signed(running);
            counts.queued = counts.queued.saturating_add_signed(queued);
            if counts.running == 0 && counts.queued == 0 {
                self.counts.remove(&node.id);
            }
        }
    }

    /// Starts the waiting queries that now fit, oldest first.
    fn dispatch(&mut self) {
        let mut index = 0;
        while index < self.queue.len() {
            if !self.can_run(&self.queue[index].path) {
                index += 1;
                continue;
            }
            let Some(waiter) = self.queue.remove(index) else {
                break;
            };
            self.add(&waiter.path, 1, -1);
            if waiter.grant.send(()).is_err() {
                // Its ticket is being dropped and will find itself granted: it gives the place
                // back then.
                tracing::debug!(ticket = waiter.ticket, "granted to a departing query");
            }
        }
    }
}

/// The coordinator's resource groups and their queues.
pub struct ResourceGroups {
    selectors: Vec<Selector>,
    state: Mutex<State>,
}

impl std::fmt::Debug for ResourceGroups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceGroups")
            .field("selectors", &self.selectors.len())
            .finish()
    }
}

/// What [`ResourceGroups::enter`] decided.
pub enum Entry {
    /// The query may run now.
    Run(Permit),
    /// The query waits; [`Ticket::wait`] returns when it may run.
    Queued(Ticket),
}

impl ResourceGroups {
    /// One group, `global`, for every query.
    pub fn default_groups() -> Arc<Self> {
        let global = GroupSpec {
            name: "global".into(),
            hard_concurrency_limit: DEFAULT_CONCURRENCY,
            max_queued: DEFAULT_MAX_QUEUED,
            soft_memory_limit: None,
            sub_groups: vec![],
            soft_concurrency_limit: None,
            scheduling_policy: None,
            scheduling_weight: None,
            jmx_export: None,
            soft_cpu_limit: None,
            hard_cpu_limit: None,
        };
        Arc::new(Self {
            selectors: vec![Selector {
                user: None,
                source: None,
                client_tags: vec![],
                path: vec![global],
            }],
            state: Mutex::default(),
        })
    }

    /// The groups of Trino's JSON file at `path`.
    pub fn load(path: &Path) -> Result<Arc<Self>, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read resource groups file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("resource groups file {}: {e}", path.display()))
    }

    fn parse(text: &str) -> Result<Arc<Self>, String> {
        let file: GroupsFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if file.cpu_quota_period.is_some() {
            tracing::warn!("resource groups: cpuQuotaPeriod has no effect in Braid");
        }
        for group in &file.root_groups {
            check_group(group, &group.name)?;
        }
        if file.selectors.is_empty() {
            return Err("no selectors: every query would be rejected".into());
        }
        let selectors = file
            .selectors
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let selector = format!("selector {} (group '{}')", i + 1, spec.group);
                let regex = |pattern: &Option<String>, key: &str| {
                    pattern
                        .as_deref()
                        .map(|p| {
                            Regex::new(&format!("^(?:{p})$"))
                                .map_err(|e| format!("{selector}: {key} '{p}': {e}"))
                        })
                        .transpose()
                };
                Ok(Selector {
                    user: regex(&spec.user, "user")?,
                    source: regex(&spec.source, "source")?,
                    client_tags: spec.client_tags.clone(),
                    path: spec_path(&file.root_groups, &spec.group)
                        .map_err(|e| format!("{selector}: {e}"))?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Arc::new(Self {
            selectors,
            state: Mutex::default(),
        }))
    }

    /// The group of a query: the first selector that matches its submitter.
    pub fn select(&self, submitter: &Submitter) -> Result<GroupPath, QueryFailure> {
        let Submitter {
            user,
            source,
            client_tags,
        } = submitter;
        let selector = self
            .selectors
            .iter()
            .find(|s| {
                s.user.as_ref().is_none_or(|r| r.is_match(user))
                    && s.source
                        .as_ref()
                        .is_none_or(|r| source.as_deref().is_some_and(|src| r.is_match(src)))
                    && s.client_tags.iter().all(|tag| client_tags.contains(tag))
            })
            .ok_or_else(|| {
                QueryFailure::new(
                    ErrorCode::QueryRejected,
                    format!(
                        "Query did not match any selection rule (user '{user}', source '{}', \
                         client tags {client_tags:?})",
                        source.as_deref().unwrap_or("")
                    ),
                )
            })?;
        let mut id = String::new();
        let nodes = selector
            .path
            .iter()
            .map(|spec| {
                let name = spec
                    .name
                    .replace("${USER}", user)
                    .replace("${SOURCE}", source.as_deref().unwrap_or(""));
                if !id.is_empty() {
                    id.push('.');
                }
                id.push_str(&name);
                GroupNode {
                    id: id.clone(),
                    hard_concurrency_limit: spec.hard_concurrency_limit,
                    max_queued: spec.max_queued,
                    // Checked when the file was loaded.
                    soft_memory_limit: spec
                        .soft_memory_limit
                        .as_deref()
                        .and_then(|text| SoftMemoryLimit::parse(text).ok()),
                }
            })
            .collect();
        Ok(GroupPath { nodes })
    }

    /// Lets a query of `path` run, makes it wait, or rejects it: `QUERY_QUEUE_FULL`.
    pub fn enter(self: &Arc<Self>, path: &GroupPath) -> Result<Entry, QueryFailure> {
        let mut state = self.state.lock();
        // First come, first served: never overtake a query waiting for the same group.
        let leaf = path.id();
        let overtakes = state.queue.iter().any(|w| w.path.id() == leaf);
        if state.can_run(path) && !overtakes {
            state.add(path, 1, 0);
            return Ok(Entry::Run(Permit {
                groups: self.clone(),
                path: path.clone(),
            }));
        }
        if let Some(full) = state.full_queue(path) {
            return Err(QueryFailure::new(
                ErrorCode::QueryQueueFull,
                format!(
                    "Too many queued queries for \"{}\" (maxQueued = {})",
                    full.id, full.max_queued
                ),
            ));
        }
        let (grant, granted) = oneshot::channel();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.add(path, 0, 1);
        state.queue.push_back(Waiter {
            ticket,
            path: path.clone(),
            grant,
        });
        Ok(Entry::Queued(Ticket {
            groups: self.clone(),
            path: path.clone(),
            ticket,
            granted: Some(granted),
        }))
    }

    /// The workers report what the running queries hold: `held` by each query's group path
    /// (its name parts), of `cluster` bytes in all. Groups back under their `softMemoryLimit`
    /// start their waiting queries.
    pub fn memory_seen(&self, held: &[(Vec<String>, usize)], cluster: usize) {
        let mut memory: HashMap<String, usize> = HashMap::new();
        for (parts, bytes) in held {
            let mut id = String::new();
            for part in parts {
                if !id.is_empty() {
                    id.push('.');
                }
                id.push_str(part);
                *memory.entry(id.clone()).or_default() += bytes;
            }
        }
        let mut state = self.state.lock();
        state.memory = memory;
        state.cluster_memory = cluster;
        state.dispatch();
    }

    /// Running and waiting queries of the group `id` (and the groups below it).
    pub fn counts(&self, id: &str) -> (usize, usize) {
        let state = self.state.lock();
        state
            .counts
            .get(id)
            .map_or((0, 0), |c| (c.running, c.queued))
    }
}

/// A running query's place in its groups, given back when dropped.
pub struct Permit {
    groups: Arc<ResourceGroups>,
    path: GroupPath,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut state = self.groups.state.lock();
        state.add(&self.path, -1, 0);
        state.dispatch();
    }
}

/// A waiting query's place in the queue. Dropping it before it is granted leaves the queue.
pub struct Ticket {
    groups: Arc<ResourceGroups>,
    path: GroupPath,
    ticket: u64,
    granted: Option<oneshot::Receiver<()>>,
}

impl Ticket {
    /// Waits for the query's turn.
    pub async fn wait(mut self) -> Permit {
        if let Some(granted) = self.granted.as_mut() {
            // The sender lives in the queue until it grants: an error cannot happen while this
            // ticket is alive, and would only mean the grant was given.
            let _ = granted.await;
        }
        self.granted = None;
        Permit {
            groups: self.groups.clone(),
            path: self.path.clone(),
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.granted.is_none() {
            return;
        }
        let mut state = self.groups.state.lock();
        if let Some(index) = state.queue.iter().position(|w| w.ticket == self.ticket) {
            state.queue.remove(index);
            state.add(&self.path, 0, -1);
        } else {
            // Granted but never taken: give the place back.
            state.add(&self.path, -1, 0);
            state.dispatch();
        }
    }
}

/// Checks a group and its subgroups: names without dots, limits that let a query in.
fn check_group(group: &GroupSpec, id: &str) -> Result<(), String> {
    if group.name.is_empty() || group.name.contains('.') {
        return Err(format!(
            "group '{id}': a name must be non-empty and without dots"
        ));
    }
    if let Some(limit) = &group.soft_memory_limit {
        SoftMemoryLimit::parse(limit).map_err(|e| format!("group '{id}': softMemoryLimit {e}"))?;
    }
    let ignored: Vec<&str> = [
        (
            "softConcurrencyLimit",
            group.soft_concurrency_limit.is_some(),
        ),
        ("schedulingPolicy", group.scheduling_policy.is_some()),
        ("schedulingWeight", group.scheduling_weight.is_some()),
        ("jmxExport", group.jmx_export.is_some()),
        ("softCpuLimit", group.soft_cpu_limit.is_some()),
        ("hardCpuLimit", group.hard_cpu_limit.is_some()),
    ]
    .into_iter()
    .filter_map(|(key, set)| set.then_some(key))
    .collect();
    if !ignored.is_empty() {
        tracing::warn!(group = %id, keys = ?ignored, "resource group keys without effect in Braid");
    }
    for sub in &group.sub_groups {
        check_group(sub, &format!("{id}.{}", sub.name))?;
    }
    Ok(())
}

/// The specs from a root group down to the dotted `group` a selector names (template names
/// as written), which must be a leaf: queries run only in groups without subgroups.
fn spec_path(roots: &[GroupSpec], group: &str) -> Result<Vec<GroupSpec>, String> {
    let mut path = Vec::new();
    let mut level = roots;
    for part in split_group_name(group) {
        let spec = level
            .iter()
            .find(|g| g.name == part)
            .ok_or_else(|| format!("no group '{part}' in '{group}'"))?;
        path.push(spec.clone());
        level = &spec.sub_groups;
    }
    if !level.is_empty() {
        return Err(format!(
            "group '{group}' has subgroups; a selector must pick a group without them"
        ));
    }
    Ok(path)
}

/// A dotted group name's parts; dots inside `${...}` do not split.
fn split_group_name(name: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut depth) = (0, 0);
    for (i, c) in name.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            '.' if depth == 0 => {
                parts.push(&name[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&name[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"{
      "rootGroups": [{
        "name": "global", "softMemoryLimit": "80%", "hardConcurrencyLimit": 3, "maxQueued": 10,
        "subGroups": [
          {"name": "adhoc_${USER}", "softMemoryLimit": "1GB", "hardConcurrencyLimit": 1,
           "maxQueued": 1, "schedulingWeight": 1},
          {"name": "etl", "hardConcurrencyLimit": 2, "maxQueued": 5}
        ]
      }],
      "selectors": [
        {"source": "airflow.*", "group": "global.etl"},
        {"clientTags": ["etl", "nightly"], "group": "global.etl"},
        {"user": "ann|bob", "group": "global.adhoc_${USER}"}
      ]
    }"#;

    fn who(user: &str, source: Option<&str>) -> Submitter {
        Submitter {
            user: user.into(),
            source: source.map(str::to_string),
            client_tags: vec![],
        }
    }

    fn run(entry: Result<Entry, QueryFailure>) -> Permit {
        match entry {
            Ok(Entry::Run(permit)) => permit,
            Ok(Entry::Queued(_)) => panic!("queued, expected to run"),
            Err(e) => panic!("{e}"),
        }
    }

    fn queued(entry: Result<Entry, QueryFailure>) -> Ticket {
        match entry {
            Ok(Entry::Queued(ticket)) => ticket,
            Ok(Entry::Run(_)) => panic!("runs, expected to wait"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn selectors_pick_groups_and_expand_templates() {
        let groups = ResourceGroups::parse(FILE).expect("valid file");
        let ann = groups.select(&who("ann", None)).expect("ann is selected");
        assert_eq!(ann.parts(), ["global", "adhoc_ann"]);
        let etl = groups
            .select(&who("ann", Some("airflow-dag")))
            .expect("etl source");
        assert_eq!(etl.id(), "global.etl");
        let carl = groups
            .select(&who("carl", Some("cli")))
            .expect_err("no rule");
        let tagged = Submitter {
            client_tags: vec!["nightly".into(), "etl".into(), "x".into()],
            ..who("carl", Some("cli"))
        };
        assert_eq!(groups.select(&tagged).expect("tags").id(), "global.etl");
        let one_tag = Submitter {
            client_tags: vec!["etl".into()],
            ..who("carl", None)
        };
        assert!(groups.select(&one_tag).is_err(), "every tag must be there");
        assert_eq!(carl.code, ErrorCode::QueryRejected);
        assert!(carl.message.contains("carl"), "{}", carl.message);
    }

    #[tokio::test]
    async fn limits_queue_and_reject_per_group() {
        let groups = ResourceGroups::parse(FILE).expect("valid file");
        let ann = groups.select(&who("ann", None)).expect("ann");
        let bob = groups.select(&who("bob", None)).expect("bob");
        let first = run(groups.enter(&ann));
        let waiting = queued(groups.enter(&ann));
        let full = groups.enter(&ann).err().expect("ann's queue is full");
        assert_eq!(full.code, ErrorCode::QueryQueueFull);
        assert!(
            full.message.contains("global.adhoc_ann"),
            "{}",
            full.message
        );
        // Bob's own group has room, and so has global (2 of 3 running).
        let bobs = run(groups.enter(&bob));
        assert_eq!(groups.counts("global"), (2, 1));
        drop(first);
        let second = waiting.wait().await;
        assert_eq!(groups.counts("global.adhoc_ann"), (1, 0));
        drop((second, bobs));
        assert_eq!(groups.counts("global"), (0, 0));
    }

    #[tokio::test]
    async fn a_group_over_its_soft_memory_limit_starts_nothing_until_it_is_under() {
        let groups = ResourceGroups::parse(FILE).expect("valid file");
        let etl = groups.select(&who("x", Some("airflow"))).expect("etl");
        let first = run(groups.enter(&etl));
        // global holds 900MB of a 1GB cluster: over its 80%.
        let held = vec![(etl.parts(), 900 << 20)];
        groups.memory_seen(&held, 1 << 30);
        let waiting = queued(groups.enter(&etl));
        assert_eq!(
            groups.counts("global.etl"),
            (1, 1),
            "room for 2, but over memory"
        );
        groups.memory_seen(&[(etl.parts(), 100 << 20)], 1 << 30);
        let second = waiting.wait().await;
        assert_eq!(groups.counts("global.etl"), (2, 0));
        drop((first, second));
    }

    #[tokio::test]
    async fn a_cancelled_wait_leaves_the_queue() {
        let groups = ResourceGroups::parse(FILE).expect("valid file");
        let ann = groups.select(&who("ann", None)).expect("ann");
        let first = run(groups.enter(&ann));
        let waiting = queued(groups.enter(&ann));
        assert_eq!(groups.counts("global.adhoc_ann"), (1, 1));
        drop(waiting);
        assert_eq!(groups.counts("global.adhoc_ann"), (1, 0));
        drop(first);
        assert_eq!(groups.counts("global"), (0, 0));
        // A grant that comes as the waiter leaves is given back.
        let first = run(groups.enter(&ann));
        let waiting = queued(groups.enter(&ann));
        drop(first);
        assert_eq!(groups.counts("global.adhoc_ann"), (1, 0), "granted");
        drop(waiting);
        assert_eq!(groups.counts("global"), (0, 0));
    }

    #[test]
    fn bad_files_name_what_is_wrong() {
        let err = |text: &str| ResourceGroups::parse(text).expect_err("invalid");
        assert!(err(r#"{"rootGroups": [], "selectors": [{"group": "nope"}]}"#).contains("'nope'"));
        assert!(
            err(
                r#"{"rootGroups": [{"name": "g", "hardConcurrencyLimit": 1, "maxQueued": 1,
                "subGroups": [{"name": "s", "hardConcurrencyLimit": 1, "maxQueued": 1}]}],
                "selectors": [{"group": "g"}]}"#
            )
            .contains("has subgroups")
        );
        assert!(
            err(
                r#"{"rootGroups": [{"name": "g", "hardConcurrencyLimit": 1, "maxQueued": 1,
                "softMemoryLimit": "lots"}], "selectors": [{"group": "g"}]}"#
            )
            .contains("softMemoryLimit")
        );
        assert!(
            err(
                r#"{"rootGroups": [{"name": "g", "hardConcurrencyLimit": 1, "maxQueued": 1}],
                "selectors": [{"user": "(", "group": "g"}]}"#
            )
            .contains("user '('")
        );
        assert!(err(r#"{"rootGroups": [], "selectors": [], "surprise": 1}"#).contains("surprise"));
    }
}
