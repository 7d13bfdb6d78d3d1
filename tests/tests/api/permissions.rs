//! The permission matrix: for every route of `shardlyn_panel::app::routes()`, every role,
//! a member holding only a granted key and a member with the key removed, a platform
//! admin and an outsider, the answer is exactly what the permission table says. The
//! expectations come from one table ([`TABLE`]: route -> permission key or rule) and
//! the panel's role defaults (`orgs::permissions::role_has`); every route must appear
//! in the table, so a new route fails here until its permission is written down.
//!
//! "Allowed" means neither 401, 403 nor (for members) 404, and no 500: routes that need
//! a live agent answer 409/502/503 after authorizing, and routes naming a sub-resource
//! no test can create without an agent (a backup, an upload, a container) may answer
//! 404 after authorizing (`sub`). "Denied" is exactly 403; outsiders get exactly 404.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};
use shardlyn_panel::orgs::permissions::{Role, role_has};
use shardlyn_panel::routes::Access;
use shardlyn_tests::console::Console;
use shardlyn_tests::{Resp, Session, TestApp, both_engines, spawn_app_with};

const GIB: i64 = 1024 * 1024 * 1024;

/// Who may call a route.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// A member holding this key in the resource's organization.
    Key(&'static str),
    /// Any signed-in user (their own resources, or none).
    AnyUser,
    /// Platform admins only.
    PlatformAdmin,
}

/// A resource each call needs made anew because an allowed call changes or removes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fresh {
    No,
    Org,
    Member,
    Override,
    Invite,
    Node,
    Workload,
    Instance,
    WebhookToken,
    BackupConfig,
    Integration,
    AlertRule,
    Alert,
    Maintenance,
    Credential,
    ProvisionRequest,
    DnsRecord,
}

struct Row {
    method: &'static str,
    path: &'static str,
    rule: Rule,
    fresh: Fresh,
    /// 404 after authorizing is acceptable (a sub-resource no test can create).
    sub: bool,
}

const fn r(method: &'static str, path: &'static str, rule: Rule) -> Row {
    Row {
        method,
        path,
        rule,
        fresh: Fresh::No,
        sub: false,
    }
}

const fn fresh(method: &'static str, path: &'static str, rule: Rule, fresh: Fresh) -> Row {
    Row {
        method,
        path,
        rule,
        fresh,
        sub: false,
    }
}

const fn sub(method: &'static str, path: &'static str, rule: Rule) -> Row {
    Row {
        method,
        path,
        rule,
        fresh: Fresh::No,
        sub: true,
    }
}

use Rule::{AnyUser, Key, PlatformAdmin};

