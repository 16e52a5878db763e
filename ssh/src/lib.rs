//! SSH for Ferry's connectors, over libssh2 (`ssh2`): logging in with the server's host
//! key pinned ([`hostkey`], [`Login`]), and tunnels that forward a database's
//! connections through an SSH host ([`Tunnel`], configured by [`TunnelConfig`]).
//!
//! Everything that talks to a server blocks; async callers use blocking threads.

#![deny(missing_docs)]

// `login_config!` names the defaults by path, in this crate too.
extern crate self as ferry_ssh;

mod config;
mod fields;
pub mod hostkey;
mod login;
mod pump;
mod tunnel;

pub use config::TunnelConfig;
pub use fields::{defaults, Fields};
pub use login::{is_link, Login};
pub use ssh2;
pub use tunnel::{Opened, Tunnel};
