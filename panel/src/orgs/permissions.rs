//! Roles, permission keys and the one `authorize` function every org-scoped request
//! goes through. A caller who is not a member gets 404 (the organization's resources
//! do not exist for them); a member without the permission gets 403.

use serde::Serialize;

use crate::auth::extract::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::users::store::User;

use super::store;

/// Member roles, most powerful first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Operator,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Operator, Role::Viewer];

    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Operator => "operator",
            Self::Viewer => "viewer",
        }
    }

    /// Parses a stored or submitted role name.
    ///
    /// # Errors
    /// 400 for an unknown role.
    pub fn parse(s: &str) -> AppResult<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                AppError::Validation("role must be one of owner, admin, operator, viewer".into())
            })
    }
}

/// One permission key with what it allows and the least role that has it by default.
#[derive(Debug, Clone, Copy, Serialize, schemars::JsonSchema)]
pub struct PermissionDef {
    pub key: &'static str,
    pub description: &'static str,
    /// The lowest role holding this permission by default.
    pub min_role: Role,
}

/// Declares every permission key once: its entry in [`PERMISSIONS`] and its type in
/// [`perm`] (the key in `CamelCase`), which handlers name in
/// [`Authorized`](crate::authz::Authorized). A key cannot exist without its type.
macro_rules! perms {
    ($( $ty:ident, $key:literal, $role:ident, $desc:literal; )*) => {
        /// Every permission key of the API.
        pub const PERMISSIONS: &[PermissionDef] = &[
            $( PermissionDef { key: $key, description: $desc, min_role: Role::$role }, )*
        ];

        /// One zero-sized type per permission key, for
        /// [`Authorized`](crate::authz::Authorized).
        pub mod perm {
            $(
                #[doc = $desc]
                #[derive(Debug, Clone, Copy)]
                pub struct $ty;

                impl crate::authz::Permission for $ty {
                    const KEY: &'static str = $key;
                }
            )*

            /// Each type's name and key, for the tests.
            #[cfg(test)]
            pub(crate) const NAMED: &[(&str, &str)] = &[$( (stringify!($ty), $key), )*];
        }
    };
}

