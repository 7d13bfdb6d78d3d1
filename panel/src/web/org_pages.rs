//! Organizations: the caller's organizations (and a new one), an organization's members
//! with their roles (change, remove), its invitations (invite by email, list, revoke),
//! and a member's permission keys (grant, deny, back to the role's default) from
//! `GET /v1/permissions`.

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::WebState;
use super::csrf::CsrfForm;
use super::error::{WebError, WebResult};
use super::kit::{self, Done, Flash, page_user, plain, shown};
use super::session::{Browser, WebUser};
use crate::error::AppError;
use crate::orgs::handlers::PermissionCatalog;
use crate::orgs::invite_store::Invite;
use crate::orgs::members::{MemberPermissions, PermissionOverride, RoleUpdate};
use crate::orgs::store::{Member, OrgWithRole};

/// Roles, most powerful first.
const ROLES: &[&str] = &["owner", "admin", "operator", "viewer"];

/// The routes of these pages.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/orgs", get(list).post(create))
        .route("/orgs/{org}", get(org))
        .route("/orgs/{org}/invites", post(invite))
        .route("/orgs/{org}/invites/{invite}/revoke", post(revoke_invite))
        .route("/orgs/{org}/members/{user}", get(member))
        .route("/orgs/{org}/members/{user}/role", post(role))
        .route("/orgs/{org}/members/{user}/remove", post(remove))
        .route("/orgs/{org}/members/{user}/permissions", post(permission))
        .route("/invites/{token}", get(invitation).post(accept))
}

#[derive(Debug, Default, Serialize)]
struct OrgsPage {
    flash: Flash,
    organizations: Vec<OrgWithRole>,
    name: String,
}

async fn show_list(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    mut page: OrgsPage,
) -> WebResult<Response> {
    page.organizations = kit::organizations(web, browser, user).await?;
    kit::page(
        web,
        browser,
        user,
        page.flash.status(),
        ("Organizations", "orgs"),
        "orgs.html.tera",
        &page,
    )
    .await
}