/// The permission table: every non-public, non-agent route and who may call it.
const TABLE: &[Row] = &[
    // Account.
    r("GET", "/v1/users/me", AnyUser),
    r("PUT", "/v1/users/me", AnyUser),
    r("PUT", "/v1/users/me/password", AnyUser),
    r("POST", "/v1/users/me/password", AnyUser),
    r("GET", "/v1/users/me/sessions", AnyUser),
    sub("DELETE", "/v1/users/me/sessions/{id}", AnyUser),
    r("GET", "/v1/api-tokens", AnyUser),
    r("POST", "/v1/api-tokens", AnyUser),
    sub("DELETE", "/v1/api-tokens/{id}", AnyUser),
    r("GET", "/v1/auth/mfa/status", AnyUser),
    r("POST", "/v1/auth/mfa/enroll", AnyUser),
    r("POST", "/v1/auth/mfa/verify", AnyUser),
    r("POST", "/v1/auth/mfa/disable", AnyUser),
    r("POST", "/v1/auth/logout", AnyUser),
    r("GET", "/v1/permissions", AnyUser),
    r("GET", "/v1/templates", AnyUser),
    r("GET", "/v1/templates/{category}", AnyUser),
    // One-click deploys: reading with the servers, deploying with its own key.
    r("GET", "/v1/deploy", Key("instances.read")),
    r("POST", "/v1/deploy", Key("deploy.write")),
    r("GET", "/v1/deploy/{id}", Key("instances.read")),
    sub("POST", "/v1/invites/{token}/accept", AnyUser),
    // Platform administration.
    r("GET", "/v1/users", PlatformAdmin),
    r("POST", "/v1/users", PlatformAdmin),
    sub("GET", "/v1/users/{id}", PlatformAdmin),
    sub("DELETE", "/v1/users/{id}", PlatformAdmin),
    r("GET", "/v1/admin/users", PlatformAdmin),
    sub("POST", "/v1/admin/users/{id}/suspend", PlatformAdmin),
    sub("POST", "/v1/admin/users/{id}/unsuspend", PlatformAdmin),
    r("GET", "/v1/admin/organizations", PlatformAdmin),
    r("GET", "/v1/admin/organizations/{id}", PlatformAdmin),
    r("GET", "/v1/admin/audit-logs", PlatformAdmin),
    r("GET", "/v1/admin/audit-logs/export", PlatformAdmin),
    r("GET", "/v1/admin/metrics", PlatformAdmin),
    r("GET", "/v1/admin/replicas", PlatformAdmin),
    r("GET", "/v1/system/backup-config", PlatformAdmin),
    r("GET", "/v1/admin/platform-nodes", PlatformAdmin),
    r("PUT", "/v1/admin/nodes/{id}/platform", PlatformAdmin),
    r("GET", "/v1/tunnel/stats", PlatformAdmin),
    r("GET", "/v1/tunnel/agents", PlatformAdmin),
    r("DELETE", "/v1/instances/{id}/logs/clear", PlatformAdmin),
    // Organizations and members.
    r("GET", "/v1/organizations", AnyUser),
    r("POST", "/v1/organizations", AnyUser),
    r("GET", "/v1/organizations/{orgId}", Key("org.read")),
    r("PUT", "/v1/organizations/{orgId}", Key("org.update")),
    fresh(
        "DELETE",
        "/v1/organizations/{orgId}",
        Key("org.delete"),
        Fresh::Org,
    ),
    r(
        "GET",
        "/v1/organizations/{orgId}/members",
        Key("members.read"),
    ),
    r(
        "POST",
        "/v1/organizations/{orgId}/members/invite",
        Key("members.invite"),
    ),
    fresh(
        "DELETE",
        "/v1/organizations/{orgId}/members/{userId}",
        Key("members.remove"),
        Fresh::Member,
    ),
    fresh(
        "PUT",
        "/v1/organizations/{orgId}/members/{userId}/role",
        Key("members.role"),
        Fresh::Member,
    ),
    r(
        "GET",
        "/v1/organizations/{orgId}/members/{userId}/permissions",
        Key("members.read"),
    ),
    r(
        "POST",
        "/v1/organizations/{orgId}/members/{userId}/permissions",
        Key("members.permissions"),
    ),
    fresh(
        "DELETE",
        "/v1/organizations/{orgId}/members/{userId}/permissions/{key}",
        Key("members.permissions"),
        Fresh::Override,
    ),
    r(
        "GET",
        "/v1/organizations/{orgId}/invites",
        Key("members.invite"),
    ),
    fresh(
        "DELETE",
        "/v1/organizations/{orgId}/invites/{inviteId}",
        Key("members.invite"),
        Fresh::Invite,
    ),
    // Workloads.
    r("GET", "/v1/workloads", Key("workloads.read")),
    r("POST", "/v1/workloads", Key("workloads.write")),
    r("GET", "/v1/workloads/{id}", Key("workloads.read")),
    r("PUT", "/v1/workloads/{id}", Key("workloads.write")),
    fresh(
        "DELETE",
        "/v1/workloads/{id}",
        Key("workloads.write"),
        Fresh::Workload,
    ),
    r("GET", "/v1/workloads/{id}/export", Key("workloads.read")),
    r(
        "POST",
        "/v1/workloads/from-template",
        Key("workloads.write"),
    ),
    r("POST", "/v1/workloads/import-egg", Key("workloads.write")),
    // Nodes.
    r("GET", "/v1/nodes", Key("nodes.read")),
    r("GET", "/v1/platform-nodes", Key("instances.read")),
    r("POST", "/v1/nodes/register-token", Key("nodes.create")),
    r("GET", "/v1/nodes/{id}", Key("nodes.read")),
    r("PUT", "/v1/nodes/{id}", Key("nodes.update")),
    fresh("DELETE", "/v1/nodes/{id}", Key("nodes.delete"), Fresh::Node),
    r("POST", "/v1/nodes/{id}/cordon", Key("nodes.update")),
    r("POST", "/v1/nodes/{id}/uncordon", Key("nodes.update")),
    r("POST", "/v1/nodes/{id}/power/start", Key("nodes.power")),
    r("POST", "/v1/nodes/{id}/power/stop", Key("nodes.power")),
    r("POST", "/v1/nodes/{id}/power/reboot", Key("nodes.power")),
    r("GET", "/v1/nodes/{id}/power/status", Key("nodes.read")),
    r("GET", "/v1/nodes/{id}/firewall/rules", Key("nodes.read")),
    r("POST", "/v1/nodes/{id}/firewall/rules", Key("nodes.update")),
    r(
        "DELETE",
        "/v1/nodes/{id}/firewall/rules",
        Key("nodes.update"),
    ),
    r("POST", "/v1/nodes/{id}/drain", Key("nodes.update")),
    r("GET", "/v1/nodes/{id}/metrics/history", Key("nodes.read")),
    r("GET", "/v1/nodes/{id}/inventory", Key("nodes.read")),
    r("GET", "/v1/nodes/{id}/ssh", Key("nodes.ssh")),
    r("GET", "/v1/nodes/{id}/terminal", Key("nodes.terminal")),
    r("POST", "/v1/nodes/{id}/ssh/tickets", Key("nodes.ssh")),
    r(
        "POST",
        "/v1/nodes/{id}/terminal/tickets",
        Key("nodes.terminal"),
    ),
    r("GET", "/v1/nodes/{id}/recordings", Key("nodes.terminal")),
    sub(
        "GET",
        "/v1/nodes/{id}/recordings/{rid}",
        Key("nodes.terminal"),
    ),
    sub(
        "GET",
        "/v1/nodes/{id}/recordings/{rid}/cast",
        Key("nodes.terminal"),
    ),
    r("GET", "/v1/nodes/{id}/inventory/system", Key("nodes.read")),
    r("GET", "/v1/nodes/{id}/inventory/network", Key("nodes.read")),
    r("GET", "/v1/nodes/{id}/inventory/disks", Key("nodes.read")),
    r("GET", "/v1/nodes/{id}/inventory/users", Key("nodes.read")),
    r(
        "GET",
        "/v1/nodes/{id}/inventory/containers",
        Key("nodes.read"),
    ),
    r(
        "GET",
        "/v1/nodes/{id}/inventory/processes",
        Key("nodes.read"),
    ),
    sub(
        "GET",
        "/v1/nodes/{id}/containers/{containerId}/logs",
        Key("nodes.read"),
    ),
    sub(
        "POST",
        "/v1/nodes/{id}/containers/{containerId}/start",
        Key("nodes.containers"),
    ),
    sub(
        "POST",
        "/v1/nodes/{id}/containers/{containerId}/stop",
        Key("nodes.containers"),
    ),
    sub(
        "POST",
        "/v1/nodes/{id}/containers/{containerId}/restart",
        Key("nodes.containers"),
    ),
    sub(
        "POST",
        "/v1/nodes/{id}/containers/{containerId}/kill",
        Key("nodes.containers"),
    ),
    sub(
        "POST",
        "/v1/nodes/{id}/processes/{pid}/kill",
        Key("nodes.containers"),
    ),
    // Instances.
    r("GET", "/v1/instances", Key("instances.read")),
    r("POST", "/v1/instances", Key("instances.create")),
    r("GET", "/v1/instances/{id}", Key("instances.read")),
    r("PUT", "/v1/instances/{id}", Key("instances.update")),
    fresh(
        "DELETE",
        "/v1/instances/{id}",
        Key("instances.delete"),
        Fresh::Instance,
    ),
    r(
        "POST",
        "/v1/instances/{id}/migrate",
        Key("instances.migrate"),
    ),
    r("POST", "/v1/nodes/{id}/migrate", Key("instances.migrate")),
    r("GET", "/v1/migrations", Key("instances.read")),
    r("GET", "/v1/migrations/{id}", Key("instances.read")),
    r(
        "POST",
        "/v1/migrations/{id}/cancel",
        Key("instances.migrate"),
    ),
    r("POST", "/v1/instances/{id}/start", Key("instances.power")),
    r("POST", "/v1/instances/{id}/stop", Key("instances.power")),
    r("POST", "/v1/instances/{id}/restart", Key("instances.power")),
    r("POST", "/v1/instances/{id}/kill", Key("instances.power")),
    r(
        "POST",
        "/v1/instances/{id}/reinstall",
        Key("instances.update"),
    ),
    r("GET", "/v1/instances/{id}/stats", Key("instances.read")),
    r(
        "GET",
        "/v1/instances/{id}/metrics/history",
        Key("instances.read"),
    ),
    r(
        "GET",
        "/v1/instances/{id}/install-logs",
        Key("instances.logs"),
    ),
    r(
        "GET",
        "/v1/instances/{id}/logs/history",
        Key("instances.logs"),
    ),
    r(
        "GET",
        "/v1/instances/{id}/logs/download",
        Key("instances.logs"),
    ),
    r("GET", "/v1/instances/{id}/console", Key("instances.logs")),
    r("GET", "/v1/instances/{id}/logs", Key("instances.logs")),
    r(
        "POST",
        "/v1/instances/{id}/console/tickets",
        Key("instances.logs"),
    ),
    // Instance files and uploads.
    r(
        "GET",
        "/v1/instances/{id}/files",
        Key("instances.files.read"),
    ),
    r(
        "DELETE",
        "/v1/instances/{id}/files",
        Key("instances.files.write"),
    ),
    r(
        "GET",
        "/v1/instances/{id}/files/content",
        Key("instances.files.read"),
    ),
    r(
        "PUT",
        "/v1/instances/{id}/files/content",
        Key("instances.files.write"),
    ),
    r(
        "POST",
        "/v1/instances/{id}/files/content",
        Key("instances.files.write"),
    ),
    r(
        "GET",
        "/v1/instances/{id}/files/download",
        Key("instances.files.read"),
    ),
    r(
        "POST",
        "/v1/instances/{id}/files/upload",
        Key("instances.files.write"),
    ),
    r(
        "POST",
        "/v1/instances/{id}/files/mkdir",
        Key("instances.files.write"),
    ),
    r(
        "POST",
        "/v1/instances/{id}/files/move",
        Key("instances.files.write"),
    ),
    r(
        "POST",
        "/v1/instances/{id}/files/download-zip",
        Key("instances.files.read"),
    ),
    r(
        "GET",
        "/v1/instances/{id}/files/download-zip",
        Key("instances.files.read"),
    ),
    r(
        "GET",
        "/v1/instances/{id}/files/stat",
        Key("instances.files.read"),
    ),
    r(
        "GET",
        "/v1/instances/{id}/files/search",
        Key("instances.files.read"),
    ),
    r(
        "POST",
        "/v1/instances/{id}/files/copy",
        Key("instances.files.write"),
    ),
    r(
        "POST",
        "/v1/instances/{id}/files/chmod",
        Key("instances.files.write"),
    ),
    r(
        "POST",
        "/v1/instances/{id}/files/compress",
        Key("instances.files.write"),
    ),
    r(
        "POST",
        "/v1/instances/{id}/files/decompress",
        Key("instances.files.write"),
    ),
    r(
        "POST",
        "/v1/instances/{id}/files/pull",
        Key("instances.files.write"),
    ),
    r(
        "POST",
        "/v1/instances/{id}/files/tus",
        Key("instances.files.write"),
    ),
    r(
        "OPTIONS",
        "/v1/instances/{id}/files/tus",
        Key("instances.files.write"),
    ),
    sub(
        "HEAD",
        "/v1/instances/{id}/files/tus/{upload}",
        Key("instances.files.write"),
    ),
    sub(
        "PATCH",
        "/v1/instances/{id}/files/tus/{upload}",
        Key("instances.files.write"),
    ),
    sub(
        "DELETE",
        "/v1/instances/{id}/files/tus/{upload}",
        Key("instances.files.write"),
    ),
    sub(
        "GET",
        "/v1/instances/{id}/files/tus/{upload}",
        Key("instances.files.write"),
    ),
    // Backups.
    r(
        "GET",
        "/v1/instances/{id}/backups",
        Key("instances.backups.read"),
    ),
    r(
        "POST",
        "/v1/instances/{id}/backups",
        Key("instances.backups.write"),
    ),
    sub(
        "GET",
        "/v1/instances/{id}/backups/{bid}/download",
        Key("instances.backups.read"),
    ),
    sub(
        "POST",
        "/v1/instances/{id}/backups/{bid}/restore",
        Key("instances.backups.restore"),
    ),
    sub(
        "POST",
        "/v1/instances/{id}/backups/{bid}/lock",
        Key("instances.backups.write"),
    ),
    sub(
        "DELETE",
        "/v1/instances/{id}/backups/{bid}",
        Key("instances.backups.write"),
    ),
    r("GET", "/v1/backup-config", Key("backup_config.read")),
    r("POST", "/v1/backup-config", Key("backup_config.write")),
    r("GET", "/v1/backup-config/list", Key("backup_config.read")),
    sub(
        "GET",
        "/v1/backup-config/s3-buckets",
        Key("backup_config.read"),
    ),
    sub(
        "POST",
        "/v1/backup-config/s3-buckets",
        Key("backup_config.write"),
    ),
    fresh(
        "GET",
        "/v1/backup-config/{id}",
        Key("backup_config.read"),
        Fresh::BackupConfig,
    ),
    fresh(
        "PUT",
        "/v1/backup-config/{id}",
        Key("backup_config.write"),
        Fresh::BackupConfig,
    ),
    fresh(
        "DELETE",
        "/v1/backup-config/{id}",
        Key("backup_config.write"),
        Fresh::BackupConfig,
    ),
    fresh(
        "POST",
        "/v1/backup-config/{id}/activate",
        Key("backup_config.write"),
        Fresh::BackupConfig,
    ),
    // Schedules.
    r(
        "GET",
        "/v1/instances/{id}/schedules",
        Key("instances.schedules"),
    ),
    r(
        "POST",
        "/v1/instances/{id}/schedules",
        Key("instances.schedules"),
    ),
    sub(
        "GET",
        "/v1/instances/{id}/schedules/{sid}",
        Key("instances.schedules"),
    ),
    sub(
        "PUT",
        "/v1/instances/{id}/schedules/{sid}",
        Key("instances.schedules"),
    ),
    sub(
        "DELETE",
        "/v1/instances/{id}/schedules/{sid}",
        Key("instances.schedules"),
    ),
    sub(
        "POST",
        "/v1/instances/{id}/schedules/{sid}/run",
        Key("instances.schedules"),
    ),
    sub(
        "GET",
        "/v1/instances/{id}/schedules/{sid}/runs",
        Key("instances.schedules"),
    ),
    sub(
        "GET",
        "/v1/instances/{id}/schedules/{sid}/runs/{rid}",
        Key("instances.schedules"),
    ),
    // Git deploy.
    sub("GET", "/v1/instances/{id}/git", Key("instances.git")),
    r("PUT", "/v1/instances/{id}/git", Key("instances.git")),
    sub("DELETE", "/v1/instances/{id}/git", Key("instances.git")),
    sub("POST", "/v1/instances/{id}/git/sync", Key("instances.git")),
    sub("GET", "/v1/instances/{id}/git/status", Key("instances.git")),
    r(
        "GET",
        "/v1/instances/{id}/git/history",
        Key("instances.git"),
    ),
    // Platform settings, support, the caller's SSH keys.
    r("GET", "/v1/settings", AnyUser),
    r("PUT", "/v1/settings", PlatformAdmin),
    r("POST", "/v1/ssh/certificate", AnyUser),
    r("GET", "/v1/ssh/certificates", AnyUser),
    sub("GET", "/v1/ssh/certificates/{id}", AnyUser),
    sub("POST", "/v1/ssh/certificates/{id}/revoke", AnyUser),
    r("GET", "/v1/ssh/ca/keys", PlatformAdmin),
    r("POST", "/v1/ssh/ca/keys", PlatformAdmin),
    r("POST", "/v1/ssh/ca/keys/rotate", PlatformAdmin),
    r("POST", "/v1/settings/ssh-keys", PlatformAdmin),
    sub("DELETE", "/v1/settings/ssh-keys/{name}", PlatformAdmin),
    sub(
        "POST",
        "/v1/settings/ssh-keys/{name}/default",
        PlatformAdmin,
    ),
    // Billing (issue 19).
    r("GET", "/v1/billing/plans", AnyUser),
    r("GET", "/v1/billing/org/subscription", Key("billing.read")),
    r("GET", "/v1/billing/org/usage", Key("billing.read")),
    r("GET", "/v1/billing/org/limits", Key("billing.read")),
    r("GET", "/v1/billing/org/invoices", Key("billing.read")),
    r("POST", "/v1/billing/org/subscribe", Key("billing.manage")),
    r("POST", "/v1/billing/org/cancel", Key("billing.manage")),
    r("POST", "/v1/billing/org/portal", Key("billing.manage")),
    r("GET", "/v1/billing/org/cloud-costs", Key("billing.read")),
    r(
        "GET",
        "/v1/billing/org/cloud-costs/forecast",
        Key("billing.read"),
    ),
    r(
        "POST",
        "/v1/billing/org/cloud-costs/refresh",
        Key("billing.manage"),
    ),
    // Per-server access (issue 20): a matrix caller grants to an address no account has
    // (404 USER_NOT_FOUND after authorizing).
    r(
        "GET",
        "/v1/instances/{id}/access",
        Key("members.permissions"),
    ),
    sub(
        "POST",
        "/v1/instances/{id}/access",
        Key("members.permissions"),
    ),
    sub(
        "PUT",
        "/v1/instances/{id}/access/{userId}",
        Key("members.permissions"),
    ),
    sub(
        "DELETE",
        "/v1/instances/{id}/access/{userId}",
        Key("members.permissions"),
    ),
    // Pterodactyl import (issue 20): platform admins only; the matrix's source refuses
    // at once (port 9), 502 after authorizing.
    r("POST", "/v1/pterodactyl/validate", PlatformAdmin),
    r("POST", "/v1/pterodactyl/servers", PlatformAdmin),
    r("POST", "/v1/pterodactyl/import", PlatformAdmin),
    r("GET", "/v1/pterodactyl/imports", PlatformAdmin),
    sub("GET", "/v1/pterodactyl/imports/{id}", PlatformAdmin),
    r("GET", "/v1/admin/plans", PlatformAdmin),
    r("POST", "/v1/admin/plans", PlatformAdmin),
    sub("PUT", "/v1/admin/plans/{id}", PlatformAdmin),
    sub("DELETE", "/v1/admin/plans/{id}", PlatformAdmin),
    r("GET", "/v1/admin/subscriptions", PlatformAdmin),
    sub("PUT", "/v1/admin/subscriptions/{id}", PlatformAdmin),
    r("GET", "/v1/admin/settings/logs", PlatformAdmin),
    r("PUT", "/v1/admin/settings/logs", PlatformAdmin),
    r("POST", "/v1/support/messages", AnyUser),
    sub("GET", "/v1/support/helpscout/signature", AnyUser),
    r("GET", "/v1/users/me/ssh-keys", AnyUser),
    r("POST", "/v1/users/me/ssh-keys", AnyUser),
    sub("DELETE", "/v1/users/me/ssh-keys/{id}", AnyUser),
    // Integrations.
    r("GET", "/v1/integrations", Key("integrations.read")),
    r("GET", "/v1/integrations/types", AnyUser),
    r("POST", "/v1/integrations", Key("integrations.write")),
    fresh(
        "GET",
        "/v1/integrations/{id}",
        Key("integrations.read"),
        Fresh::Integration,
    ),
    fresh(
        "PUT",
        "/v1/integrations/{id}",
        Key("integrations.write"),
        Fresh::Integration,
    ),
    fresh(
        "DELETE",
        "/v1/integrations/{id}",
        Key("integrations.write"),
        Fresh::Integration,
    ),
    fresh(
        "POST",
        "/v1/integrations/{id}/test",
        Key("integrations.write"),
        Fresh::Integration,
    ),
    fresh(
        "POST",
        "/v1/integrations/{id}/rotate-secret",
        Key("integrations.write"),
        Fresh::Integration,
    ),
    // Alerts.
    r("GET", "/v1/alerts", Key("alerts.read")),
    r("GET", "/v1/alerts/unread-count", AnyUser),
    r("POST", "/v1/alerts/read", AnyUser),
    fresh("GET", "/v1/alerts/{id}", Key("alerts.read"), Fresh::Alert),
    fresh(
        "POST",
        "/v1/alerts/{id}/ack",
        Key("alerts.write"),
        Fresh::Alert,
    ),
    fresh(
        "POST",
        "/v1/alerts/{id}/silence",
        Key("alerts.write"),
        Fresh::Alert,
    ),
    r("GET", "/v1/alerts/rules", Key("alerts.read")),
    r("POST", "/v1/alerts/rules", Key("alerts.write")),
    fresh(
        "GET",
        "/v1/alerts/rules/{id}",
        Key("alerts.read"),
        Fresh::AlertRule,
    ),
    fresh(
        "PUT",
        "/v1/alerts/rules/{id}",
        Key("alerts.write"),
        Fresh::AlertRule,
    ),
    fresh(
        "DELETE",
        "/v1/alerts/rules/{id}",
        Key("alerts.write"),
        Fresh::AlertRule,
    ),
    r("GET", "/v1/alerts/maintenance", Key("alerts.read")),
    r("POST", "/v1/alerts/maintenance", Key("alerts.write")),
    fresh(
        "GET",
        "/v1/alerts/maintenance/{id}",
        Key("alerts.read"),
        Fresh::Maintenance,
    ),
    fresh(
        "DELETE",
        "/v1/alerts/maintenance/{id}",
        Key("alerts.write"),
        Fresh::Maintenance,
    ),
    // Cloud credentials.
    r("GET", "/v1/credentials", Key("credentials.read")),
    r("GET", "/v1/credentials/providers", AnyUser),
    r("POST", "/v1/credentials", Key("credentials.write")),
    fresh(
        "GET",
        "/v1/credentials/{id}",
        Key("credentials.read"),
        Fresh::Credential,
    ),
    fresh(
        "PUT",
        "/v1/credentials/{id}",
        Key("credentials.write"),
        Fresh::Credential,
    ),
    fresh(
        "DELETE",
        "/v1/credentials/{id}",
        Key("credentials.write"),
        Fresh::Credential,
    ),
    fresh(
        "POST",
        "/v1/credentials/{id}/default",
        Key("credentials.write"),
        Fresh::Credential,
    ),
    fresh(
        "POST",
        "/v1/credentials/{id}/verify",
        Key("credentials.write"),
        Fresh::Credential,
    ),
    // DNS records and auto-DNS.
    r("GET", "/v1/dns/zones", Key("dns.read")),
    sub("GET", "/v1/dns/zones/{zoneId}/records", Key("dns.read")),
    r("GET", "/v1/dns/records", Key("dns.read")),
    sub("POST", "/v1/dns/records", Key("dns.write")),
    fresh(
        "GET",
        "/v1/dns/records/{id}",
        Key("dns.read"),
        Fresh::DnsRecord,
    ),
    fresh(
        "PUT",
        "/v1/dns/records/{id}",
        Key("dns.write"),
        Fresh::DnsRecord,
    ),
    fresh(
        "DELETE",
        "/v1/dns/records/{id}",
        Key("dns.write"),
        Fresh::DnsRecord,
    ),
    r("GET", "/v1/dns/auto-config", Key("dns.read")),
    r("PUT", "/v1/dns/auto-config", Key("dns.write")),
    // Cloud provisioning (Terraform runs); the state backend is public (a run's own
    // Basic credential).
    r("GET", "/v1/provision", Key("provision.read")),
    r("POST", "/v1/provision", Key("provision.write")),
    r("GET", "/v1/provision/providers", AnyUser),
    fresh(
        "GET",
        "/v1/provision/{id}",
        Key("provision.read"),
        Fresh::ProvisionRequest,
    ),
    fresh(
        "GET",
        "/v1/provision/{id}/logs",
        Key("provision.read"),
        Fresh::ProvisionRequest,
    ),
    fresh(
        "POST",
        "/v1/provision/{id}/plan",
        Key("provision.write"),
        Fresh::ProvisionRequest,
    ),
    fresh(
        "POST",
        "/v1/provision/{id}/apply",
        Key("provision.write"),
        Fresh::ProvisionRequest,
    ),
    fresh(
        "DELETE",
        "/v1/provision/{id}",
        Key("provision.write"),
        Fresh::ProvisionRequest,
    ),
    r("POST", "/v1/nodes/{id}/resize", Key("nodes.power")),
    // Capacity planner (reads the fleet).
    r("POST", "/v1/planner/suggest-fit", Key("nodes.read")),
    r("POST", "/v1/planner/recommend", Key("nodes.read")),
    r(
        "POST",
        "/v1/planner/recommend-for-template",
        Key("nodes.read"),
    ),
    r("GET", "/v1/planner/pricing", Key("nodes.read")),
    r("GET", "/v1/planner/templates", AnyUser),
    // Webhook tokens.
    r("GET", "/v1/webhook-tokens", Key("webhooks.manage")),
    r("POST", "/v1/webhook-tokens", Key("webhooks.manage")),
    fresh(
        "DELETE",
        "/v1/webhook-tokens/{id}",
        Key("webhooks.manage"),
        Fresh::WebhookToken,
    ),
];