perms! {
    OrgRead, "org.read", Viewer, "See the organization";
    OrgUpdate, "org.update", Admin, "Rename the organization and change its settings";
    OrgDelete, "org.delete", Owner, "Delete the organization";
    MembersRead, "members.read", Viewer, "List members and their roles";
    MembersInvite, "members.invite", Admin, "Invite members and manage invitations";
    MembersRemove, "members.remove", Admin, "Remove members";
    MembersRole, "members.role", Admin, "Change members' roles";
    MembersPermissions, "members.permissions", Admin, "Grant and revoke members' permission keys";
    NodesRead, "nodes.read", Viewer, "See nodes, their inventory and metrics";
    NodesCreate, "nodes.create", Admin, "Register nodes";
    NodesUpdate, "nodes.update", Admin, "Edit, cordon, drain and migrate nodes";
    NodesDelete, "nodes.delete", Admin, "Delete nodes";
    NodesPower, "nodes.power", Admin, "Power and resize provisioned nodes";
    NodesTerminal, "nodes.terminal", Admin, "Open a node terminal or SSH session";
    NodesSsh, "nodes.ssh", Admin, "Get SSH certificates that open the organization's nodes";
    NodesContainers, "nodes.containers", Operator, "Manage containers and processes on nodes";
    WorkloadsRead, "workloads.read", Viewer, "See workloads and templates";
    WorkloadsWrite, "workloads.write", Admin, "Create, import, edit and delete workloads";
    InstancesRead, "instances.read", Viewer, "See instances and their stats";
    InstancesCreate, "instances.create", Admin, "Create instances";
    InstancesUpdate, "instances.update", Operator, "Change instance settings, variables, image and limits";
    InstancesDelete, "instances.delete", Admin, "Delete instances";
    InstancesPower, "instances.power", Operator, "Start, stop, restart and kill instances";
    InstancesConsole, "instances.console", Operator, "Read and write the console";
    InstancesLogs, "instances.logs", Viewer, "Read instance logs";
    InstancesFilesRead, "instances.files.read", Operator, "List, read and download files";
    InstancesFilesWrite, "instances.files.write", Operator, "Upload, edit, move and delete files";
    InstancesSftp, "instances.sftp", Operator, "Connect over SFTP";
    InstancesBackupsRead, "instances.backups.read", Operator, "List and download backups";
    InstancesBackupsWrite, "instances.backups.write", Operator, "Create and delete backups";
    InstancesBackupsRestore, "instances.backups.restore", Admin, "Restore backups";
    InstancesSchedules, "instances.schedules", Operator, "Manage schedules";
    InstancesGit, "instances.git", Operator, "Configure and run git deploys";
    InstancesSecrets, "instances.secrets", Admin, "See environment values and secrets unredacted";
    InstancesMigrate, "instances.migrate", Admin, "Move servers to other nodes";
    BackupConfigRead, "backup_config.read", Admin, "See backup storage targets";
    BackupConfigWrite, "backup_config.write", Admin, "Manage backup storage targets";
    DnsRead, "dns.read", Viewer, "See DNS zones and records";
    DnsWrite, "dns.write", Admin, "Manage DNS records";
    AlertsRead, "alerts.read", Viewer, "See alerts and alert rules";
    AlertsWrite, "alerts.write", Operator, "Acknowledge alerts and manage rules";
    IntegrationsRead, "integrations.read", Admin, "See integrations";
    IntegrationsWrite, "integrations.write", Admin, "Manage integrations";
    CredentialsRead, "credentials.read", Admin, "See cloud credentials (never their secrets)";
    CredentialsWrite, "credentials.write", Admin, "Manage cloud credentials";
    ProvisionRead, "provision.read", Viewer, "See provisioning requests";
    ProvisionWrite, "provision.write", Admin, "Plan, apply and destroy provisioning";
    BillingRead, "billing.read", Admin, "See the subscription, usage and costs";
    BillingManage, "billing.manage", Owner, "Subscribe, cancel and open the billing portal";
    DeployWrite, "deploy.write", Admin, "Run one-click deployments";
    SshCertificates, "ssh.certificates", Operator, "Request SSH certificates";
    WebhooksManage, "webhooks.manage", Admin, "Manage webhook tokens";
}

/// Looks up a permission key.
#[must_use]
pub fn find(key: &str) -> Option<&'static PermissionDef> {
    PERMISSIONS.iter().find(|p| p.key == key)
}

/// Whether `role` holds `key` by default.
#[must_use]
pub fn role_has(role: Role, key: &str) -> bool {
    find(key).is_some_and(|p| role <= p.min_role)
}

/// A caller's standing in an organization.
#[derive(Debug, Clone)]
pub struct Membership {
    pub org_id: String,
    pub user_id: String,
    pub role: Role,
    /// The organization requires MFA of its members.
    pub require_mfa: bool,
    overrides: Vec<(String, bool)>,
    /// Limited to the servers in `grants` (a per-server member: a Pterodactyl subuser).
    scoped: bool,
    /// A scoped member's servers, each with its own instance permission keys.
    grants: Vec<(String, Vec<String>)>,
    /// The server this standing was narrowed to ([`Membership::on_server`]).
    server: Option<String>,
}

/// Whether a per-server grant may hold `key`: the keys that act on one server, not on
/// the organization (creating servers and moving them between nodes are not).
#[must_use]
pub fn grantable(key: &str) -> bool {
    key.starts_with("instances.")
        && !matches!(key, "instances.create" | "instances.migrate")
        && find(key).is_some()
}

impl Membership {
    /// Whether the member holds `key`: an override wins over the role's default. A
    /// scoped member holds `org.read` and, once narrowed to one of their servers, that
    /// server's granted keys; nothing else.
    #[must_use]
    pub fn can(&self, key: &str) -> bool {
        if self.scoped {
            if key == "org.read" {
                return true;
            }
            return self.server.as_deref().is_some_and(|server| {
                self.grant(server)
                    .is_some_and(|keys| keys.iter().any(|k| k == key))
                    && grantable(key)
            });
        }
        if self.role == Role::Owner {
            return find(key).is_some();
        }
        match self.overrides.iter().find(|(k, _)| k == key) {
            Some((_, allowed)) => *allowed && find(key).is_some(),
            None => role_has(self.role, key),
        }
    }

