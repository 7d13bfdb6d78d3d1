//! Ownership markers, as external-dns' TXT registry with a `txtPrefix`: every record
//! set the panel writes at `name` is named in a TXT record set at
//! `_shardlyn-owner.<name>` (a TXT cannot sit beside a CNAME, so not at `name` itself),
//! one value per type: `heritage=shardlyn,owner=<owner>,type=<TYPE>`. The owner is the
//! panel's `dns.owner_id` and the organization, so two panels (or two organizations)
//! sharing a zone never touch each other's records, nor records made by hand.
//!
//! [`plan_write`] and [`plan_remove`] turn "make this set ours" and "drop this set of
//! ours" into provider changes, after checking the zone as it is.

use std::collections::{BTreeSet, HashMap};

use super::provider::{Change, RecordSet};

/// The label the markers live under.
pub const PREFIX: &str = "_shardlyn-owner";
/// The markers' TTL.
const MARKER_TTL: u32 = 300;

/// The name of the marker set of `name`.
#[must_use]
pub fn marker_name(name: &str) -> String {
    format!("{PREFIX}.{name}")
}

/// The owner of an organization's records in this panel.
#[must_use]
pub fn owner(panel: &str, org_id: &str) -> String {
    format!("{panel}/{org_id}")
}

/// The marker value saying `owner` owns the `record_type` set at a name.
#[must_use]
pub fn marker_value(owner: &str, record_type: &str) -> String {
    format!("heritage=shardlyn,owner={owner},type={record_type}")
}

/// A zone's record sets, looked up by name and type (hash maps: a reconciliation
/// pass looks up every record of a zone of thousands).
#[derive(Debug, Clone, Default)]
pub struct ZoneView {
    sets: HashMap<(String, String), RecordSet>,
    /// The types present at each name.
    types: HashMap<String, BTreeSet<String>>,
}

impl ZoneView {
    #[must_use]
    pub fn new(sets: &[RecordSet]) -> Self {
        let mut view = Self::default();
        for s in sets {
            view.put(s.clone());
        }
        view
    }

    fn put(&mut self, set: RecordSet) {
        self.types
            .entry(set.name.clone())
            .or_default()
            .insert(set.record_type.clone());
        self.sets
            .insert((set.name.clone(), set.record_type.clone()), set);
    }

    fn remove(&mut self, name: &str, record_type: &str) {
        self.sets.remove(&(name.to_owned(), record_type.to_owned()));
        if let Some(types) = self.types.get_mut(name) {
            types.remove(record_type);
            if types.is_empty() {
                self.types.remove(name);
            }
        }
    }

    /// Applies `changes`: what the zone holds after them.
    pub fn apply(&mut self, changes: &[Change]) {
        for c in changes {
            match c {
                Change::Upsert(set) => self.put(set.clone()),
                Change::Delete { name, record_type } => self.remove(name, record_type),
            }
        }
    }

    /// The set of `name` and `record_type`.
    #[must_use]
    pub fn get(&self, name: &str, record_type: &str) -> Option<&RecordSet> {
        self.sets.get(&(name.to_owned(), record_type.to_owned()))
    }

    /// Every set at `name`.
    #[must_use]
    pub fn at(&self, name: &str) -> Vec<&RecordSet> {
        self.types
            .get(name)
            .map(|types| types.iter().filter_map(|t| self.get(name, t)).collect())
            .unwrap_or_default()
    }

    /// The marker values at `name`.
    #[must_use]
    pub fn markers(&self, name: &str) -> Vec<String> {
        self.get(&marker_name(name), "TXT")
            .map(|s| s.contents.clone())
            .unwrap_or_default()
    }

    /// Whether `owner` owns the `record_type` set at `name`.
    #[must_use]
    pub fn owns(&self, owner: &str, name: &str, record_type: &str) -> bool {
        let mine = marker_value(owner, record_type);
        self.markers(name).contains(&mine)
    }
}

/// The changes that turn `before` into `after` for the names and types in `touched`.
#[must_use]
pub fn diff(before: &ZoneView, after: &ZoneView, touched: &[(String, String)]) -> Vec<Change> {
    let mut keys: Vec<&(String, String)> = touched.iter().collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .filter_map(|(name, record_type)| {
            let (b, a) = (before.get(name, record_type), after.get(name, record_type));
            match a {
                _ if a == b => None,
                Some(set) => Some(Change::Upsert(set.clone())),
                None => Some(Change::Delete {
                    name: name.clone(),
                    record_type: record_type.clone(),
                }),
            }
        })
        .collect()
}