/// One caller of the matrix.
struct Caller {
    label: &'static str,
    session: Session,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Member(Role),
    /// A viewer granted the row's key.
    Granted,
    /// An admin with the row's key removed.
    Revoked,
    PlatformAdmin,
    Outsider,
}

/// The organization and its resources the calls act on.
struct World {
    org: String,
    owner: String,
    target: Session,
    workload: String,
    node: String,
    spare_node: String,
    instance: String,
    /// A move of `instance` that already failed (no agent runs in this test).
    migration: String,
    /// A one-click deployment that already failed.
    deployment: String,
}

async fn online_node(app: &TestApp, owner: &str, org: &str, name: &str) -> String {
    let node = app.register_node(owner, Some(org), name).await;
    app.mark_node_online(&node, 64 * GIB, 500 * GIB).await;
    node
}

async fn new_workload(app: &TestApp, owner: &str, org: &str) -> String {
    let w = app
        .post(
            "/v1/workloads",
            Some(owner),
            json!({
                "organization_id": org, "name": "Secretive", "images": ["busybox:1.36"], "startup": "sh",
                "variables": [
                    {"name": "Motd", "env_variable": "MOTD", "default_value": "hi", "user_viewable": true,
                     "user_editable": true, "rules": "required|string"},
                    {"name": "Api key", "env_variable": "API_KEY", "default_value": "default-key",
                     "user_viewable": false, "user_editable": false, "rules": "nullable|string"},
                ],
            }),
        )
        .await
        .expect(201);
    w.body["id"].as_str().expect("workload id").to_string()
}

