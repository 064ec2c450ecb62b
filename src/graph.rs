//! Service dependency graph: start/stop ordering, cycle detection and
//! dependency closure for `up svc` / `down svc` / restart propagation.
//!
//! The module deliberately knows nothing about the compose model: callers
//! flatten `depends_on`, `links`, `network_mode: service:x`, `volumes_from`,
//! `ipc: service:x` and `pid: service:x` into plain [`Dependency`] edges.
//!
//! Internally an edge points from the dependent service to its dependency
//! (`web -> db` means "web needs db started first"), which is also how it is
//! drawn by [`DependencyGraph::to_dot`] and how cycles are reported.

use std::collections::HashMap;
use std::fmt;

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Dfs, Reversed};
use petgraph::Direction;

/// Why one service depends on another (for messages and for `restart` semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EdgeKind {
    /// `depends_on:`
    DependsOn,
    /// `links:`
    Link,
    /// `network_mode: service:<name>`
    NetworkMode,
    /// `volumes_from: <name>`
    VolumesFrom,
    /// `ipc: service:<name>`
    IpcMode,
    /// `pid: service:<name>`
    PidMode,
}

impl EdgeKind {
    /// The compose-flavoured label used in DOT output and messages.
    pub fn label(self) -> &'static str {
        match self {
            EdgeKind::DependsOn => "depends_on",
            EdgeKind::Link => "links",
            EdgeKind::NetworkMode => "network_mode",
            EdgeKind::VolumesFrom => "volumes_from",
            EdgeKind::IpcMode => "ipc",
            EdgeKind::PidMode => "pid",
        }
    }
}

impl fmt::Display for EdgeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A dependency edge: `service` needs `dependency` started first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The dependent service.
    pub service: String,
    /// The service that must be started before `service`.
    pub dependency: String,
    /// Which compose key produced this edge.
    pub kind: EdgeKind,
}

impl Dependency {
    /// Convenience constructor, mostly for callers flattening the compose model.
    pub fn new(service: impl Into<String>, dependency: impl Into<String>, kind: EdgeKind) -> Self {
        Self {
            service: service.into(),
            dependency: dependency.into(),
            kind,
        }
    }
}

/// Errors detected while building the graph.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// The whole cycle, e.g. `["a","b","c","a"]`: starts and ends with the
    /// alphabetically smallest service on it, in dependency order.
    #[error("dependency cycle: {}", .0.join(" → "))]
    Cycle(Vec<String>),
    /// An edge mentions a service that is not in the service set.
    #[error("service {service:?} depends on undefined service {dependency:?}")]
    UndefinedService {
        /// The dependent service.
        service: String,
        /// The missing dependency.
        dependency: String,
    },
}

/// An acyclic, validated service dependency graph.
///
/// Layering is computed once in [`DependencyGraph::build`], so the wave
/// queries are cheap and the graph is immutable afterwards.
#[derive(Debug, Clone)]
pub struct DependencyGraph {
    /// Node weight: service name. Edge `a -> b`: `a` depends on `b`.
    graph: DiGraph<String, EdgeKind>,
    /// Name → node lookup, so queries by name are O(1).
    index: HashMap<String, NodeIndex>,
    /// Start wave per node (indexed by `NodeIndex::index()`).
    start_level: Vec<usize>,
    /// Stop wave per node (indexed by `NodeIndex::index()`).
    stop_level: Vec<usize>,
}

impl DependencyGraph {
    /// Builds and validates the graph.
    ///
    /// `services` may be in any order; repeated names are collapsed.
    /// Edges may repeat: only one edge is kept per `(service, dependency)`
    /// pair and it records the kind of the **first** occurrence in `deps`
    /// (callers pass `depends_on` first, so the most explicit reason wins).
    ///
    /// # Errors
    ///
    /// Checked in this order:
    /// * [`GraphError::UndefinedService`] for the first edge (in `deps`
    ///   order) whose `dependency` — or, as a caller bug, whose `service` —
    ///   is not in `services`;
    /// * [`GraphError::Cycle`] with one concrete, deterministic cycle.
    pub fn build<S: AsRef<str>>(services: &[S], deps: &[Dependency]) -> Result<Self, GraphError> {
        let (mut graph, index) = Self::nodes(services);
        Self::add_edges(&mut graph, &index, deps)?;
        let Ok(order) = toposort(&graph, None) else {
            return Err(GraphError::Cycle(find_cycle(&graph)));
        };
        let (start_level, stop_level) = levels(&graph, &order);
        Ok(Self {
            graph,
            index,
            start_level,
            stop_level,
        })
    }