    /// Whether the member's access is limited to named servers.
    #[must_use]
    pub fn is_scoped(&self) -> bool {
        self.scoped
    }

    /// A scoped member's keys on `server`, if it is one of theirs.
    #[must_use]
    pub fn grant(&self, server: &str) -> Option<&[String]> {
        self.grants
            .iter()
            .find(|(id, _)| id == server)
            .map(|(_, keys)| keys.as_slice())
    }

    /// A scoped member's servers.
    pub fn servers(&self) -> impl Iterator<Item = &str> {
        self.grants.iter().map(|(id, _)| id.as_str())
    }

    /// This standing as it applies to `server`: unchanged for a full member; for a
    /// scoped member, narrowed to that server's grant, or `None` when it is not theirs
    /// (it does not exist for them).
    #[must_use]
    pub fn on_server(&self, server: &str) -> Option<Self> {
        if !self.scoped {
            return Some(self.clone());
        }
        self.grant(server)?;
        Some(Self {
            server: Some(server.to_owned()),
            ..self.clone()
        })
    }

    /// The member's explicit grants (`true`) and denials (`false`).
    #[must_use]
    pub fn overrides(&self) -> &[(String, bool)] {
        &self.overrides
    }

    /// Every key the member holds.
    #[must_use]
    pub fn effective(&self) -> Vec<&'static str> {
        PERMISSIONS
            .iter()
            .map(|p| p.key)
            .filter(|k| self.can(k))
            .collect()
    }
}

/// A user's membership of an organization, if any.
///
/// # Errors
/// Database failures, or a stored role that is not known.
pub async fn load_membership(
    state: &AppState,
    org_id: &str,
    user_id: &str,
) -> AppResult<Option<Membership>> {
    if let Some(cached) = state.reads.membership(org_id, user_id) {
        return Ok(Some(cached));
    }
    let stamp = state.reads.stamp();
    let Some(found) = store::membership(&state.db.pool, org_id, user_id).await? else {
        return Ok(None);
    };
    let store::MemberRow {
        role,
        require_mfa,
        overrides,
        scoped,
        grants,
    } = found;
    let role = Role::parse(&role)
        .map_err(|_| AppError::Internal(anyhow::anyhow!("stored role {role} unknown")))?;
    let membership = Membership {
        org_id: org_id.to_string(),
        user_id: user_id.to_string(),
        role,
        require_mfa,
        overrides,
        scoped,
        grants,
        server: None,
    };
    if let Some(stamp) = stamp {
        state.reads.put_membership(&membership, stamp);
    }
    Ok(Some(membership))
}

/// Decides whether `user` may do `permission` in organization `org_id`.
///
/// # Errors
/// 404 when the user is not a member (or the organization does not exist); 403 when the
/// member lacks the permission.
///
/// # Panics
/// In debug builds, for a permission key that is not declared in [`PERMISSIONS`].
pub async fn authorize(
    state: &AppState,
    user: &CurrentUser,
    org_id: &str,
    permission: &str,
) -> AppResult<Membership> {
    authorize_user(state, &user.user, org_id, permission).await
}

/// [`authorize`] for a user proven some other way (an SFTP login's password or key).
///
/// # Errors
/// As [`authorize`].
///
/// # Panics
/// As [`authorize`].
pub async fn authorize_user(
    state: &AppState,
    user: &User,
    org_id: &str,
    permission: &str,
) -> AppResult<Membership> {
    authorize_on(state, user, org_id, None, permission).await
}

