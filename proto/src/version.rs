//! Which agent releases a panel works with. The agent sends its version on the tunnel's
//! upgrade request (`x-agent-version`); the panel answers with its own
//! ([`PANEL_VERSION_HEADER`]) and accepts agents of its major version whose minor
//! version is the panel's, one below or one above, so a fleet upgrades panel first (or
//! agents first) one minor release at a time. Anything further apart is refused with
//! 426 and code [`REFUSED_CODE`], naming both versions and what to upgrade.
//!
//! An agent that sends no version, or one that is not `MAJOR.MINOR[.PATCH][-pre]`, is
//! accepted: every released agent sends its Cargo version, so such a caller is a tool
//! or a test harness speaking the same protocol (`PROTOCOL_VERSION` still guards the
//! wire format).

/// Header carrying the panel's version on the tunnel's upgrade answer (and its refusal).
pub const PANEL_VERSION_HEADER: &str = "x-panel-version";

/// The error code of a refused agent version.
pub const REFUSED_CODE: &str = "AGENT_VERSION_UNSUPPORTED";

/// A release number, `MAJOR.MINOR.PATCH`; pre-release and build suffixes are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Release {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Release {
    /// Parses `1.2.3`, `1.2.3-rc.1`, `1.2.3+build` or `1.2` (patch 0).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let core = text.trim().split(['-', '+']).next().unwrap_or_default();
        let mut parts = core.split('.');
        let mut next = || parts.next().map(str::parse::<u64>);
        let major = next()?.ok()?;
        let minor = next()?.ok()?;
        let patch = match next() {
            None => 0,
            Some(p) => p.ok()?,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            major,
            minor,
            patch,
        })
    }
}

impl std::fmt::Display for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Whether a panel of version `panel` works with an agent reporting `agent`.
///
/// # Errors
/// The message to show both sides when they are more than one minor version apart (or
/// of different major versions), naming both versions and what to upgrade.
pub fn check(panel: &str, agent: Option<&str>) -> Result<(), String> {
    let (Some(p), Some(a)) = (Release::parse(panel), agent.and_then(Release::parse)) else {
        return Ok(());
    };
    let agent = agent.unwrap_or_default().trim();
    let panel = panel.trim();
    if a.major == p.major && a.minor.abs_diff(p.minor) <= 1 {
        return Ok(());
    }
    if (a.major, a.minor) < (p.major, p.minor) {
        let oldest = if p.minor == 0 {
            format!("{}.0", p.major)
        } else {
            format!("{}.{}", p.major, p.minor - 1)
        };
        Err(format!(
            "agent {agent} is too old for panel {panel}: upgrade the agent to {oldest} or later"
        ))
    } else {
        let needed = if a.minor == 0 {
            format!("{}.0", a.major)
        } else {
            format!("{}.{}", a.major, a.minor - 1)
        };
        Err(format!(
            "agent {agent} is too new for panel {panel}: upgrade the panel to {needed} or later"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_parse() {
        let r = |major, minor, patch| Release {
            major,
            minor,
            patch,
        };
        assert_eq!(Release::parse("0.5.0"), Some(r(0, 5, 0)));
        assert_eq!(Release::parse(" 1.2.3-rc.1 "), Some(r(1, 2, 3)));
        assert_eq!(Release::parse("1.2.3+abc"), Some(r(1, 2, 3)));
        assert_eq!(Release::parse("1.2"), Some(r(1, 2, 0)));
        for bad in ["", "1", "fake-agent", "1.x.0", "1.2.3.4", "v1.2.3"] {
            assert_eq!(Release::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn one_minor_version_apart_works_together() {
        for agent in ["0.5.0", "0.5.9", "0.4.0", "0.4.7", "0.6.0", "0.6.3-rc.1"] {
            assert_eq!(check("0.5.0", Some(agent)), Ok(()), "{agent}");
        }
        assert_eq!(check("1.0.2", Some("1.1.0")), Ok(()));
        assert_eq!(check("1.0.2", Some("1.0.0")), Ok(()));
    }

    #[test]
    fn older_agents_are_refused_naming_both_versions() {
        assert_eq!(
            check("0.5.0", Some("0.3.1")),
            Err("agent 0.3.1 is too old for panel 0.5.0: upgrade the agent to 0.4 or later".into())
        );
        assert_eq!(
            check("2.0.0", Some("1.9.4")),
            Err("agent 1.9.4 is too old for panel 2.0.0: upgrade the agent to 2.0 or later".into())
        );
    }

    #[test]
    fn much_newer_agents_are_refused_too() {
        assert_eq!(
            check("0.5.0", Some("0.7.0")),
            Err("agent 0.7.0 is too new for panel 0.5.0: upgrade the panel to 0.6 or later".into())
        );
        assert!(check("1.0.0", Some("2.0.0")).is_err());
    }

    #[test]
    fn unversioned_agents_are_accepted() {
        assert_eq!(check("0.5.0", None), Ok(()));
        assert_eq!(check("0.5.0", Some("fake-agent")), Ok(()));
    }
}
