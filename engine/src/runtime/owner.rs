//! Tenant binding: a destination belongs to one client (see SECURITY.md).

use super::Runtime;
use ferry_core::{Error, ErrorKind, Result};

impl Runtime {
    /// Refuses, before a row is read, a destination bound to another client; binds an
    /// unbound one to `client` (tenant binding, see SECURITY.md).
    pub async fn check_owner(&self, client: &str) -> Result<()> {
        let owner = match self.sink.owner().await? {
            Some(owner) => Some(owner),
            // insert-if-absent: a concurrent sync that bound it first wins, and is named
            None => {
                let bound = self.sink.bind_owner(client).await?;
                if bound.as_deref() == Some(client) {
                    tracing::info!("destination bound to client `{client}`");
                }
                bound
            }
        };
        match owner {
            Some(owner) if owner != client => Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "the destination is bound to client `{owner}`, but this folder is client `{client}`: \
                     refusing to write one client's data into another's destination (nothing was read)"
                ),
            )
            .with("client", client)),
            _ => Ok(()),
        }
    }

    /// Refuses, before a row is read, a destination bound to a client when the folder
    /// names none: an unnamed folder must not write into any client's destination.
    pub async fn check_unnamed(&self) -> Result<()> {
        match self.sink.owner().await? {
            Some(owner) => Err(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "the destination is bound to client `{owner}`, but this folder names no client: \
                     refusing to write into a client's destination from an unnamed folder (nothing was read)"
                ),
            )
            .with(
                "hint",
                format!("if this folder is `{owner}`'s, add `client = \"{owner}\"` at the top of sync.toml"),
            )),
            None => Ok(()),
        }
    }
}
