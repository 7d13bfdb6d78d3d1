//! Git deploy: the panel asks the agent to sync an instance's files from a repository
//! (`POST /v1/instances/{id}/git/sync` on the agent API). Also the rules both sides apply
//! to repository URLs and branch names, so the agent re-checks what the panel accepted.

use serde::{Deserialize, Serialize};

/// Longest repository URL accepted.
pub const MAX_URL_LEN: usize = 2048;
/// Longest branch name accepted.
pub const MAX_BRANCH_LEN: usize = 255;
/// The transports git may use for a deploy (`GIT_ALLOW_PROTOCOL` on the agent too).
pub const ALLOWED_SCHEMES: &[&str] = &["https", "http", "ssh", "git"];

/// What the agent needs for one sync. Secrets travel only over the tunnel and are never
/// written to the agent's disk except the deploy key, for the run, in a 0600 file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// The repository URL, as validated by [`check_url`] (no credentials in it).
    pub url: String,
    /// The branch to deploy.
    pub branch: String,
    /// Directory inside the instance's files (user form, `/` = the root).
    pub target_dir: String,
    /// An OpenSSH private key for `ssh` URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_key: Option<String>,
    /// A token for `http(s)` URLs, sent as HTTP basic auth (`token_username:token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The basic-auth user name sent with `token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_username: Option<String>,
}

/// A finished sync, as the agent reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SyncResult {
    /// The full SHA-1 (or SHA-256) of the deployed commit.
    pub commit: String,
    /// The commit's subject line.
    pub message: String,
    /// Files written into the instance.
    pub files: u64,
    /// Files removed because the previous sync wrote them and the commit no longer has them.
    pub removed: u64,
}

/// The kind of repository URL [`check_url`] accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlKind {
    /// `https://` or `http://`.
    Http,
    /// `ssh://` or scp-like `user@host:path`.
    Ssh,
    /// `git://` (anonymous, read-only).
    Git,
}

/// Checks a repository URL: `https`, `http`, `ssh` and `git` URLs, and scp-like
/// `user@host:path`. Refuses local paths, `file://`, git's `transport::` helpers (`ext::`
/// runs commands), option-looking values, control characters and passwords in the URL.
///
/// # Errors
/// A message saying what is wrong.
pub fn check_url(url: &str) -> Result<UrlKind, String> {
    if url.is_empty() {
        return Err("the repository URL is required".into());
    }
    if url.len() > MAX_URL_LEN {
        return Err(format!(
            "the repository URL is longer than {MAX_URL_LEN} bytes"
        ));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("the repository URL contains spaces or control characters".into());
    }
    if url.starts_with('-') {
        return Err("the repository URL cannot start with '-'".into());
    }
    if let Some((scheme, rest)) = url.split_once("://") {
        return check_scheme_url(scheme, rest);
    }
    check_scp_like(url)
}

fn check_scheme_url(scheme: &str, rest: &str) -> Result<UrlKind, String> {
    let kind = match scheme.to_ascii_lowercase().as_str() {
        "https" | "http" => UrlKind::Http,
        "ssh" | "git+ssh" | "ssh+git" => UrlKind::Ssh,
        "git" => UrlKind::Git,
        "file" => return Err("file:// URLs are not allowed: the repository must be remote".into()),
        other => {
            return Err(format!(
                "the URL scheme {other:?} is not allowed (use https, http, ssh or git)"
            ));
        }
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if userinfo.is_some_and(|u| u.contains(':')) {
        return Err("put the password or token in the token field, not in the URL".into());
    }
    // A user name of plain characters only: `@`, `#`, `?` or `\` there would let git
    // (curl, ssh) read another host than the one checked here.
    if userinfo.is_some_and(|u| !valid_user(u)) {
        return Err("the user name in the repository URL has invalid characters".into());
    }
    let host = host_of(host_port);
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._:[]".contains(c))
    {
        return Err("the repository URL has no valid host".into());
    }
    if port_of(host_port).is_none() {
        return Err("the repository URL has an invalid port".into());
    }
    if path.trim_matches('/').is_empty() {
        return Err("the repository URL has no repository path".into());
    }
    Ok(kind)
}

fn check_scp_like(url: &str) -> Result<UrlKind, String> {
    // git's rule: a ':' before any '/' makes it scp-like `[user@]host:path`; anything
    // else is a local path.
    let Some((left, path)) = url.split_once(':') else {
        return Err("local paths are not allowed: give a remote repository URL".into());
    };
    if left.contains('/') || left.is_empty() {
        return Err("local paths are not allowed: give a remote repository URL".into());
    }
    if path.starts_with(':') {
        return Err("git transport helpers (such as ext::) are not allowed".into());
    }
    let (user, host) = left
        .rsplit_once('@')
        .map_or((None, left), |(u, h)| (Some(u), h));
    if user.is_some_and(|u| !valid_user(u)) {
        return Err("the user name in the repository URL has invalid characters".into());
    }
    if host.is_empty()
        || host.starts_with('-')
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
    {
        return Err("the repository URL has no valid host".into());
    }
    if path.trim_matches('/').is_empty() {
        return Err("the repository URL has no repository path".into());
    }
    Ok(UrlKind::Ssh)
}

/// Whether `user` (of `user@host`) is 1-255 plain characters.
fn valid_user(user: &str) -> bool {
    (1..=255).contains(&user.len())
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~+%".contains(c))
}

/// The explicit port of `host[:port]` or `[v6]:port`: `Some(None)` when there is none,
/// `None` when it is not a port number.
fn port_of(host_port: &str) -> Option<Option<u16>> {
    let rest = if host_port.starts_with('[') {
        &host_port[host_port.find(']').map_or(host_port.len(), |i| i + 1)..]
    } else {
        host_port.find(':').map_or("", |i| &host_port[i..])
    };
    match rest.strip_prefix(':') {
        None if rest.is_empty() => Some(None),
        None => None,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).map(Some),
    }
}