async fn new_instance(app: &TestApp, owner: &str, workload: &str, node: &str) -> String {
    let r = app
        .post(
            "/v1/instances",
            Some(owner),
            json!({"name": "matrix", "workload_id": workload, "node_id": node,
                   "variables": {"API_KEY": "s3cret-value"}}),
        )
        .await
        .expect(201);
    r.body["id"].as_str().expect("instance id").to_string()
}

/// A move row as the panel writes one, already failed.
async fn failed_migration(
    app: &TestApp,
    org: &str,
    instance: &str,
    from: &str,
    to: &str,
) -> String {
    let now = shardlyn_panel::db::now_ms();
    let m = shardlyn_panel::migrations::store::Migration {
        id: shardlyn_panel::db::new_id(),
        org_id: org.to_owned(),
        instance_id: instance.to_owned(),
        source_node_id: from.to_owned(),
        target_node_id: to.to_owned(),
        state: "failed".into(),
        reason: Some("the target went offline".into()),
        was_running: false,
        cancel_requested: false,
        bytes_copied: 0,
        ports_changed: String::new(),
        requested_by: None,
        created_at: now,
        updated_at: now,
        finished_at: Some(now),
        runner: String::new(),
        resumes: 0,
        backup_id: None,
        backup_taken_at: None,
    };
    shardlyn_panel::migrations::store::insert(&app.state.db.pool, &m)
        .await
        .expect("insert");
    m.id
}

