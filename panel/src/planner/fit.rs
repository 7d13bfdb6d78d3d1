//! Scoring nodes for a workload: pure functions over [`NodeRoom`] (what a node has and
//! what is already placed on it), no I/O.
//!
//! A node qualifies when it is online, not cordoned, has reported its capacity, and has
//! room for the workload's memory, disk and CPU and its ports. Among qualifying nodes the
//! **best fit** wins, as Kubernetes' `MostAllocated` and Nomad's `binpack` do: the score
//! is the mean share of each resource that would be in use after placement (memory, disk,
//! and CPU when the node's core count is known), in per-mille, so the tightest fit scores
//! highest and big nodes stay free for big workloads. Equal scores go to the node with
//! fewer instances (spread), then to the smaller id, so the choice is stable.
//!
//! [`place_all`] places several workloads first-fit-decreasing (largest memory first,
//! each on its best fit); `recommend` uses it for `count` copies and the benchmark
//! compares it with an exact solver.

use serde::{Deserialize, Serialize};

/// A workload's demand. CPU is in millicores (1000 = one core = `cpu_percent` 100).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Demand {
    pub memory_mb: i64,
    pub cpu_millis: i64,
    pub disk_mb: i64,
    /// Ports that must be free on the node.
    pub ports: Vec<u16>,
    /// Further ports the node's range must still have free.
    pub port_count: i64,
}

/// A node as the planner sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRoom {
    pub id: String,
    pub name: String,
    pub online: bool,
    pub cordoned: bool,
    /// The memory the node last reported (`None`: it never reported).
    pub memory_total_mb: Option<i64>,
    pub memory_used_mb: i64,
    pub disk_total_mb: Option<i64>,
    pub disk_used_mb: i64,
    /// Known only for nodes the panel provisioned (their instance type's vCPUs).
    pub cpu_total_millis: Option<i64>,
    pub cpu_used_millis: i64,
    /// Free ports left in the node's automatic range.
    pub ports_free: i64,
    /// Ports taken on the node, sorted.
    pub taken: Vec<u16>,
    /// The organization's instances on it (on a platform node, only its own).
    pub instances: i64,
    /// A platform node (shared with other organizations; named by its public name).
    pub platform: bool,
}

/// How one node fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It fits; `score` is the per-mille mean utilisation after placement.
    Fits { score: i64 },
    /// It does not: a stable code and a sentence.
    Rejected { code: &'static str, reason: String },
}

impl Outcome {
    #[must_use]
    pub fn score(&self) -> Option<i64> {
        match self {
            Self::Fits { score } => Some(*score),
            Self::Rejected { .. } => None,
        }
    }
}

fn per_mille(used: i64, total: i64) -> i64 {
    if total <= 0 {
        return 1000;
    }
    (i128::from(used) * 1000 / i128::from(total)).clamp(0, 1000) as i64
}

/// Whether `room` can take `d`, and how tightly.
#[must_use]
pub fn assess(room: &NodeRoom, d: &Demand) -> Outcome {
    let reject = |code, reason: String| Outcome::Rejected { code, reason };
    if !room.online {
        return reject("NODE_OFFLINE", "offline: its agent is not connected".into());
    }
    if room.cordoned {
        return reject("NODE_CORDONED", "cordoned: takes no new servers".into());
    }
    let (Some(mem_total), Some(disk_total)) = (room.memory_total_mb, room.disk_total_mb) else {
        return reject(
            "NO_CAPACITY_REPORTED",
            "has not reported its memory and disk yet".into(),
        );
    };
    let mem_free = mem_total - room.memory_used_mb;
    if d.memory_mb > mem_free {
        return reject(
            "INSUFFICIENT_MEMORY",
            format!(
                "needs {} MB of memory, {} MB free of {mem_total}",
                d.memory_mb,
                mem_free.max(0)
            ),
        );
    }
    let disk_free = disk_total - room.disk_used_mb;
    if d.disk_mb > disk_free {
        return reject(
            "INSUFFICIENT_DISK",
            format!(
                "needs {} MB of disk, {} MB free of {disk_total}",
                d.disk_mb,
                disk_free.max(0)
            ),
        );
    }
    if let Some(cpu_total) = room.cpu_total_millis {
        let cpu_free = cpu_total - room.cpu_used_millis;
        if d.cpu_millis > cpu_free {
            return reject(
                "INSUFFICIENT_CPU",
                format!(
                    "needs {} millicores, {} free of {cpu_total}",
                    d.cpu_millis,
                    cpu_free.max(0)
                ),
            );
        }
    }
    if let Some(p) = d.ports.iter().find(|p| room.taken.binary_search(p).is_ok()) {
        return reject("PORT_TAKEN", format!("port {p} is taken on this node"));
    }
    if d.port_count > room.ports_free {
        return reject(
            "PORTS_EXHAUSTED",
            format!(
                "needs {} free ports, {} left in its range",
                d.port_count, room.ports_free
            ),
        );
    }
    let mut shares = vec![
        per_mille(room.memory_used_mb + d.memory_mb, mem_total),
        per_mille(room.disk_used_mb + d.disk_mb, disk_total),
    ];
    if let Some(cpu_total) = room.cpu_total_millis {
        shares.push(per_mille(room.cpu_used_millis + d.cpu_millis, cpu_total));
    }
    let n = i64::try_from(shares.len()).unwrap_or(1);
    Outcome::Fits {
        score: shares.iter().sum::<i64>() / n,
    }
}