    /// Creates one node per distinct service name.
    fn nodes<S: AsRef<str>>(services: &[S]) -> (DiGraph<String, EdgeKind>, HashMap<String, NodeIndex>) {
        let mut graph = DiGraph::with_capacity(services.len(), 0);
        let mut index = HashMap::with_capacity(services.len());
        for name in services {
            let name = name.as_ref();
            if !index.contains_key(name) {
                let node = graph.add_node(name.to_owned());
                index.insert(name.to_owned(), node);
            }
        }
        (graph, index)
    }

    /// Adds deduplicated edges, rejecting references to unknown services.
    fn add_edges(
        graph: &mut DiGraph<String, EdgeKind>,
        index: &HashMap<String, NodeIndex>,
        deps: &[Dependency],
    ) -> Result<(), GraphError> {
        for dep in deps {
            let (Some(&from), Some(&to)) = (index.get(&dep.service), index.get(&dep.dependency)) else {
                return Err(GraphError::UndefinedService {
                    service: dep.service.clone(),
                    dependency: dep.dependency.clone(),
                });
            };
            // `find_edge` keeps the first kind; it is linear in the node's
            // out-degree, which is tiny for compose files.
            if graph.find_edge(from, to).is_none() {
                graph.add_edge(from, to, dep.kind);
            }
        }
        Ok(())
    }

    /// Number of services.
    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    /// Whether the graph has no services.
    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// Whether `service` is part of the graph.
    pub fn contains(&self, service: &str) -> bool {
        self.index.contains_key(service)
    }

    /// The kind recorded for the direct edge `service -> dependency`, if any
    /// (the first kind given for that pair, see [`DependencyGraph::build`]).
    pub fn edge_kind(&self, service: &str, dependency: &str) -> Option<EdgeKind> {
        let from = *self.index.get(service)?;
        let to = *self.index.get(dependency)?;
        let edge = self.graph.find_edge(from, to)?;
        self.graph.edge_weight(edge).copied()
    }

    /// Start order in waves: wave 0 holds services with no dependencies,
    /// each later wave services whose dependencies all sit in earlier waves.
    /// Longest-path layering, so every service starts as early as possible.
    /// Names inside a wave are sorted so output is deterministic.
    pub fn start_waves(&self) -> Vec<Vec<String>> {
        self.waves(&self.start_level)
    }

    /// Stop order in waves: a service stops before its dependencies.
    /// Wave 0 holds services nothing depends on; layering is longest-path
    /// from the dependents' side, so every service stops as early as
    /// possible. Names inside a wave are sorted.
    pub fn stop_waves(&self) -> Vec<Vec<String>> {
        self.waves(&self.stop_level)
    }

    /// Groups node names by their precomputed level.
    fn waves(&self, level: &[usize]) -> Vec<Vec<String>> {
        let depth = level.iter().max().map_or(0, |max| max + 1);
        let mut waves = vec![Vec::new(); depth];
        for node in self.graph.node_indices() {
            waves[level[node.index()]].push(self.graph[node].clone());
        }
        for wave in &mut waves {
            wave.sort();
        }
        waves
    }

    /// Direct dependencies of a service (sorted; empty for unknown names).
    pub fn dependencies(&self, service: &str) -> Vec<String> {
        self.neighbors(service, Direction::Outgoing)
    }

    /// Direct dependents of a service (sorted; empty for unknown names).
    pub fn dependents(&self, service: &str) -> Vec<String> {
        self.neighbors(service, Direction::Incoming)
    }

    /// Sorted names of the direct neighbours in one direction.
    fn neighbors(&self, service: &str, direction: Direction) -> Vec<String> {
        let Some(&node) = self.index.get(service) else {
            return Vec::new();
        };
        let mut names: Vec<String> = self
            .graph
            .neighbors_directed(node, direction)
            .map(|n| self.graph[n].clone())
            .collect();
        names.sort();
        names
    }

    /// The given services plus everything they transitively depend on
    /// (sorted) — `up svc` brings its dependencies along.
    /// Unknown names are ignored.
    pub fn with_dependencies(&self, services: &[String]) -> Vec<String> {
        let starts = self.known(services);
        let mut dfs = Dfs::empty(&self.graph);
        let mut seen = Vec::new();
        for start in starts {
            dfs.move_to(start);
            while let Some(node) = dfs.next(&self.graph) {
                seen.push(node);
            }
        }
        self.sorted_names(seen)
    }

