//! SFTP logins: the agent asks, the panel checks the user's password or key and permission.

use crate::routes::Routes;

/// The routes of this area.
#[must_use]
pub fn router() -> Routes {
    Routes::new("sftp")
}