/// `GET /orgs`.
pub async fn list(
    State(web): State<WebState>,
    browser: Browser,
    done: Result<Query<Done>, QueryRejection>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/orgs");
    let flash = done
        .map(|Query(d)| Flash::from_done(&d))
        .unwrap_or_default();
    show_list(
        &web,
        &browser,
        &user,
        OrgsPage {
            flash,
            ..OrgsPage::default()
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
}

/// `POST /orgs`: `POST /v1/organizations`, then its page.
pub async fn create(
    State(web): State<WebState>,
    CsrfForm { browser, form }: CsrfForm<CreateForm>,
) -> WebResult<Response> {
    let user = page_user!(web, browser, "/orgs");
    let body = json!({"name": form.name});
    let answer: WebResult<OrgWithRole> = kit::write(
        &web,
        &browser,
        &user,
        Method::POST,
        "/v1/organizations",
        Some(&body),
    )
    .await;
    match shown(answer)? {
        Ok(created) => back_to_org(&created, "org-created"),
        Err(error) => {
            let page = OrgsPage {
                flash: Flash::error(error),
                name: form.name,
                ..OrgsPage::default()
            };
            show_list(&web, &browser, &user, page).await
        }
    }
}

/// To the page of organization `org` (the list for an id not fit for an address) with
/// the notice `key`.
fn back_to_org(org: &OrgWithRole, key: &str) -> WebResult<Response> {
    let id = org.org.id.as_str();
    if super::api::is_plain_id(id) {
        kit::done(&format!("/orgs/{id}"), key)
    } else {
        kit::done("/orgs", key)
    }
}

#[derive(Debug, Default, Serialize)]
struct OrgPage {
    flash: Flash,
    org: Option<OrgWithRole>,
    members: Vec<Member>,
    /// `None` when the caller may not see invitations.
    invites: Option<Vec<Invite>>,
    roles: &'static [&'static str],
    me: String,
    email: String,
}

async fn show_org(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    org_id: &str,
    mut page: OrgPage,
) -> WebResult<Response> {
    let org: OrgWithRole =
        kit::read(web, browser, user, &format!("/v1/organizations/{org_id}")).await?;
    page.members = kit::read(
        web,
        browser,
        user,
        &format!("/v1/organizations/{org_id}/members"),
    )
    .await?;
    // Only members who may invite see the invitations.
    page.invites = kit::read(
        web,
        browser,
        user,
        &format!("/v1/organizations/{org_id}/invites"),
    )
    .await
    .ok();
    page.roles = ROLES;
    page.me = user.current.user.id.clone();
    let title = org.org.name.clone();
    page.org = Some(org);
    kit::page(
        web,
        browser,
        user,
        page.flash.status(),
        (&title, "orgs"),
        "org.html.tera",
        &page,
    )
    .await
}

/// `GET /orgs/{org}`.
pub async fn org(
    State(web): State<WebState>,
    browser: Browser,
    Path(org_id): Path<String>,
    done: Result<Query<Done>, QueryRejection>,
) -> WebResult<Response> {
    let org_id = plain(&org_id)?.to_owned();
    let user = page_user!(web, browser, &format!("/orgs/{org_id}"));
    let flash = done
        .map(|Query(d)| Flash::from_done(&d))
        .unwrap_or_default();
    let page = OrgPage {
        flash,
        ..OrgPage::default()
    };
    show_org(&web, &browser, &user, &org_id, page).await
}

/// Sends a change for organization `org_id`; on success to `back?done=key`, on a client
/// error the organization page with it (`email` kept in the invite form).
async fn change(
    web: &WebState,
    browser: &Browser,
    org_id: &str,
    (method, path, body): (Method, String, Option<Value>),
    (back, key): (String, &str),
    email: String,
) -> WebResult<Response> {
    let user = page_user!(web, browser, &back);
    let answer = kit::act(web, browser, &user, method, &path, body.as_ref()).await;
    match shown(answer)? {
        Ok(()) => kit::done(&back, key),
        Err(error) => {
            let page = OrgPage {
                flash: Flash::error(error),
                email,
                ..OrgPage::default()
            };
            show_org(web, browser, &user, org_id, page).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

/// `POST /orgs/{org}/invites`: `POST /v1/organizations/{org}/members/invite`.
pub async fn invite(
    State(web): State<WebState>,
    Path(org_id): Path<String>,
    CsrfForm { browser, form }: CsrfForm<InviteForm>,
) -> WebResult<Response> {
    let org_id = plain(&org_id)?;
    let body = json!({"email": form.email.trim(), "role": form.role});
    change(
        &web,
        &browser,
        org_id,
        (
            Method::POST,
            format!("/v1/organizations/{org_id}/members/invite"),
            Some(body),
        ),
        (format!("/orgs/{org_id}"), "invited"),
        form.email,
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct NoFields {}

/// `POST /orgs/{org}/invites/{invite}/revoke`: `DELETE .../invites/{invite}`.
pub async fn revoke_invite(
    State(web): State<WebState>,
    Path((org_id, invite_id)): Path<(String, String)>,
    CsrfForm { browser, .. }: CsrfForm<NoFields>,
) -> WebResult<Response> {
    let (org_id, invite_id) = (plain(&org_id)?, plain(&invite_id)?);
    change(
        &web,
        &browser,
        org_id,
        (
            Method::DELETE,
            format!("/v1/organizations/{org_id}/invites/{invite_id}"),
            None,
        ),
        (format!("/orgs/{org_id}"), "invite-revoked"),
        String::new(),
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

/// `POST /orgs/{org}/members/{user}/role`: `PUT .../members/{user}/role`.
pub async fn role(
    State(web): State<WebState>,
    Path((org_id, member_id)): Path<(String, String)>,
    CsrfForm { browser, form }: CsrfForm<RoleForm>,
) -> WebResult<Response> {
    let (org_id, member_id) = (plain(&org_id)?, plain(&member_id)?);
    change(
        &web,
        &browser,
        org_id,
        (
            Method::PUT,
            format!("/v1/organizations/{org_id}/members/{member_id}/role"),
            Some(
                serde_json::to_value(RoleUpdate { role: form.role })
                    .map_err(|e| WebError::from(AppError::Internal(e.into())))?,
            ),
        ),
        (format!("/orgs/{org_id}"), "role"),
        String::new(),
    )
    .await
}

/// `POST /orgs/{org}/members/{user}/remove`: `DELETE .../members/{user}`.
pub async fn remove(
    State(web): State<WebState>,
    Path((org_id, member_id)): Path<(String, String)>,
    CsrfForm { browser, .. }: CsrfForm<NoFields>,
) -> WebResult<Response> {
    let (org_id, member_id) = (plain(&org_id)?, plain(&member_id)?);
    change(
        &web,
        &browser,
        org_id,
        (
            Method::DELETE,
            format!("/v1/organizations/{org_id}/members/{member_id}"),
            None,
        ),
        (format!("/orgs/{org_id}"), "removed"),
        String::new(),
    )
    .await
}

/// One permission key as the member page shows it.
#[derive(Debug, Serialize)]
struct KeyRow {
    key: String,
    description: String,
    /// Held through the role, an override, or not at all.
    effective: bool,
    /// `Some(true)` granted, `Some(false)` denied, `None` the role's default.
    overridden: Option<bool>,
    /// The same as a word: `granted`, `denied` or `default`.
    set: &'static str,
}

#[derive(Debug, Serialize)]
struct MemberPage {
    flash: Flash,
    org: OrgWithRole,
    member: Member,
    keys: Vec<KeyRow>,
}

/// The permission keys with the member's effective permissions and overrides.
fn key_rows(all: &PermissionCatalog, view: &MemberPermissions) -> Vec<KeyRow> {
    all.permissions
        .iter()
        .map(|p| {
            let overridden = view
                .overrides
                .iter()
                .find(|o| o.key == p.key)
                .map(|o| o.allowed);
            KeyRow {
                key: p.key.clone(),
                description: p.description.clone(),
                effective: view.permissions.contains(&p.key),
                overridden,
                set: match overridden {
                    Some(true) => "granted",
                    Some(false) => "denied",
                    None => "default",
                },
            }
        })
        .collect()
}

async fn show_member(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    (org_id, member_id): (&str, &str),
    flash: Flash,
) -> WebResult<Response> {
    let org: OrgWithRole =
        kit::read(web, browser, user, &format!("/v1/organizations/{org_id}")).await?;
    let view: MemberPermissions = kit::read(
        web,
        browser,
        user,
        &format!("/v1/organizations/{org_id}/members/{member_id}/permissions"),
    )
    .await?;
    let members: Vec<Member> = kit::read(
        web,
        browser,
        user,
        &format!("/v1/organizations/{org_id}/members"),
    )
    .await?;
    let member = members
        .into_iter()
        .find(|m| m.user_id == member_id)
        .unwrap_or_else(|| Member {
            user_id: member_id.to_owned(),
            email: String::new(),
            name: String::new(),
            role: view.role.clone(),
            joined_at: 0,
            scoped: false,
            servers: 0,
        });
    let all: PermissionCatalog = kit::read(web, browser, user, "/v1/permissions").await?;
    let page = MemberPage {
        flash,
        keys: key_rows(&all, &view),
        org,
        member,
    };
    kit::page(
        web,
        browser,
        user,
        page.flash.status(),
        ("Member permissions", "orgs"),
        "org_member.html.tera",
        &page,
    )
    .await
}

/// `GET /orgs/{org}/members/{user}`: the member's permission keys.
pub async fn member(
    State(web): State<WebState>,
    browser: Browser,
    Path((org_id, member_id)): Path<(String, String)>,
    done: Result<Query<Done>, QueryRejection>,
) -> WebResult<Response> {
    let (org_id, member_id) = (plain(&org_id)?, plain(&member_id)?);
    let user = page_user!(web, browser, &format!("/orgs/{org_id}/members/{member_id}"));
    let flash = done
        .map(|Query(d)| Flash::from_done(&d))
        .unwrap_or_default();
    show_member(&web, &browser, &user, (org_id, member_id), flash).await
}

#[derive(Debug, Deserialize)]
pub struct PermissionForm {
    #[serde(default)]
    key: String,
    /// `grant`, `deny` or `default`.
    #[serde(default)]
    action: String,
}

/// `POST /orgs/{org}/members/{user}/permissions`: grant or deny a key
/// (`POST .../permissions`) or drop the override (`DELETE .../permissions/{key}`).
pub async fn permission(
    State(web): State<WebState>,
    Path((org_id, member_id)): Path<(String, String)>,
    CsrfForm { browser, form }: CsrfForm<PermissionForm>,
) -> WebResult<Response> {
    let (org_id, member_id) = (plain(&org_id)?, plain(&member_id)?);
    let back = format!("/orgs/{org_id}/members/{member_id}");
    let user = page_user!(web, browser, &back);
    let base = format!("/v1/organizations/{org_id}/members/{member_id}/permissions");
    let valid_key = !form.key.is_empty()
        && form.key.len() <= 64
        && form
            .key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
    let answer = match (form.action.as_str(), valid_key) {
        (_, false) => Err(WebError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "unknown permission key",
        )),
        ("grant" | "deny", true) => {
            let body = PermissionOverride {
                key: Some(form.key),
                allowed: Some(form.action == "grant"),
            };
            kit::write::<MemberPermissions, _>(
                &web,
                &browser,
                &user,
                Method::POST,
                &base,
                Some(&body),
            )
            .await
            .map(drop)
        }
        ("default", true) => {
            let path = format!("{base}/{}", form.key);
            kit::act(&web, &browser, &user, Method::DELETE, &path, None::<&()>).await
        }
        _ => Err(WebError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "action must be grant, deny or default",
        )),
    };
    match shown(answer)? {
        Ok(_) => kit::done(&back, "permission"),
        Err(error) => {
            show_member(
                &web,
                &browser,
                &user,
                (org_id, member_id),
                Flash::error(error),
            )
            .await
        }
    }
}

#[derive(Debug, Serialize)]
struct InvitePage {
    flash: Flash,
    token: String,
}

async fn show_invitation(
    web: &WebState,
    browser: &Browser,
    user: &WebUser,
    token: &str,
    flash: Flash,
) -> WebResult<Response> {
    let page = InvitePage {
        flash,
        token: token.to_owned(),
    };
    kit::page(
        web,
        browser,
        user,
        page.flash.status(),
        ("Invitation", "orgs"),
        "invite.html.tera",
        &page,
    )
    .await
}

/// `GET /invites/{token}`: the link of the invitation mail; signing in comes first.
pub async fn invitation(
    State(web): State<WebState>,
    browser: Browser,
    Path(token): Path<String>,
) -> WebResult<Response> {
    let token = plain(&token)?;
    let user = page_user!(web, browser, &format!("/invites/{token}"));
    show_invitation(&web, &browser, &user, token, Flash::default()).await
}

/// `POST /invites/{token}`: `POST /v1/invites/{token}/accept`, then the organization.
pub async fn accept(
    State(web): State<WebState>,
    Path(token): Path<String>,
    CsrfForm { browser, .. }: CsrfForm<NoFields>,
) -> WebResult<Response> {
    let token = plain(&token)?;
    let user = page_user!(web, browser, &format!("/invites/{token}"));
    let answer: WebResult<OrgWithRole> = kit::write(
        &web,
        &browser,
        &user,
        Method::POST,
        &format!("/v1/invites/{token}/accept"),
        None::<&()>,
    )
    .await;
    match shown(answer)? {
        Ok(joined) => back_to_org(&joined, "joined"),
        Err(error) => show_invitation(&web, &browser, &user, token, Flash::error(error)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_show_effective_and_overridden() {
        let all: PermissionCatalog = serde_json::from_value(json!({"roles": [], "permissions": [
            {"key": "instances.read", "description": "See", "roles": []},
            {"key": "instances.sftp", "description": "SFTP", "roles": []},
            {"key": "nodes.update", "description": "Nodes", "roles": []},
        ]}))
        .expect("catalog");
        let view: MemberPermissions = serde_json::from_value(json!({
            "user_id": "u", "role": "admin",
            "permissions": ["instances.read", "instances.sftp"],
            "overrides": [{"key": "instances.sftp", "allowed": true},
                          {"key": "nodes.update", "allowed": false}]}))
        .expect("view");
        let rows = key_rows(&all, &view);
        let got: Vec<(bool, Option<bool>)> =
            rows.iter().map(|r| (r.effective, r.overridden)).collect();
        assert_eq!(
            got,
            [(true, None), (true, Some(true)), (false, Some(false))]
        );
    }
}