/// A deployment row as the panel writes one, already failed.
async fn failed_deployment(app: &TestApp, org: &str, by: &str) -> String {
    let now = shardlyn_panel::db::now_ms();
    let d = shardlyn_panel::deploy::store::Deployment {
        id: shardlyn_panel::db::new_id(),
        org_id: org.to_owned(),
        template: "python-app".into(),
        name: "matrix".into(),
        variables: "{}".into(),
        node_id: None,
        subdomain: None,
        status: "failed".into(),
        steps: "[]".into(),
        workload_id: None,
        workload_made: false,
        instance_id: None,
        dns_record_id: None,
        error: Some("place: no node".into()),
        created_by: by.to_owned(),
        lease_owner: None,
        lease_until: None,
        created_at: now,
        updated_at: now,
    };
    shardlyn_panel::deploy::store::insert(&app.state.db.pool, &d)
        .await
        .expect("insert");
    d.id
}

async fn add_members(app: &TestApp, org: &str, callers: &[Caller], target: &Session) {
    for c in callers {
        let role = match c.kind {
            Kind::Member(Role::Owner) | Kind::PlatformAdmin | Kind::Outsider => continue,
            Kind::Member(role) => role,
            Kind::Granted => Role::Viewer,
            Kind::Revoked => Role::Admin,
        };
        app.add_member(org, &c.session.user_id, role.as_str()).await;
    }
    app.add_member(org, &target.user_id, "viewer").await;
}

async fn set_override(app: &TestApp, w: &World, org: &str, user: &str, key: &str, allowed: bool) {
    app.post(
        &format!("/v1/organizations/{org}/members/{user}/permissions"),
        Some(&w.owner),
        json!({"key": key, "allowed": allowed}),
    )
    .await
    .expect(200);
}

async fn clear_override(app: &TestApp, w: &World, org: &str, user: &str, key: &str) {
    let r = app
        .delete(
            &format!("/v1/organizations/{org}/members/{user}/permissions/{key}"),
            Some(&w.owner),
        )
        .await;
    assert!(matches!(r.status, 200 | 204 | 404), "{}", r.text);
}

/// A `node_offline` rule on the world's node (duration 0: it fires at once).
async fn new_alert_rule(app: &TestApp, w: &World, org: &str) -> String {
    let r = app
        .post(
            "/v1/alerts/rules",
            Some(&w.owner),
            alert_rule_body(org, &w.node),
        )
        .await
        .expect(201);
    r.body["id"].as_str().expect("rule id").to_string()
}

fn alert_rule_body(org: &str, node: &str) -> Value {
    json!({"organization_id": org, "name": "Node offline", "target_type": "node",
           "target_id": node, "metric": "node_offline", "duration_seconds": 0})
}

/// A Steam key whose verify call goes nowhere (port 9 refuses at once).
fn credential_body(org: &str) -> Value {
    json!({"organization_id": org, "name": "Steam", "provider": "steam",
           "config": {"api_key": "KEY0123456789ABCDEF"}})
}

fn maintenance_body(org: &str, node: &str) -> Value {
    json!({"organization_id": org, "target_type": "node", "target_id": node,
           "duration_minutes": 30, "reason": "kernel update"})
}

/// Fires rule `rule` on `node` (as the node's going offline would) and returns the alert.
async fn new_alert(app: &TestApp, org: &str, node: &str, rule: &str) -> String {
    let target = shardlyn_panel::alerts::evaluate::Target {
        org_id: org,
        kind: "node",
        id: node,
        node_id: node,
    };
    shardlyn_panel::alerts::evaluate::observe(&app.state, target, "node_offline", 1.0).await;
    shardlyn_panel::alerts::store::open_alerts_on(&app.state.db.pool, node)
        .await
        .expect("open alerts")
        .into_iter()
        .find(|a| a.rule_id == rule)
        .expect("the rule fired")
        .id
}

