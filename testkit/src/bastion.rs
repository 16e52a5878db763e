//! A bastion for tunnel tests: the kit's real sshd with the fault proxy in front of it,
//! so a test sees every byte cross the tunnel and can cut it.

use crate::fault::FaultProxy;
use crate::sftp_server::{SftpServer, PASSWORD, USER};

/// sshd, and a proxy in front of it (Ferry connects to the proxy).
pub struct Bastion {
    pub sshd: SftpServer,
    pub proxy: FaultProxy,
}

impl Bastion {
    pub async fn start() -> Bastion {
        let sshd = SftpServer::start();
        let proxy = FaultProxy::start(([127, 0, 0, 1], sshd.port()).into())
            .await
            .expect("the proxy starts");
        Bastion { sshd, proxy }
    }

    /// `tunnel = { … }` logging in with `credentials`, the host key pinned.
    pub fn tunnel(&self, credentials: &str) -> String {
        format!(
            "tunnel = {{ host = \"127.0.0.1\", port = {}, user = \"{USER}\", {credentials}, host_key = \"{}\", keepalive_secs = 2, timeout_secs = 10 }}\n",
            self.proxy.port(),
            self.sshd.host_key()
        )
    }

    /// `tunnel = { … }` logging in with the test user's password.
    pub fn password(&self) -> String {
        self.tunnel(&format!("password = \"{PASSWORD}\""))
    }

    /// How many SSH logins sshd accepted.
    pub fn logins(&self) -> usize {
        self.sshd.log().matches("Accepted ").count()
    }
}