/// The names and types `changes` touch.
pub fn keys(changes: &[Change]) -> impl Iterator<Item = (String, String)> + '_ {
    changes.iter().map(|c| {
        let (n, t) = c.key();
        (n.to_owned(), t.to_owned())
    })
}

/// Why a set cannot be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clash {
    pub name: String,
    pub record_type: String,
    /// The type of the set in the way (the same, or a CNAME beside others).
    pub existing_type: String,
}

impl std::fmt::Display for Clash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.existing_type == self.record_type {
            write!(
                f,
                "{} already has a {} record the panel did not make; it is left as it is",
                self.name, self.record_type
            )
        } else {
            write!(
                f,
                "{} already has a {} record the panel did not make, which cannot sit beside \
                 a {}; it is left as it is",
                self.name, self.existing_type, self.record_type
            )
        }
    }
}

/// The changes that make `set` the zone's set of its name and type, owned by `owner`,
/// or the clash with a set someone else made (the set itself, or a CNAME beside other
/// types). A set that is already exactly so needs no change.
///
/// # Errors
/// The clash.
pub fn plan_write(zone: &ZoneView, owner: &str, set: &RecordSet) -> Result<Vec<Change>, Clash> {
    let clash = |existing: &RecordSet| Clash {
        name: set.name.clone(),
        record_type: set.record_type.clone(),
        existing_type: existing.record_type.clone(),
    };
    let here = zone.at(&set.name);
    for existing in &here {
        let in_the_way = existing.record_type == set.record_type
            || (set.record_type == "CNAME" && existing.record_type != "CNAME")
            || (existing.record_type == "CNAME" && set.record_type != "CNAME");
        if in_the_way && !zone.owns(owner, &set.name, &existing.record_type) {
            return Err(clash(existing));
        }
    }
    let mut changes = Vec::new();
    // A CNAME of ours in the way of another type of ours goes (and the other way).
    for existing in &here {
        let replaced = existing.record_type != set.record_type
            && (set.record_type == "CNAME" || existing.record_type == "CNAME");
        if replaced {
            changes.push(Change::Delete {
                name: existing.name.clone(),
                record_type: existing.record_type.clone(),
            });
        }
    }
    let mut markers: BTreeSet<String> = zone.markers(&set.name).into_iter().collect();
    for gone in &changes {
        if let Change::Delete { record_type, .. } = gone {
            markers.remove(&marker_value(owner, record_type));
        }
    }
    markers.insert(marker_value(owner, &set.record_type));
    let current = zone.get(&set.name, &set.record_type);
    if current != Some(set) {
        changes.push(Change::Upsert(set.clone()));
    }
    let marker = RecordSet {
        name: marker_name(&set.name),
        record_type: "TXT".into(),
        ttl: MARKER_TTL,
        contents: markers.into_iter().collect(),
    };
    if zone.get(&marker.name, "TXT") != Some(&marker) {
        changes.push(Change::Upsert(marker));
    }
    Ok(changes)
}

/// The changes that remove the set of `name` and `record_type` owned by `owner`, with
/// its marker value. Nothing when the zone does not say it is ours (someone took it
/// over or removed it).
#[must_use]
pub fn plan_remove(zone: &ZoneView, owner: &str, name: &str, record_type: &str) -> Vec<Change> {
    if !zone.owns(owner, name, record_type) {
        return Vec::new();
    }
    let mut changes = Vec::new();
    if zone.get(name, record_type).is_some() {
        changes.push(Change::Delete {
            name: name.to_owned(),
            record_type: record_type.to_owned(),
        });
    }
    let mine = marker_value(owner, record_type);
    let rest: Vec<String> = zone
        .markers(name)
        .into_iter()
        .filter(|m| *m != mine)
        .collect();
    changes.push(if rest.is_empty() {
        Change::Delete {
            name: marker_name(name),
            record_type: "TXT".into(),
        }
    } else {
        Change::Upsert(RecordSet {
            name: marker_name(name),
            record_type: "TXT".into(),
            ttl: MARKER_TTL,
            contents: rest,
        })
    });
    changes
}