fn body_for(row: &Row, w: &World, org: &str, n: usize) -> Option<Value> {
    let b = match (row.method, row.path) {
        ("POST", "/v1/alerts/rules") | ("PUT", "/v1/alerts/rules/{id}") => {
            alert_rule_body(org, &w.node)
        }
        ("POST", "/v1/alerts/{id}/silence") => json!({"minutes": 5}),
        ("POST", "/v1/alerts/maintenance") => maintenance_body(org, &w.node),
        ("POST", "/v1/credentials") => credential_body(org),
        ("POST", "/v1/dns/records") => json!({"organization_id": org,
            "credential_id": "0190a0c4-0000-7000-8000-000000000000", "zone_id": "example.com.",
            "type": "A", "name": "mc", "content": "203.0.113.10"}),
        ("PUT", "/v1/dns/auto-config") => json!({"organization_id": org, "enabled": false}),
        ("POST", "/v1/provision") => {
            json!({"organization_id": org, "name": format!("matrix-new-{n}"),
            "provider": "hetzner", "region": "fsn1", "instance_type": "cx23"})
        }
        ("POST", "/v1/nodes/{id}/resize") => json!({"instance_type": "cx33"}),
        ("PUT", "/v1/credentials/{id}") => json!({"name": "Renamed"}),
        ("POST", "/v1/planner/suggest-fit") => {
            json!({"organization_id": org, "memory_mb": 1024, "cpu": 1, "disk_gb": 1})
        }
        // Unmarking the spare node changes nothing the other rows rely on.
        ("PUT", "/v1/admin/nodes/{id}/platform") => json!({"platform": false}),
        // Refused after authorizing (400 on `template`): the matrix makes no server.
        ("POST", "/v1/deploy") => {
            json!({"organization_id": org, "template": "no-such-template", "name": format!("deploy-{n}")})
        }
        ("POST", "/v1/planner/recommend") => {
            json!({"organization_id": org, "memory_mb": 1024, "cpu": 1, "disk_gb": 1, "provider": "hetzner"})
        }
        ("POST", "/v1/planner/recommend-for-template") => {
            json!({"organization_id": org, "template": "valheim", "provider": "hetzner"})
        }
        ("POST", "/v1/billing/org/subscribe") => {
            json!({"organization_id": org, "plan_id": "plan-free", "interval": "month"})
        }
        ("POST", "/v1/admin/plans") => json!({"name": format!("Matrix plan {n}")}),
        ("POST", "/v1/instances/{id}/access") => {
            json!({"email": format!("nobody-{n}@example.com"), "permissions": ["instances.read"]})
        }
        ("PUT", "/v1/instances/{id}/access/{userId}") => json!({"permissions": ["instances.read"]}),
        (
            "POST",
            "/v1/pterodactyl/validate" | "/v1/pterodactyl/servers" | "/v1/pterodactyl/import",
        ) => {
            json!({"mode": "api", "url": "http://127.0.0.1:9", "api_key": "ptla_matrix"})
        }
        ("PUT", "/v1/admin/plans/{id}") => json!({"name": format!("Matrix plan {n}")}),
        ("PUT", "/v1/admin/subscriptions/{id}") => json!({"action": "cancel_now"}),
        ("POST", "/v1/organizations") => json!({"name": format!("Org {n}")}),
        ("PUT", "/v1/organizations/{orgId}") => json!({"name": "Matrix"}),
        ("POST", "/v1/organizations/{orgId}/members/invite") => {
            json!({"email": format!("invitee{n}@example.com"), "role": "viewer"})
        }
        ("PUT", "/v1/organizations/{orgId}/members/{userId}/role") => json!({"role": "operator"}),
        ("POST", "/v1/organizations/{orgId}/members/{userId}/permissions") => {
            json!({"key": "nodes.read", "allowed": true})
        }
        ("POST", "/v1/workloads/from-template") => {
            json!({"template": "busybox-test", "organization_id": org})
        }
        ("POST", "/v1/instances") => {
            json!({"name": format!("i{n}"), "workload_id": w.workload, "node_id": w.node})
        }
        ("PUT", "/v1/instances/{id}") => json!({"description": format!("d{n}")}),
        ("PUT", "/v1/nodes/{id}") => json!({"name": format!("spare-{n}")}),
        ("POST", "/v1/webhook-tokens") => json!({"name": "t", "organization_id": org}),
        ("POST", "/v1/api-tokens") => json!({"name": "t"}),
        ("POST", "/v1/nodes/register-token") => {
            json!({"name": format!("n{n}"), "organization_id": org})
        }
        ("POST" | "PUT", p) if !p.contains('{') => json!({"organization_id": org}),
        ("POST" | "PUT", _) => json!({}),
        _ => return None,
    };
    Some(b)
}

fn fill(path: &str, w: &World, org: &str, id: &str, invite: &str) -> String {
    let collection = !path.contains('{');
    let path = path
        .replace("{orgId}", org)
        .replace("{userId}", &w.target.user_id)
        .replace("{key}", "nodes.read")
        .replace("{inviteId}", invite)
        .replace("{containerId}", "shardlyn-matrix")
        .replace("{pid}", "1")
        .replace("{category}", "game")
        .replace("{bid}", "0190a0c4-0000-7000-8000-000000000000")
        .replace("{upload}", "0190a0c4-0000-7000-8000-000000000000")
        .replace("{sid}", "0190a0c4-0000-7000-8000-000000000000")
        .replace("{rid}", "0190a0c4-0000-7000-8000-000000000000")
        .replace("{name}", "no-such-key")
        .replace("{token}", "not-an-invite")
        .replace("{id}", id);
    if path.starts_with("/v1/dns/zones/") {
        // A zone of a credential no test made: 404 once authorized.
        return format!(
            "{}?organization_id={org}&credential_id=0190a0c4-0000-7000-8000-000000000000",
            path.replace("{zoneId}", "example.com.")
        );
    }
    if collection {
        format!("{path}?organization_id={org}")
    } else {
        path
    }
}

/// The `{id}` a row's path means, before any fresh resource replaces it.
fn default_id(path: &str, w: &World) -> String {
    if path.starts_with("/v1/nodes/{id}") {
        // Writes go to a spare node so cordons and drains do not disturb placement.
        if path == "/v1/nodes/{id}" || path.contains("cordon") || path.contains("drain") {
            return w.spare_node.clone();
        }
        return w.node.clone();
    }
    if path.starts_with("/v1/instances/{id}") {
        return w.instance.clone();
    }
    if path.starts_with("/v1/workloads/{id}") {
        return w.workload.clone();
    }
    if path.starts_with("/v1/admin/organizations/{id}") {
        return w.org.clone();
    }
    if path.starts_with("/v1/admin/nodes/{id}") {
        return w.spare_node.clone();
    }
    if path.starts_with("/v1/migrations/{id}") {
        return w.migration.clone();
    }
    if path.starts_with("/v1/deploy/{id}") {
        return w.deployment.clone();
    }
    "0190a0c4-0000-7000-8000-000000000000".into()
}

async fn send(app: &TestApp, method: &str, path: &str, token: &str, body: Option<&Value>) -> Resp {
    if method == "GET" && (path.contains("/console?") || path.contains("/logs?")) {
        // The console and log sockets: a refused upgrade carries the status.
        return match Console::connect(&format!("{}{path}", app.base), Some(token)).await {
            Ok(ws) => {
                ws.close().await;
                Resp {
                    status: 101,
                    headers: reqwest::header::HeaderMap::new(),
                    body: Value::Null,
                    text: String::new(),
                }
            }
            Err(refused) => Resp {
                status: refused.status,
                headers: reqwest::header::HeaderMap::new(),
                body: serde_json::from_str(&refused.body).unwrap_or(Value::Null),
                text: refused.body,
            },
        };
    }
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    app.call(method, path, Some(token), body).await
}