/// Whether `a` (index, score) beats `b`: higher score, then fewer instances, then id.
fn better(rooms: &[NodeRoom], a: (usize, i64), b: (usize, i64)) -> bool {
    let (ra, rb) = (&rooms[a.0], &rooms[b.0]);
    (a.1, -ra.instances, std::cmp::Reverse(&ra.id))
        > (b.1, -rb.instances, std::cmp::Reverse(&rb.id))
}

/// The best node for `d` (an index into `rooms`) and every node's outcome, in order.
#[must_use]
pub fn best(rooms: &[NodeRoom], d: &Demand) -> (Option<usize>, Vec<Outcome>) {
    let outcomes: Vec<Outcome> = rooms.iter().map(|r| assess(r, d)).collect();
    (pick(rooms, &outcomes), outcomes)
}

fn pick(rooms: &[NodeRoom], outcomes: &[Outcome]) -> Option<usize> {
    let mut chosen: Option<(usize, i64)> = None;
    for (i, o) in outcomes.iter().enumerate() {
        if let Some(s) = o.score()
            && chosen.is_none_or(|c| better(rooms, (i, s), c))
        {
            chosen = Some((i, s));
        }
    }
    chosen.map(|c| c.0)
}

/// The best node for `d` without keeping the outcomes (the hot path of [`place_all`]).
#[must_use]
pub fn best_index(rooms: &[NodeRoom], d: &Demand) -> Option<usize> {
    let mut chosen: Option<(usize, i64)> = None;
    for (i, r) in rooms.iter().enumerate() {
        if let Outcome::Fits { score } = assess(r, d)
            && chosen.is_none_or(|c| better(rooms, (i, score), c))
        {
            chosen = Some((i, score));
        }
    }
    chosen.map(|c| c.0)
}

/// Books `d` on `room`.
pub fn reserve(room: &mut NodeRoom, d: &Demand) {
    room.memory_used_mb += d.memory_mb;
    room.disk_used_mb += d.disk_mb;
    room.cpu_used_millis += d.cpu_millis;
    room.ports_free -= d.port_count;
    room.taken.extend(&d.ports);
    room.taken.sort_unstable();
    room.instances += 1;
}

/// Places every demand, first-fit-decreasing: largest memory first (then CPU, then
/// disk), each on its best fit given what was placed before it. The node index of each
/// demand, in the order given (`None`: it fitted nowhere).
#[must_use]
pub fn place_all(rooms: &[NodeRoom], demands: &[Demand]) -> Vec<Option<usize>> {
    let mut rooms = rooms.to_vec();
    let mut order: Vec<usize> = (0..demands.len()).collect();
    order.sort_by_key(|&i| {
        let d = &demands[i];
        std::cmp::Reverse((d.memory_mb, d.cpu_millis, d.disk_mb))
    });
    let mut placed = vec![None; demands.len()];
    for i in order {
        if let Some(n) = best_index(&rooms, &demands[i]) {
            reserve(&mut rooms[n], &demands[i]);
            placed[i] = Some(n);
        }
    }
    placed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, mem: i64, used: i64, instances: i64) -> NodeRoom {
        NodeRoom {
            id: id.into(),
            name: id.into(),
            online: true,
            memory_total_mb: Some(mem),
            memory_used_mb: used,
            disk_total_mb: Some(100_000),
            ports_free: 10,
            instances,
            ..NodeRoom::default()
        }
    }

    fn demand(mem: i64) -> Demand {
        Demand {
            memory_mb: mem,
            disk_mb: 1000,
            port_count: 1,
            ..Demand::default()
        }
    }

    #[test]
    fn tightest_fit_wins_and_ties_spread() {
        let rooms = [
            node("a", 16_384, 0, 0),
            node("b", 8192, 0, 0),
            node("c", 2048, 0, 0),
        ];
        let (best_node, outcomes) = best(&rooms, &demand(4096));
        assert_eq!(best_node, Some(1));
        assert!(matches!(
            outcomes[2],
            Outcome::Rejected {
                code: "INSUFFICIENT_MEMORY",
                ..
            }
        ));
        let tie = [node("a", 8192, 0, 3), node("b", 8192, 0, 1)];
        assert_eq!(best(&tie, &demand(1024)).0, Some(1));
    }

    #[test]
    fn ports_and_state_reject() {
        let mut r = node("a", 8192, 0, 0);
        r.ports_free = 0;
        assert!(matches!(
            assess(&r, &demand(1)),
            Outcome::Rejected {
                code: "PORTS_EXHAUSTED",
                ..
            }
        ));
        r.ports_free = 5;
        r.taken = vec![25565];
        let d = Demand {
            ports: vec![25565],
            ..demand(1)
        };
        assert!(matches!(
            assess(&r, &d),
            Outcome::Rejected {
                code: "PORT_TAKEN",
                ..
            }
        ));
        r.cordoned = true;
        assert!(matches!(
            assess(&r, &demand(1)),
            Outcome::Rejected {
                code: "NODE_CORDONED",
                ..
            }
        ));
    }

    #[test]
    fn ffd_places_largest_first() {
        let rooms = [node("a", 4096, 0, 0), node("b", 2048, 0, 0)];
        let placed = place_all(&rooms, &[demand(2048), demand(2048), demand(2048)]);
        assert_eq!(placed.iter().filter(|p| p.is_some()).count(), 3);
    }
}