/// The changes that remove each of `removes` (ours) and then write each of `writes`
/// (as ours), planned one after the other against the zone as it would be, as one
/// change per name and type that differs. The first clash stops it.
///
/// # Errors
/// The clash.
pub fn plan(
    zone: &[RecordSet],
    owner: &str,
    writes: &[RecordSet],
    removes: &[(String, String)],
) -> Result<Vec<Change>, Clash> {
    let before = ZoneView::new(zone);
    let mut after = before.clone();
    let mut touched = Vec::new();
    for (name, record_type) in removes {
        let c = plan_remove(&after, owner, name, record_type);
        after.apply(&c);
        touched.extend(keys(&c));
    }
    for set in writes {
        let c = plan_write(&after, owner, set)?;
        after.apply(&c);
        touched.extend(keys(&c));
    }
    Ok(diff(&before, &after, &touched))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, t: &str, contents: &[&str]) -> RecordSet {
        RecordSet {
            name: name.into(),
            record_type: t.into(),
            ttl: 300,
            contents: contents.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn a_set_someone_else_made_is_never_overwritten() {
        let me = owner("shardlyn", "org1");
        let zone = vec![set("mc.example.com", "A", &["198.51.100.1"])];
        let view = ZoneView::new(&zone);
        let want = set("mc.example.com", "A", &["203.0.113.10"]);
        let clash = plan_write(&view, &me, &want).expect_err("clash");
        assert_eq!(clash.existing_type, "A");
        // A CNAME by hand is in the way of an A, and the other way round.
        let zone = vec![set("mc.example.com", "CNAME", &["x.example.com"])];
        assert!(plan_write(&ZoneView::new(&zone), &me, &want).is_err());
        let zone = vec![set("mc.example.com", "TXT", &["hello"])];
        let cname = set("mc.example.com", "CNAME", &["x.example.com"]);
        assert!(plan_write(&ZoneView::new(&zone), &me, &cname).is_err());
        // Another owner's marker does not make it ours.
        let other = owner("shardlyn", "org2");
        let zone = vec![
            set("mc.example.com", "A", &["198.51.100.1"]),
            set(
                "_shardlyn-owner.mc.example.com",
                "TXT",
                &[&marker_value(&other, "A")],
            ),
        ];
        assert!(plan_write(&ZoneView::new(&zone), &me, &want).is_err());
    }

    #[test]
    fn our_sets_are_written_with_their_marker_and_removed_with_it() {
        let me = owner("shardlyn", "org1");
        let want = set("mc.example.com", "A", &["203.0.113.10"]);
        let changes = plan_write(&ZoneView::new(&[]), &me, &want).expect("fresh");
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0], Change::Upsert(want.clone()));
        let Change::Upsert(marker) = &changes[1] else {
            panic!("marker upsert: {changes:?}");
        };
        assert_eq!(marker.name, "_shardlyn-owner.mc.example.com");
        assert_eq!(marker.contents, vec![marker_value(&me, "A")]);
        // Written: nothing to do the second time; a TXT beside it keeps the marker's
        // other value.
        let zone = vec![want.clone(), marker.clone()];
        assert!(
            plan_write(&ZoneView::new(&zone), &me, &want)
                .expect("same")
                .is_empty()
        );
        let txt = set("mc.example.com", "TXT", &["v=1"]);
        let both = plan_write(&ZoneView::new(&zone), &me, &txt).expect("txt");
        let Some(Change::Upsert(m)) = both.last() else {
            panic!("{both:?}");
        };
        assert_eq!(m.contents.len(), 2);
        // Removing the A keeps the TXT's marker value; removing a set not ours does
        // nothing.
        let zone = vec![want.clone(), txt, m.clone()];
        let gone = plan_remove(&ZoneView::new(&zone), &me, "mc.example.com", "A");
        assert_eq!(gone.len(), 2);
        assert!(
            matches!(&gone[1], Change::Upsert(s) if s.contents == vec![marker_value(&me, "TXT")])
        );
        let other = owner("shardlyn", "org2");
        assert!(plan_remove(&ZoneView::new(&zone), &other, "mc.example.com", "A").is_empty());
        // Our own CNAME makes way for our A.
        let cname = set("mc.example.com", "CNAME", &["x.example.com"]);
        let cmark = set(
            "_shardlyn-owner.mc.example.com",
            "TXT",
            &[&marker_value(&me, "CNAME")],
        );
        let zone = vec![cname, cmark];
        let swap = plan_write(&ZoneView::new(&zone), &me, &want).expect("swap");
        assert!(swap.contains(&Change::Delete {
            name: "mc.example.com".into(),
            record_type: "CNAME".into()
        }));
        let mut planned = plan(&zone, &me, &[want], &[]).expect("plan");
        let mut swap = swap;
        planned.sort_by(|a, b| a.key().cmp(&b.key()));
        swap.sort_by(|a, b| a.key().cmp(&b.key()));
        assert_eq!(planned, swap);
    }
}