/// Where a repository URL connects, for the outbound guard: the transport, the host
/// (no brackets, lower case) and the port (the transport's default when not given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub kind: UrlKind,
    pub host: String,
    pub port: u16,
}

/// The [`Remote`] of a URL [`check_url`] accepts; `None` otherwise.
#[must_use]
pub fn remote(url: &str) -> Option<Remote> {
    let kind = check_url(url).ok()?;
    let (scheme, authority) = match url.split_once("://") {
        Some((scheme, rest)) => (
            scheme.to_ascii_lowercase(),
            &rest[..rest.find('/').unwrap_or(rest.len())],
        ),
        None => ("ssh".to_owned(), url.split_once(':')?.0),
    };
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host_of(host_port)
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let explicit = if url.contains("://") {
        port_of(host_port)?
    } else {
        None
    };
    let default = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        "git" => 9418,
        _ => 22,
    };
    Some(Remote {
        kind,
        host,
        port: explicit.unwrap_or(default),
    })
}

/// The host of `host[:port]` or `[v6]:port`.
fn host_of(host_port: &str) -> &str {
    if host_port.starts_with('[') {
        return host_port
            .find(']')
            .map_or(host_port, |end| &host_port[..=end]);
    }
    host_port.split(':').next().unwrap_or_default()
}

/// The identity of a repository for matching pushes against configurations: the host
/// (lower case, no user, no port) and the path without a trailing `/` or `.git`, so
/// `https://GitHub.com/o/r.git`, `git@github.com:o/r` and `ssh://git@github.com:22/o/r/`
/// all give `github.com/o/r`. `None` for a URL [`check_url`] refuses.
#[must_use]
pub fn repo_key(url: &str) -> Option<String> {
    check_url(url).ok()?;
    let (authority, path) = match url.split_once("://") {
        Some((_, rest)) => rest.split_at(rest.find('/').unwrap_or(rest.len())),
        None => url.split_once(':')?,
    };
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host_of(host_port).to_ascii_lowercase();
    let mut path = path.trim_matches('/');
    while let Some(p) = path.strip_suffix(".git") {
        path = p.trim_end_matches('/');
    }
    Some(format!("{host}/{path}"))
}