/// What the table says `caller` gets on `row`: `Some(true)` allowed, `Some(false)`
/// 403, `None` 404 (not a member).
fn expected(row: &Row, kind: Kind) -> Option<bool> {
    match row.rule {
        AnyUser => Some(true),
        PlatformAdmin => Some(kind == Kind::PlatformAdmin),
        Key(key) => match kind {
            Kind::Member(role) => Some(role_has(role, key)),
            Kind::Granted => Some(true),
            Kind::Revoked => Some(false),
            Kind::PlatformAdmin | Kind::Outsider => None,
        },
    }
}

both_engines! {
    async fn every_route_answers_as_the_permission_table_says(engine) {
        // Credentials' verify calls go to a port that refuses at once (port 9).
        let app = spawn_app_with(engine, |c| {
            c.cloud.steam_api_url = "http://127.0.0.1:9".into();
            // Plans start Terraform in the background: here it cannot start, at once.
            c.provision.terraform_bin = "/nonexistent/terraform".into();
        })
        .await;
        let platform = app.bootstrap_admin().await;
        let owner = app.register("owner@example.com").await;
        let mut callers = vec![Caller { label: "owner", session: owner.clone(), kind: Kind::Member(Role::Owner) }];
        for (label, kind) in [
            ("admin", Kind::Member(Role::Admin)),
            ("operator", Kind::Member(Role::Operator)),
            ("viewer", Kind::Member(Role::Viewer)),
            ("granted", Kind::Granted),
            ("revoked", Kind::Revoked),
            ("outsider", Kind::Outsider),
        ] {
            let session = app.register(&format!("m-{label}@example.com")).await;
            callers.push(Caller { label, session, kind });
        }
        callers.push(Caller { label: "platform-admin", session: platform, kind: Kind::PlatformAdmin });
        let target = app.register("target@example.com").await;
        let org = app.create_org(&owner.access, "Matrix").await;
        add_members(&app, &org, &callers, &target).await;
        let workload = new_workload(&app, &owner.access, &org).await;
        let node = online_node(&app, &owner.access, &org, "main").await;
        let spare_node = online_node(&app, &owner.access, &org, "spare").await;
        let instance = new_instance(&app, &owner.access, &workload, &node).await;
        let migration = failed_migration(&app, &org, &instance, &node, &spare_node).await;
        let deployment = failed_deployment(&app, &org, &owner.user_id).await;
        let w = World { org: org.clone(), owner: owner.access.clone(), target, workload, node, spare_node, instance, migration, deployment };

        // Every route is in the table (rows of routes not served yet are skipped).
        let routes = shardlyn_panel::app::routes();
        let served: BTreeSet<(String, String)> = routes
            .endpoints()
            .iter()
            // The event stream needs no permission to open (each event is filtered by
            // its own, see `events.rs`) and its answer never ends.
            .filter(|e| !matches!(e.access, Access::Public | Access::Agent | Access::Stream))
            .map(|e| (e.method.to_string(), e.path.to_string()))
            .collect();
        let listed: BTreeSet<(String, String)> =
            TABLE.iter().map(|r| (r.method.to_string(), r.path.to_string())).collect();
        let missing: Vec<_> = served.difference(&listed).collect();
        assert!(missing.is_empty(), "routes missing from the permission table: {missing:#?}");

        let mut failures = Vec::new();
        let mut n = 0;
        for row in TABLE
            .iter()
            .filter(|r| served.contains(&(r.method.to_string(), r.path.to_string())))
        {
            let key = match row.rule { Key(k) => Some(k), _ => None };
            for caller in &callers {
                n += 1;
                // The organization (fresh for a deletion) and the overrides of this row.
                let row_org = if row.fresh == Fresh::Org {
                    let o = app.create_org(&owner.access, &format!("Doomed {n}")).await;
                    add_members(&app, &o, &callers, &w.target).await;
                    o
                } else {
                    org.clone()
                };
                if let Some(k) = key {
                    let granted = callers.iter().find(|c| c.kind == Kind::Granted).expect("granted");
                    let revoked = callers.iter().find(|c| c.kind == Kind::Revoked).expect("revoked");
                    set_override(&app, &w, &row_org, &granted.session.user_id, k, true).await;
                    set_override(&app, &w, &row_org, &revoked.session.user_id, k, false).await;
                }
                let mut id = default_id(row.path, &w);
                let mut invite = "0190a0c4-0000-7000-8000-000000000000".to_string();
                match row.fresh {
                    Fresh::Member => app.add_member(&org, &w.target.user_id, "viewer").await,
                    Fresh::Override => set_override(&app, &w, &org, &w.target.user_id, "nodes.read", true).await,
                    Fresh::Invite => {
                        let r = app.post(&format!("/v1/organizations/{org}/members/invite"), Some(&w.owner),
                            json!({"email": format!("fresh{n}@example.com"), "role": "viewer"})).await.expect(201);
                        invite = r.body["id"].as_str().expect("invite id").to_string();
                    }
                    Fresh::Node => id = online_node(&app, &w.owner, &org, &format!("fresh-{n}")).await,
                    Fresh::Workload => id = new_workload(&app, &w.owner, &org).await,
                    Fresh::Instance => id = new_instance(&app, &w.owner, &w.workload, &w.node).await,
                    Fresh::BackupConfig => {
                        let r = app.post("/v1/backup-config", Some(&w.owner),
                            json!({"name": format!("disk {n}"), "kind": "local", "organization_id": org}))
                            .await
                            .expect(201);
                        id = r.body["id"].as_str().expect("id").to_string();
                    }
                    Fresh::Integration => {
                        // A receiver that is not there: the test send answers at once.
                        let r = app.post("/v1/integrations", Some(&w.owner),
                            json!({"name": format!("hook {n}"), "type": "webhook", "organization_id": org,
                                   "config": {"url": "http://127.0.0.1:9/hook"}}))
                            .await
                            .expect(201);
                        id = r.body["id"].as_str().expect("id").to_string();
                    }
                    Fresh::AlertRule => id = new_alert_rule(&app, &w, &org).await,
                    Fresh::Alert => {
                        let rule = new_alert_rule(&app, &w, &org).await;
                        id = new_alert(&app, &org, &w.node, &rule).await;
                    }
                    Fresh::Credential => {
                        let r = app.post("/v1/credentials", Some(&w.owner), credential_body(&org))
                            .await.expect(201);
                        id = r.body["id"].as_str().expect("credential id").to_string();
                    }
                    Fresh::ProvisionRequest => {
                        app.post("/v1/credentials", Some(&w.owner), json!({"organization_id": org,
                            "name": "Hetzner", "provider": "hetzner", "config": {"token": "matrix-token-0123456789"}}))
                            .await.expect(201);
                        let r = app.post("/v1/provision", Some(&w.owner), json!({"organization_id": org,
                            "name": format!("matrix-{n}"), "provider": "hetzner", "region": "fsn1", "instance_type": "cx23"}))
                            .await.expect(201);
                        id = r.body["id"].as_str().expect("request id").to_string();
                    }
                    Fresh::DnsRecord => {
                        // A record row over a PowerDNS credential nobody answers for: the
                        // route authorizes before it reaches the provider.
                        // One credential for every row (an organization keeps 100 at most).
                        let existing: Option<(String,)> = sqlx::query_as(
                            "SELECT id FROM credentials WHERE org_id = $1 AND provider = 'powerdns'")
                            .bind(&org).fetch_optional(&app.state.db.pool).await.expect("credential");
                        let credential = match existing {
                            Some((id,)) => id,
                            None => app.post("/v1/credentials", Some(&w.owner), json!({"organization_id": org,
                                "name": "pdns", "provider": "powerdns",
                                "config": {"api_url": "http://127.0.0.1:9", "api_key": "matrix-key-0123456789"}}))
                                .await.expect(201).body["id"].as_str().expect("credential id").to_string(),
                        };
                        id = format!("0190a0c4-0000-7000-8000-{n:012}");
                        sqlx::query("INSERT INTO dns_records (id, org_id, credential_id, zone_id, zone_name, \
                            record_type, name, content, ttl, origin, status, created_at, updated_at) \
                            VALUES ($1, $2, $3, 'example.com.', 'example.com', 'A', $4, '203.0.113.10', 300, \
                            'manual', 'synced', 0, 0)")
                            .bind(&id).bind(&org).bind(&credential).bind(format!("r{n}.example.com"))
                            .execute(&app.state.db.pool).await.expect("record row");
                    }
                    Fresh::Maintenance => {
                        let r = app.post("/v1/alerts/maintenance", Some(&w.owner),
                            maintenance_body(&org, &w.node))
                            .await.expect(201);
                        id = r.body["id"].as_str().expect("window id").to_string();
                    }
                    Fresh::WebhookToken => {
                        let r = app.post("/v1/webhook-tokens", Some(&w.owner), json!({"name": "doomed", "organization_id": org}))
                            .await.expect(201);
                        id = r.body["id"].as_str().expect("token id").to_string();
                    }
                    Fresh::No | Fresh::Org => {}
                }
                let path = fill(row.path, &w, &row_org, &id, &invite);
                let body = body_for(row, &w, &row_org, n);
                let token = if row.path == "/v1/auth/logout" {
                    app.login(&caller.session.email, shardlyn_tests::PASSWORD).await.access
                } else {
                    caller.session.access.clone()
                };
                let got = send(&app, row.method, &path, &token, body.as_ref()).await;
                let want = expected(row, caller.kind);
                let ok = match want {
                    Some(true) => !matches!(got.status, 401 | 403 | 500)
                        && (got.status != 404 || row.sub || row.rule_is_any_user()),
                    Some(false) => got.status == 403,
                    None => got.status == 404,
                };
                if !ok {
                    failures.push(format!(
                        "{} {} as {}: got {} (want {}) {}",
                        row.method, row.path, caller.label, got.status,
                        match want { Some(true) => "allowed", Some(false) => "403", None => "404" },
                        got.text.chars().take(160).collect::<String>()
                    ));
                }
                if let Some(k) = key {
                    for c in callers.iter().filter(|c| matches!(c.kind, Kind::Granted | Kind::Revoked)) {
                        if row.fresh != Fresh::Org {
                            clear_override(&app, &w, &row_org, &c.session.user_id, k).await;
                        }
                    }
                }
            }
        }
        assert!(failures.is_empty(), "{} of {n} calls differ from the permission table:\n{}", failures.len(), failures.join("\n"));

        // Secrets and environment values: shown only to holders of instances.secrets.
        let path = format!("/v1/instances/{}", w.instance);
        let granted = callers.iter().find(|c| c.kind == Kind::Granted).expect("granted");
        let revoked = callers.iter().find(|c| c.kind == Kind::Revoked).expect("revoked");
        set_override(&app, &w, &org, &granted.session.user_id, "instances.secrets", true).await;
        set_override(&app, &w, &org, &revoked.session.user_id, "instances.secrets", false).await;
        for caller in callers.iter().filter(|c| !matches!(c.kind, Kind::Outsider | Kind::PlatformAdmin)) {
            let sees = match caller.kind {
                Kind::Member(role) => role_has(role, "instances.secrets") || role == Role::Owner,
                Kind::Granted => true,
                _ => false,
            };
            let one = app.get(&path, Some(&caller.session.access)).await.expect(200);
            let list = app.get(&format!("/v1/instances?organization_id={org}"), Some(&caller.session.access)).await.expect(200);
            for text in [&one.text, &list.text] {
                assert_eq!(text.contains("s3cret-value"), sees, "{}: {text}", caller.label);
            }
            assert_eq!(one.body["variables"]["MOTD"], "hi", "{}", caller.label);
        }
    }
}