    /// The given services plus everything that transitively depends on them
    /// (sorted) — `down svc` and restart propagation must take dependents
    /// along. Unknown names are ignored.
    pub fn with_dependents(&self, services: &[String]) -> Vec<String> {
        let reversed = Reversed(&self.graph);
        let starts = self.known(services);
        let mut dfs = Dfs::empty(reversed);
        let mut seen = Vec::new();
        for start in starts {
            dfs.move_to(start);
            while let Some(node) = dfs.next(reversed) {
                seen.push(node);
            }
        }
        self.sorted_names(seen)
    }

    /// Node indices of the names that exist in the graph.
    fn known(&self, services: &[String]) -> Vec<NodeIndex> {
        services
            .iter()
            .filter_map(|name| self.index.get(name).copied())
            .collect()
    }

    /// Names of `nodes`, sorted and deduplicated.
    fn sorted_names(&self, nodes: Vec<NodeIndex>) -> Vec<String> {
        let mut names: Vec<String> = nodes.into_iter().map(|n| self.graph[n].clone()).collect();
        names.sort();
        names.dedup();
        names
    }

    /// Graphviz DOT rendering: node lines sorted by name, then edge lines
    /// (`"web" -> "db" [label="depends_on"];`) sorted, so the output is
    /// stable and diffable.
    pub fn to_dot(&self) -> String {
        let mut nodes: Vec<String> = self
            .graph
            .node_weights()
            .map(|name| format!("  {};\n", dot_quote(name)))
            .collect();
        nodes.sort();
        let mut edges: Vec<String> = self
            .graph
            .edge_indices()
            .filter_map(|edge| {
                let (from, to) = self.graph.edge_endpoints(edge)?;
                let kind = self.graph[edge];
                Some(format!(
                    "  {} -> {} [label=\"{}\"];\n",
                    dot_quote(&self.graph[from]),
                    dot_quote(&self.graph[to]),
                    kind.label()
                ))
            })
            .collect();
        edges.sort();
        let mut out = String::from("digraph services {\n");
        out.extend(nodes);
        out.extend(edges);
        out.push_str("}\n");
        out
    }
}