/// [`authorize_user`] for an act on one server of the organization (`server`): a
/// member limited to named servers is judged by that server's grant, and a server that
/// is not theirs answers 404 like another organization's.
///
/// # Errors
/// As [`authorize`]; 404 `organization` for a scoped member's server that is not theirs
/// (the caller maps it to its resource's name).
///
/// # Panics
/// As [`authorize`].
pub async fn authorize_on(
    state: &AppState,
    user: &User,
    org_id: &str,
    server: Option<&str>,
    permission: &str,
) -> AppResult<Membership> {
    debug_assert!(
        find(permission).is_some(),
        "undeclared permission {permission}"
    );
    // No id holds a NUL, and PostgreSQL refuses one in text: no such organization.
    if org_id.contains('\0') {
        return Err(AppError::not_found("organization"));
    }
    let mut membership = load_membership(state, org_id, &user.id)
        .await?
        .ok_or_else(|| AppError::not_found("organization"))?;
    if let Some(server) = server {
        membership = membership
            .on_server(server)
            .ok_or_else(|| AppError::not_found("organization"))?;
    }
    // An organization that requires MFA shows itself to members without it, so they can
    // learn why, but lets them do nothing else.
    if membership.require_mfa && !user.mfa_enabled && permission != "org.read" {
        return Err(AppError::Forbidden(
            "this organization requires multi-factor authentication: enable it at /v1/auth/mfa/enroll".into(),
        ));
    }
    if !membership.can(permission) {
        return Err(AppError::Forbidden(format!(
            "missing permission {permission} in this organization"
        )));
    }
    Ok(membership)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(role: Role, overrides: &[(&str, bool)]) -> Membership {
        Membership {
            org_id: "o".into(),
            user_id: "u".into(),
            role,
            require_mfa: false,
            overrides: overrides
                .iter()
                .map(|(k, a)| ((*k).to_string(), *a))
                .collect(),
            scoped: false,
            grants: Vec::new(),
            server: None,
        }
    }

    #[test]
    fn a_scoped_member_holds_only_their_servers_grants() {
        let helper = Membership {
            scoped: true,
            grants: vec![(
                "s1".into(),
                vec!["instances.console".into(), "instances.create".into()],
            )],
            ..member(Role::Viewer, &[])
        };
        assert!(helper.can("org.read"));
        assert!(!helper.can("instances.read"), "no server named yet");
        assert!(!helper.can("instances.console"));
        assert!(helper.on_server("s2").is_none(), "not theirs");
        let on = helper.on_server("s1").expect("theirs");
        assert!(on.can("instances.console"));
        assert!(!on.can("instances.power"));
        assert!(!on.can("instances.create"), "not a per-server key");
        assert!(!on.can("nodes.read"));
        let full = member(Role::Operator, &[]);
        assert!(
            full.on_server("any")
                .expect("full member")
                .can("instances.power")
        );
        assert!(grantable("instances.files.read") && !grantable("instances.migrate"));
        assert!(!grantable("nodes.read") && !grantable("instances.nope"));
    }

    #[test]
    fn keys_are_unique_and_dotted() {
        let mut keys: Vec<_> = PERMISSIONS.iter().map(|p| p.key).collect();
        keys.sort_unstable();
        let before = keys.len();
        keys.dedup();
        assert_eq!(before, keys.len(), "duplicate permission key");
        assert!(
            PERMISSIONS
                .iter()
                .all(|p| p.key.contains('.') && !p.description.is_empty())
        );
    }

    #[test]
    fn every_key_has_its_type_named_after_it() {
        let camel = |key: &str| -> String {
            key.split(['.', '_'])
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                })
                .collect()
        };
        assert_eq!(perm::NAMED.len(), PERMISSIONS.len());
        for (def, (name, key)) in PERMISSIONS.iter().zip(perm::NAMED) {
            assert_eq!(def.key, *key);
            assert_eq!(camel(key), *name, "type of {key}");
        }
        use crate::authz::Permission;
        assert!(find(perm::InstancesPower::KEY).is_some());
    }

    #[test]
    fn roles_nest_and_overrides_win() {
        let viewer = member(Role::Viewer, &[]);
        assert!(viewer.can("instances.read"));
        assert!(!viewer.can("instances.power"));
        let operator = member(
            Role::Operator,
            &[("instances.power", false), ("nodes.create", true)],
        );
        assert!(!operator.can("instances.power"));
        assert!(operator.can("nodes.create"));
        assert!(operator.can("instances.console"));
        let admin = member(Role::Admin, &[]);
        assert!(admin.can("members.remove") && !admin.can("org.delete"));
        let owner = member(Role::Owner, &[("org.delete", false)]);
        assert!(owner.can("org.delete"), "owners cannot be restricted");
        assert!(!owner.can("no.such.key"));
        assert!(owner.effective().len() == PERMISSIONS.len());
    }
}