impl Row {
    fn rule_is_any_user(&self) -> bool {
        matches!(self.rule, AnyUser)
    }
}

/// The paths of one organization-owned resource: every route under them must take the
/// resource through `authz::Authorized<R, P>`, the extractor that loads it and checks `P`.
const RESOURCE_PREFIXES: &[&str] = &[
    "/v1/instances/{id}",
    "/v1/nodes/{id}",
    "/v1/workloads/{id}",
    "/v1/backup-config/{id}",
    "/v1/webhook-tokens/{id}",
    "/v1/integrations/{id}",
    "/v1/alerts/rules/{id}",
    "/v1/alerts/{id}",
];

/// Socket routes authorize after the upgrade (the token may come in the first message),
/// through `authz::load`, the function behind the extractor.
const SOCKETS: &[&str] = &[
    "/v1/instances/{id}/console",
    "/v1/instances/{id}/logs",
    "/v1/nodes/{id}/ssh",
    "/v1/nodes/{id}/terminal",
];

/// Authorization by construction, checked on the route table: a user route under a
/// resource's path whose handler took a bare `AppPath` id (and loaded the row itself)
/// declares no permission and fails here; one that checks another key than this file's
/// table says fails too.
#[test]
fn resource_routes_take_the_resource_through_authorized() {
    let routes = shardlyn_panel::app::routes();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for e in routes.endpoints() {
        if !RESOURCE_PREFIXES.iter().any(|p| e.path.starts_with(p)) {
            continue;
        }
        let found = e.handler_permission();
        match e.access {
            Access::User => {
                checked += 1;
                let listed = TABLE
                    .iter()
                    .find(|r| r.method == e.method.as_str() && r.path == e.path)
                    .map(|r| r.rule);
                match (found.as_deref(), listed) {
                    (Some(k), Some(Key(want))) if k == want => {}
                    (found, listed) => wrong.push(format!(
                        "{} {}: handler checks {found:?}, the table says {listed:?}",
                        e.method, e.path
                    )),
                }
            }
            Access::Socket => assert!(
                SOCKETS.contains(&e.path),
                "{} {}: a socket route not known here",
                e.method,
                e.path
            ),
            // tus capability discovery: answers what the server supports, reads nothing.
            Access::Public if e.method == Method::OPTIONS => assert!(found.is_none()),
            // Platform routes (e.g. clearing logs) are not the organization's to grant.
            Access::Admin | Access::SessionAdmin => assert!(found.is_none()),
            other => wrong.push(format!(
                "{} {}: unexpected access {other:?}",
                e.method, e.path
            )),
        }
    }
    assert!(checked > 60, "only {checked} resource routes found");
    assert!(
        wrong.is_empty(),
        "resource routes not behind Authorized:\n{}",
        wrong.join("\n")
    );
}