/// Quotes a name as a DOT identifier, escaping `"` and `\`.
fn dot_quote(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Longest-path start and stop levels from a topological order in which
/// every dependent precedes its dependencies (edge direction `a -> b`).
fn levels(graph: &DiGraph<String, EdgeKind>, order: &[NodeIndex]) -> (Vec<usize>, Vec<usize>) {
    let mut start = vec![0; graph.node_count()];
    let mut stop = vec![0; graph.node_count()];
    // Dependencies come last in `order`, so walk it backwards for starts…
    for &node in order.iter().rev() {
        start[node.index()] = graph
            .neighbors_directed(node, Direction::Outgoing)
            .map(|dep| start[dep.index()] + 1)
            .max()
            .unwrap_or(0);
    }
    // …and forwards for stops (dependents first).
    for &node in order {
        stop[node.index()] = graph
            .neighbors_directed(node, Direction::Incoming)
            .map(|dependent| stop[dependent.index()] + 1)
            .max()
            .unwrap_or(0);
    }
    (start, stop)
}

/// Extracts one concrete cycle from a graph known to be cyclic.
///
/// Determinism: among the cyclic strongly connected components, take the one
/// holding the alphabetically smallest name; start there and walk a shortest
/// cycle back to it (BFS, neighbours visited in name order). The result starts
/// and ends with that name, e.g. `["a", "b", "c", "a"]`, or `["a", "a"]` for a
/// self-dependency. Returns an empty path only if the graph is in fact acyclic,
/// which callers rule out first.
fn find_cycle(graph: &DiGraph<String, EdgeKind>) -> Vec<String> {
    let Some((root, component)) = smallest_cyclic_component(graph) else {
        return Vec::new();
    };
    let path = shortest_cycle_from(graph, root, &component);
    path.into_iter().map(|n| graph[n].clone()).collect()
}

/// The cyclic SCC containing the smallest service name, with that node.
/// An SCC is cyclic if it has several nodes or a single node with a self-loop.
fn smallest_cyclic_component(graph: &DiGraph<String, EdgeKind>) -> Option<(NodeIndex, Vec<bool>)> {
    tarjan_scc(graph)
        .into_iter()
        .filter(|scc| scc.len() > 1 || scc.iter().any(|&n| graph.contains_edge(n, n)))
        .filter_map(|scc| {
            let root = *scc.iter().min_by(|a, b| graph[**a].cmp(&graph[**b]))?;
            Some((root, scc))
        })
        .min_by(|(a, _), (b, _)| graph[*a].cmp(&graph[*b]))
        .map(|(root, scc)| {
            let mut member = vec![false; graph.node_count()];
            for n in scc {
                member[n.index()] = true;
            }
            (root, member)
        })
}

/// BFS inside one SCC from `root` back to `root`; returns `root … root`.
fn shortest_cycle_from(graph: &DiGraph<String, EdgeKind>, root: NodeIndex, member: &[bool]) -> Vec<NodeIndex> {
    let mut parent: Vec<Option<NodeIndex>> = vec![None; graph.node_count()];
    let mut queue = std::collections::VecDeque::from([root]);
    while let Some(node) = queue.pop_front() {
        for next in sorted_successors(graph, node) {
            if next == root {
                return unwind(&parent, root, node);
            }
            if member[next.index()] && parent[next.index()].is_none() {
                parent[next.index()] = Some(node);
                queue.push_back(next);
            }
        }
    }
    Vec::new()
}

/// Successors of `node` ordered by name, for deterministic traversal.
fn sorted_successors(graph: &DiGraph<String, EdgeKind>, node: NodeIndex) -> Vec<NodeIndex> {
    let mut next: Vec<NodeIndex> = graph.neighbors(node).collect();
    next.sort_by(|a, b| graph[*a].cmp(&graph[*b]));
    next.dedup();
    next
}

/// Rebuilds `root → … → last → root` from BFS parent links.
fn unwind(parent: &[Option<NodeIndex>], root: NodeIndex, last: NodeIndex) -> Vec<NodeIndex> {
    let mut path = vec![root, last];
    let mut node = last;
    while node != root {
        match parent[node.index()] {
            Some(p) => {
                path.push(p);
                node = p;
            }
            // Unreachable: every queued node except root has a parent.
            None => break,
        }
    }
    // `path` is [root, last, …, root] read backwards after the first entry.
    path.reverse();
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn dep(service: &str, dependency: &str) -> Dependency {
        Dependency::new(service, dependency, EdgeKind::DependsOn)
    }

    fn waves(spec: &[&[&str]]) -> Vec<Vec<String>> {
        spec.iter()
            .map(|wave| wave.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn build(services: &[&str], deps: &[Dependency]) -> DependencyGraph {
        DependencyGraph::build(services, deps).expect("graph should build")
    }

    fn cycle_message(services: &[&str], deps: &[Dependency]) -> String {
        DependencyGraph::build(services, deps)
            .expect_err("cycle expected")
            .to_string()
    }

    #[test]
    fn empty_graph() {
        let g = build(&[], &[]);
        assert!(g.is_empty());
        assert!(g.start_waves().is_empty());
        assert!(g.stop_waves().is_empty());
        assert_eq!(g.to_dot(), "digraph services {\n}\n");
        assert!(g.with_dependencies(&names(&["x"])).is_empty());
    }

    #[test]
    fn single_service() {
        let g = build(&["web"], &[]);
        assert_eq!(g.len(), 1);
        assert_eq!(g.start_waves(), waves(&[&["web"]]));
        assert_eq!(g.stop_waves(), waves(&[&["web"]]));
        assert!(g.dependencies("web").is_empty());
        assert!(g.dependents("web").is_empty());
    }

    #[test]
    fn chain() {
        let g = build(&["a", "b", "c"], &[dep("a", "b"), dep("b", "c")]);
        assert_eq!(g.start_waves(), waves(&[&["c"], &["b"], &["a"]]));
        assert_eq!(g.stop_waves(), waves(&[&["a"], &["b"], &["c"]]));
    }

    #[test]
    fn diamond_fan_out_fan_in() {
        // top depends on left and right, both depend on base.
        let g = build(
            &["top", "left", "right", "base"],
            &[
                dep("top", "left"),
                dep("top", "right"),
                dep("left", "base"),
                dep("right", "base"),
            ],
        );
        assert_eq!(g.start_waves(), waves(&[&["base"], &["left", "right"], &["top"]]));
        assert_eq!(g.stop_waves(), waves(&[&["top"], &["left", "right"], &["base"]]));
        assert_eq!(g.dependencies("top"), names(&["left", "right"]));
        assert_eq!(g.dependents("base"), names(&["left", "right"]));
    }

    #[test]
    fn disconnected_components_share_waves() {
        let g = build(&["z", "y", "b", "a", "lonely"], &[dep("a", "b"), dep("y", "z")]);
        assert_eq!(g.start_waves(), waves(&[&["b", "lonely", "z"], &["a", "y"]]));
        assert_eq!(g.stop_waves(), waves(&[&["a", "lonely", "y"], &["b", "z"]]));
    }

    #[test]
    fn longest_path_layering() {
        let g = build(
            &["d", "c", "b", "a"],
            &[dep("d", "a"), dep("d", "c"), dep("c", "b"), dep("b", "a")],
        );
        assert_eq!(g.start_waves(), waves(&[&["a"], &["b"], &["c"], &["d"]]));
        assert_eq!(g.stop_waves(), waves(&[&["d"], &["c"], &["b"], &["a"]]));
    }

    #[test]
    fn self_cycle() {
        let err = DependencyGraph::build(&["a"], &[dep("a", "a")]).expect_err("cycle");
        assert_eq!(err, GraphError::Cycle(names(&["a", "a"])));
        assert_eq!(err.to_string(), "dependency cycle: a → a");
    }

    #[test]
    fn two_cycle() {
        assert_eq!(
            cycle_message(&["b", "a"], &[dep("b", "a"), dep("a", "b")]),
            "dependency cycle: a → b → a"
        );
    }

    #[test]
    fn three_cycle_starts_at_smallest_name() {
        // Declared starting from "b" on purpose: report must still start at "a".
        assert_eq!(
            cycle_message(&["c", "b", "a"], &[dep("b", "c"), dep("c", "a"), dep("a", "b")]),
            "dependency cycle: a → b → c → a"
        );
        // Direction matters: here a depends on c.
        assert_eq!(
            cycle_message(&["a", "b", "c"], &[dep("a", "c"), dep("c", "b"), dep("b", "a")]),
            "dependency cycle: a → c → b → a"
        );
    }

    #[test]
    fn cycle_inside_larger_graph() {
        let services = ["app", "cache", "db", "proxy", "queue", "worker"];
        let deps = [
            dep("proxy", "app"),
            dep("app", "cache"),
            dep("app", "queue"),
            dep("queue", "worker"),
            dep("worker", "db"),
            dep("worker", "queue"),
            dep("db", "cache"),
        ];
        let err = DependencyGraph::build(&services, &deps).expect_err("cycle");
        assert_eq!(err, GraphError::Cycle(names(&["queue", "worker", "queue"])));
        assert_eq!(err.to_string(), "dependency cycle: queue → worker → queue");
    }

    #[test]
    fn reports_shortest_cycle_through_smallest_service() {
        // a → b → c → a and a → c → a are both cycles; the shorter one wins.
        let deps = [dep("a", "b"), dep("b", "c"), dep("c", "a"), dep("a", "c")];
        assert_eq!(cycle_message(&["a", "b", "c"], &deps), "dependency cycle: a → c → a");
    }

    #[test]
    fn undefined_service() {
        let err = DependencyGraph::build(&["web"], &[dep("web", "db")]).expect_err("undefined");
        assert_eq!(
            err,
            GraphError::UndefinedService {
                service: "web".into(),
                dependency: "db".into()
            }
        );
        assert_eq!(err.to_string(), r#"service "web" depends on undefined service "db""#);
    }

    #[test]
    fn undefined_service_reported_before_cycle() {
        let err = DependencyGraph::build(&["a"], &[dep("a", "a"), dep("a", "ghost")]).expect_err("undefined");
        assert!(matches!(err, GraphError::UndefinedService { .. }));
    }

    #[test]
    fn duplicate_edges_and_services_collapse() {
        let g = build(
            &["web", "db", "web"],
            &[
                dep("web", "db"),
                Dependency::new("web", "db", EdgeKind::Link),
                dep("web", "db"),
            ],
        );
        assert_eq!(g.len(), 2);
        assert_eq!(g.dependencies("web"), names(&["db"]));
        assert_eq!(g.dependents("db"), names(&["web"]));
        assert_eq!(g.edge_kind("web", "db"), Some(EdgeKind::DependsOn));
        assert_eq!(g.edge_kind("db", "web"), None);
        assert_eq!(g.start_waves(), waves(&[&["db"], &["web"]]));
    }

    #[test]
    fn transitive_closures() {
        // proxy → web → {api, static}; api → db; worker → db; admin isolated.
        let g = build(
            &["admin", "api", "db", "proxy", "static", "web", "worker"],
            &[
                dep("proxy", "web"),
                dep("web", "api"),
                dep("web", "static"),
                dep("api", "db"),
                dep("worker", "db"),
            ],
        );
        assert_eq!(
            g.with_dependencies(&names(&["web"])),
            names(&["api", "db", "static", "web"])
        );
        assert_eq!(
            g.with_dependencies(&names(&["proxy", "worker", "nope"])),
            names(&["api", "db", "proxy", "static", "web", "worker"])
        );
        assert_eq!(
            g.with_dependents(&names(&["db"])),
            names(&["api", "db", "proxy", "web", "worker"])
        );
        assert_eq!(
            g.with_dependents(&names(&["static", "admin"])),
            names(&["admin", "proxy", "static", "web"])
        );
        assert!(g.with_dependents(&[]).is_empty());
    }

    #[test]
    fn unknown_names_are_harmless() {
        let g = build(&["a"], &[]);
        assert!(!g.contains("b"));
        assert!(g.dependencies("b").is_empty());
        assert!(g.dependents("b").is_empty());
        assert_eq!(g.edge_kind("a", "b"), None);
    }

    #[test]
    fn dot_output() {
        let g = build(
            &["web", "db", "cache", "net"],
            &[
                dep("web", "db"),
                Dependency::new("web", "cache", EdgeKind::Link),
                Dependency::new("web", "net", EdgeKind::NetworkMode),
                Dependency::new("cache", "db", EdgeKind::VolumesFrom),
            ],
        );
        let expected = "digraph services {
  \"cache\";
  \"db\";
  \"net\";
  \"web\";
  \"cache\" -> \"db\" [label=\"volumes_from\"];
  \"web\" -> \"cache\" [label=\"links\"];
  \"web\" -> \"db\" [label=\"depends_on\"];
  \"web\" -> \"net\" [label=\"network_mode\"];
}
";
        assert_eq!(g.to_dot(), expected);
    }

    #[test]
    fn edge_kind_labels() {
        let labels: Vec<&str> = [
            EdgeKind::DependsOn,
            EdgeKind::Link,
            EdgeKind::NetworkMode,
            EdgeKind::VolumesFrom,
            EdgeKind::IpcMode,
            EdgeKind::PidMode,
        ]
        .iter()
        .map(|k| k.label())
        .collect();
        assert_eq!(
            labels,
            ["depends_on", "links", "network_mode", "volumes_from", "ipc", "pid"]
        );
        assert_eq!(EdgeKind::PidMode.to_string(), "pid");
    }

    #[test]
    fn dot_escapes_quotes() {
        assert_eq!(dot_quote(r#"we"ird\"#), r#""we\"ird\\""#);
    }

    #[test]
    fn large_graph_is_fast() {
        let services: Vec<String> = (0..500).map(|i| format!("svc{i:03}")).collect();
        let deps: Vec<Dependency> = (1..500).map(|i| dep(&services[i], &services[i / 2])).collect();
        let started = Instant::now();
        let g = DependencyGraph::build(&services, &deps).expect("acyclic");
        let start = g.start_waves();
        let stop = g.stop_waves();
        let elapsed = started.elapsed();
        println!("500 services: build + layering took {elapsed:?}");
        // i depends on i/2: svc_i sits in wave floor(log2(i)) + 1, so 499 → wave 9.
        assert_eq!(start.len(), 10);
        assert_eq!(start[0], names(&["svc000"]));
        assert_eq!(start.iter().map(Vec::len).sum::<usize>(), 500);
        assert_eq!(stop.iter().map(Vec::len).sum::<usize>(), 500);
        assert_eq!(g.with_dependents(&names(&["svc000"])).len(), 500);
        // 499 → 249 → 124 → 62 → 31 → 15 → 7 → 3 → 1 → 0
        assert_eq!(g.with_dependencies(&names(&["svc499"])).len(), 10);
    }

    #[test]
    fn large_cycle_is_reported_in_full() {
        let services: Vec<String> = (0..200).map(|i| format!("s{i:03}")).collect();
        let deps: Vec<Dependency> = (0..200).map(|i| dep(&services[i], &services[(i + 1) % 200])).collect();
        match DependencyGraph::build(&services, &deps) {
            Err(GraphError::Cycle(path)) => {
                assert_eq!(path.len(), 201);
                assert_eq!(path.first().map(String::as_str), Some("s000"));
                assert_eq!(path.get(1).map(String::as_str), Some("s001"));
                assert_eq!(path.last().map(String::as_str), Some("s000"));
            }
            other => panic!("expected cycle, got {other:?}"),
        }
    }
}
