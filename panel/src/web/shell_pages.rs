//! The node page's shells and recordings (web layer): whether the signed-in user may open
//! an SSH session or a terminal on the node (their `nodes.ssh` / `nodes.terminal`
//! permissions), the node's latest session recordings, and
//! `GET /nodes/{id}/recordings/{rid}/cast`, a recording streamed from the API for the
//! download link and the page's player. The sessions themselves run in the browser
//! (`static/shell.js`, `static/player.js`) against the `/v1` API.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use serde::Serialize;

use super::WebState;
use super::api::is_plain_id;
use super::error::WebResult;
use super::kit::{self, page_user, plain};
use super::session::{Browser, WebUser};
use crate::nodes::store::Node;
use crate::orgs::members::MemberPermissions;
use crate::ssh::shell::recordings::{Recording, RecordingList};

/// Recordings the node page lists.
const LISTED: usize = 20;

/// The routes of these pages.
pub fn router() -> Router<WebState> {
    Router::new().route("/nodes/{id}/recordings/{rid}/cast", get(cast))
}

/// One recording as the page lists it.
#[derive(Debug, Serialize)]
pub struct RecordingRow {
    #[serde(flatten)]
    recording: Recording,
    /// Its size for people.
    size: String,
    /// The web route it downloads and plays from.
    href: String,
}

/// The node page's shell section: what the user may open, and the recordings.
#[derive(Debug, Default, Serialize)]
pub struct Shells {
    /// May open an SSH session (`nodes.ssh`).
    pub ssh: bool,
    /// May open a terminal and read the recordings (`nodes.terminal`).
    pub terminal: bool,
    pub recordings: Vec<RecordingRow>,
    /// Recordings of the node in all.
    pub total: i64,
}

/// What `user` may do with shells on `node`, and its latest recordings. A read that
/// fails hides its part (the API still decides every call).
pub async fn shells(web: &WebState, browser: &Browser, user: &WebUser, node: &Node) -> Shells {
    let org = node.organization_id.as_str();
    let me = user.current.user.id.as_str();
    if !is_plain_id(org) || !is_plain_id(me) || !is_plain_id(&node.id) {
        return Shells::default();
    }
    let Ok(permissions) = kit::read::<MemberPermissions>(
        web,
        browser,
        user,
        &format!("/v1/organizations/{org}/members/{me}/permissions"),
    )
    .await
    else {
        return Shells::default();
    };
    let has = |key: &str| permissions.permissions.iter().any(|k| k == key);
    let mut shells = Shells {
        ssh: has("nodes.ssh"),
        terminal: has("nodes.terminal"),
        ..Shells::default()
    };
    if shells.terminal {
        let path = format!("/v1/nodes/{}/recordings?per_page={LISTED}", node.id);
        if let Ok(list) = kit::read::<RecordingList>(web, browser, user, &path).await {
            shells.total = list.total;
            shells.recordings = list.data.into_iter().map(row).collect();
        }
    }
    shells
}

fn row(recording: Recording) -> RecordingRow {
    RecordingRow {
        size: super::node_pages::bytes(u64::try_from(recording.recorded_bytes).unwrap_or(0)),
        href: format!(
            "/nodes/{}/recordings/{}/cast",
            recording.node_id, recording.id
        ),
        recording,
    }
}

/// `GET /nodes/{id}/recordings/{rid}/cast`: the recording (asciicast v2) as the API
/// serves it, streamed.
pub async fn cast(
    State(web): State<WebState>,
    browser: Browser,
    Path((id, rid)): Path<(String, String)>,
) -> WebResult<Response> {
    let id = plain(&id)?;
    let rid = plain(&rid)?;
    let user = page_user!(web, browser, &format!("/nodes/{id}"));
    web.download(
        &browser,
        &format!("/v1/nodes/{id}/recordings/{rid}/cast"),
        &user.access,
    )
    .await
}
