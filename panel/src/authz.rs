//! Authorization by construction: the one way a request reaches a resource an
//! organization owns. [`Authorized<R, P>`] is an extractor that reads the route's `{id}`,
//! loads the [`OrgScoped`] resource `R` and checks permission `P` (a type of [`perm`]) in
//! the resource's organization through [`crate::orgs::permissions::authorize`]. A caller
//! who is not a member, and an id that does not exist, both get 404 `<R::NAME>`; a member
//! without the permission gets 403.
//!
//! Paths that do not arrive as a routed request (the console socket's first message, an
//! SFTP login the agent asks about, an id in a body) call [`load`], the same function.
//!
//! The extractor marks the OpenAPI operation with the permission it checks (read back by
//! [`crate::routes::Endpoint::handler_permission`]; the document leaves the mark out), so
//! the tests can require every route under a resource's path to take it.

use std::future::Future;
use std::marker::PhantomData;

use aide::OperationInput;
use aide::generate::GenContext;
use aide::openapi::Operation;
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use serde_json::Value;

use crate::auth::extract::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::orgs::permissions::{Membership, authorize_on};
use crate::state::AppState;
use crate::users::store::User;

pub use crate::orgs::permissions::perm;

/// The operation extension naming the permission an [`Authorized`] handler checks.
pub const PERMISSION_MARK: &str = "x-shardlyn-permission";

/// A resource owned by an organization, loaded by id.
pub trait OrgScoped: Sized + Send + Sync + 'static {
    /// What the resource is called in a 404 (`instance`, `webhook token`).
    const NAME: &'static str;

    /// The row with this id, unchecked: only [`load`] calls it.
    fn find(state: &AppState, id: &str) -> impl Future<Output = AppResult<Option<Self>>> + Send;

    /// The organization that owns it.
    fn org_id(&self) -> &str;

    /// The server it is or belongs to, for members limited to named servers (see
    /// [`crate::orgs::permissions::authorize_on`]); `None` for organization-wide things,
    /// which such members never reach.
    fn server_id(&self) -> Option<&str> {
        None
    }
}

/// A permission key as a type (see [`perm`]).
pub trait Permission: Send + Sync + 'static {
    /// The key, as declared in [`crate::orgs::permissions::PERMISSIONS`].
    const KEY: &'static str;
}

/// Loads resource `id` and checks permission `P` for `user` in its organization.
///
/// # Errors
/// 404 `R::NAME` for an unknown id or a caller who is not a member of its organization;
/// 403 without the permission (or without MFA the organization requires); database
/// failures.
pub async fn load<R: OrgScoped, P: Permission>(
    state: &AppState,
    user: &User,
    id: &str,
) -> AppResult<(R, Membership)> {
    // No id holds a NUL, and PostgreSQL refuses one in text.
    if id.contains('\0') {
        return Err(AppError::not_found(R::NAME));
    }
    let resource = R::find(state, id)
        .await?
        .ok_or_else(|| AppError::not_found(R::NAME))?;
    let membership = authorize_on(state, user, resource.org_id(), resource.server_id(), P::KEY)
        .await
        .map_err(|e| match e {
            AppError::NotFound(_) => AppError::not_found(R::NAME),
            other => other,
        })?;
    Ok((resource, membership))
}

/// The resource of the route's `{id}`, which `user` holds permission `P` on.
#[derive(Debug)]
pub struct Authorized<R, P> {
    pub resource: R,
    pub membership: Membership,
    pub user: CurrentUser,
    permission: PhantomData<P>,
}

impl<R: OrgScoped, P: Permission> FromRequestParts<AppState> for Authorized<R, P> {
    type Rejection = AppError;

    #[tracing::instrument(skip_all, fields(permission = P::KEY))]
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| AppError::BadRequest(format!("invalid path: {}", e.body_text())))?;
        let id = params
            .iter()
            .find_map(|(name, value)| (name == "id").then(|| value.to_owned()))
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("route has no {{id}} segment")))?;
        let (resource, membership) = load::<R, P>(state, &user.user, &id).await?;
        Ok(Self {
            resource,
            membership,
            user,
            permission: PhantomData,
        })
    }
}

impl<R, P: Permission> OperationInput for Authorized<R, P> {
    fn operation_input(ctx: &mut GenContext, op: &mut Operation) {
        CurrentUser::operation_input(ctx, op);
        op.extensions
            .insert(PERMISSION_MARK.into(), Value::String(P::KEY.into()));
    }
}

/// The permission an operation's [`Authorized`] extractor checks, if any.
#[must_use]
pub fn permission_of(op: &Operation) -> Option<&str> {
    op.extensions.get(PERMISSION_MARK).and_then(Value::as_str)
}