/// Checks a branch name against git's `check-ref-format --branch` rules.
///
/// # Errors
/// A message saying what is wrong.
pub fn check_branch(branch: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("invalid branch name: {why}"));
    if branch.is_empty() {
        return bad("it is empty");
    }
    if branch.len() > MAX_BRANCH_LEN {
        return bad("it is too long");
    }
    if branch.starts_with('-') || branch == "@" || branch == "HEAD" {
        return bad("it cannot be '-…', '@' or 'HEAD'");
    }
    if branch
        .chars()
        .any(|c| c.is_control() || c == ' ' || "~^:?*[\\".contains(c))
    {
        return bad("it contains a space, a control character or one of ~^:?*[\\");
    }
    if branch.contains("..") || branch.contains("@{") || branch.contains("//") {
        return bad("it contains '..', '@{' or '//'");
    }
    if branch.starts_with('/') || branch.ends_with('/') || branch.ends_with('.') {
        return bad("it starts or ends with '/' or ends with '.'");
    }
    if branch
        .split('/')
        .any(|part| part.starts_with('.') || part.ends_with(".lock"))
    {
        return bad("a component starts with '.' or ends with '.lock'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_remote_urls() {
        for (url, kind) in [
            ("https://github.com/o/r.git", UrlKind::Http),
            ("http://127.0.0.1:8080/r", UrlKind::Http),
            ("ssh://git@github.com:22/o/r.git", UrlKind::Ssh),
            ("git@github.com:o/r.git", UrlKind::Ssh),
            ("github.com:o/r", UrlKind::Ssh),
            ("git://127.0.0.1:9418/repo.git", UrlKind::Git),
            ("HTTPS://[::1]:3000/r", UrlKind::Http),
            ("https://deploy@gitlab.com/g/r.git", UrlKind::Http),
        ] {
            assert_eq!(check_url(url), Ok(kind), "{url}");
        }
    }

    #[test]
    fn refuses_local_and_dangerous_urls() {
        for url in [
            "",
            "file:///etc",
            "FILE:///srv/repo",
            "/srv/repo.git",
            "./repo",
            "../repo",
            "~/repo",
            "repo",
            "ext::sh -c touch% /tmp/pwned",
            "ext::sh",
            "fd::3",
            "-uhttps://x/y",
            "--upload-pack=touch /tmp/x",
            "https://user:pass@github.com/o/r",
            "https://github.com",
            "https:///o/r",
            "ftp://host/r",
            "https://git hub.com/o/r",
            "https://github.com/o/r\n",
            "a/b:c",
            "-oProxyCommand=x:y",
        ] {
            assert!(check_url(url).is_err(), "{url:?} must be refused");
        }
        assert!(check_url(&format!("https://h/{}", "a".repeat(MAX_URL_LEN))).is_err());
    }

    #[test]
    fn repo_keys_ignore_scheme_user_port_host_case_and_dot_git() {
        let key = Some("github.com/o/r".to_string());
        for url in [
            "https://github.com/o/r.git",
            "https://GitHub.COM/o/r",
            "https://github.com/o/r/",
            "git@github.com:o/r.git",
            "ssh://git@github.com:22/o/r.git",
            "http://github.com:80/o/r.git/",
        ] {
            assert_eq!(repo_key(url), key, "{url}");
        }
        assert_ne!(
            repo_key("https://github.com/o/R"),
            key,
            "paths keep their case"
        );
        assert_eq!(repo_key("file:///o/r"), None);
    }

    #[test]
    fn remotes_name_host_and_port() {
        let r = |url: &str| remote(url).map(|r| (r.kind, r.host, r.port));
        assert_eq!(
            r("https://GitHub.com/o/r"),
            Some((UrlKind::Http, "github.com".into(), 443))
        );
        assert_eq!(
            r("http://127.0.0.1:8080/r"),
            Some((UrlKind::Http, "127.0.0.1".into(), 8080))
        );
        assert_eq!(
            r("HTTP://[::1]:3000/r"),
            Some((UrlKind::Http, "::1".into(), 3000))
        );
        assert_eq!(
            r("https://[::ffff:7f00:1]/r"),
            Some((UrlKind::Http, "::ffff:7f00:1".into(), 443))
        );
        assert_eq!(
            r("ssh://git@h.example:2222/o/r"),
            Some((UrlKind::Ssh, "h.example".into(), 2222))
        );
        assert_eq!(
            r("git@h.example:o/r.git"),
            Some((UrlKind::Ssh, "h.example".into(), 22))
        );
        assert_eq!(
            r("git://10.0.0.1/r.git"),
            Some((UrlKind::Git, "10.0.0.1".into(), 9418))
        );
        assert_eq!(
            r("https://deploy@h.example/r"),
            Some((UrlKind::Http, "h.example".into(), 443))
        );
        for bad in [
            "https://h:99999/r",
            "https://h:x/r",
            "https://h:0/r",
            "file:///r",
        ] {
            assert_eq!(r(bad), None, "{bad}");
        }
    }

    #[test]
    fn user_names_cannot_hide_another_host() {
        for url in [
            "http://u@127.0.0.1@example.com/r",
            "http://127.0.0.1#@example.com/r",
            "http://127.0.0.1?@example.com/r",
            "http://127.0.0.1\\@example.com/r",
            "a@b@example.com:o/r",
        ] {
            assert!(check_url(url).is_err(), "{url:?} must be refused");
        }
    }

    #[test]
    fn branch_names_follow_git_rules() {
        for ok in ["main", "release/1.2", "feature-x", "v1.0_rc"] {
            assert_eq!(check_branch(ok), Ok(()), "{ok}");
        }
        for bad in [
            "", "-main", "a..b", "a b", "a~1", "a^", "a:b", "a?", "a*", "a[", "a\\b", "/a", "a/",
            "a.", "a//b", ".a", "a/.b", "a.lock", "a@{1}", "@", "HEAD", "a\tb",
        ] {
            assert!(check_branch(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
