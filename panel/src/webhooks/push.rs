//! Push events from GitHub and GitLab, reduced to what a deploy needs, and the hook point
//! that acts on them. [`on_push`] runs once per verified, first-seen delivery of a push to
//! a branch; git deploys (the instances' git settings) trigger their syncs from it.

use serde_json::Value;

use crate::state::AppState;

/// A push to a branch of a repository, received for an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEvent {
    pub org_id: String,
    /// `github` or `gitlab`.
    pub provider: &'static str,
    pub delivery_id: String,
    /// The repository's clone URL (`https://github.com/owner/repo.git`).
    pub repo_url: String,
    /// Another URL of the same repository (its web page), for matching either form.
    pub web_url: Option<String>,
    /// The branch, without `refs/heads/`.
    pub branch: String,
    /// The commit the branch now points at.
    pub commit: Option<String>,
}

/// What a push payload names, before it is tied to an organization.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PushRef {
    pub repo_url: Option<String>,
    pub web_url: Option<String>,
    /// `Some` for a push to a branch (`refs/heads/...`), `None` for tags.
    pub branch: Option<String>,
    pub commit: Option<String>,
    /// The branch was deleted (nothing to deploy).
    pub deleted: bool,
}

fn text(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn branch_of(git_ref: Option<String>) -> Option<String> {
    git_ref.and_then(|r| r.strip_prefix("refs/heads/").map(str::to_string))
}

fn is_zero_sha(sha: Option<&str>) -> bool {
    sha.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b == b'0'))
}

/// Reads a GitHub `push` payload.
#[must_use]
pub fn github_push(payload: &Value) -> PushRef {
    let commit = text(payload, "/after");
    PushRef {
        repo_url: text(payload, "/repository/clone_url")
            .or_else(|| text(payload, "/repository/html_url")),
        web_url: text(payload, "/repository/html_url"),
        branch: branch_of(text(payload, "/ref")),
        deleted: payload.get("deleted").and_then(Value::as_bool) == Some(true)
            || is_zero_sha(commit.as_deref()),
        commit,
    }
}

/// Reads a GitLab `Push Hook` payload.
#[must_use]
pub fn gitlab_push(payload: &Value) -> PushRef {
    let commit = text(payload, "/checkout_sha").or_else(|| text(payload, "/after"));
    PushRef {
        repo_url: text(payload, "/project/git_http_url")
            .or_else(|| text(payload, "/repository/git_http_url"))
            .or_else(|| text(payload, "/project/web_url")),
        web_url: text(payload, "/project/web_url"),
        branch: branch_of(text(payload, "/ref")),
        deleted: is_zero_sha(text(payload, "/after").as_deref()),
        commit,
    }
}

/// Called once for each first-seen push to a branch, after the delivery was recorded.
/// Failures here are the consumer's to log: the sender already got its 2xx.
pub async fn on_push(state: &AppState, event: &PushEvent) {
    tracing::info!(
        webhook.provider = event.provider,
        webhook.delivery_id = %event.delivery_id,
        org.id = %event.org_id,
        git.repository = %event.repo_url,
        git.branch = %event.branch,
        git.commit = event.commit.as_deref().unwrap_or(""),
        "push received"
    );
    crate::git::on_push(state, event).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_github_pushes() {
        let p = json!({
            "ref": "refs/heads/main", "after": "abc123", "deleted": false,
            "repository": {"clone_url": "https://github.com/o/r.git", "html_url": "https://github.com/o/r"}
        });
        let r = github_push(&p);
        assert_eq!(r.repo_url.as_deref(), Some("https://github.com/o/r.git"));
        assert_eq!(r.branch.as_deref(), Some("main"));
        assert!(!r.deleted);
        let tag = github_push(&json!({"ref": "refs/tags/v1"}));
        assert_eq!(tag.branch, None);
        let gone = github_push(&json!({"ref": "refs/heads/x", "after": "0000000000"}));
        assert!(gone.deleted);
        assert_eq!(github_push(&json!([1, 2])), PushRef::default());
    }

    #[test]
    fn reads_gitlab_pushes() {
        let p = json!({
            "object_kind": "push", "ref": "refs/heads/dev", "checkout_sha": "def",
            "after": "def", "project": {"git_http_url": "https://gitlab.com/o/r.git", "web_url": "https://gitlab.com/o/r"}
        });
        let r = gitlab_push(&p);
        assert_eq!(r.repo_url.as_deref(), Some("https://gitlab.com/o/r.git"));
        assert_eq!(r.branch.as_deref(), Some("dev"));
        assert_eq!(r.commit.as_deref(), Some("def"));
        assert!(gitlab_push(&json!({"after": "0000000000000000000000000000000000000000"})).deleted);
    }
}
