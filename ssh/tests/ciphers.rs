//! The cipher a session negotiates (issue 21): libssh2's own first choice,
//! chacha20-poly1305, which the tunnel bench (`src/bin/tunnel_bench.rs`) measured as the
//! cheapest for Ferry's side. AES-GCM halves the server's work but libssh2 feeds it to
//! OpenSSL 16 bytes at a time, which cost the pump about 1.6× the CPU: a change of
//! libssh2 or of the offered ciphers should be measured again there.

use std::path::Path;

use ferry_core::Secret;
use ferry_ssh::hostkey::Pin;
use ferry_ssh::ssh2::MethodType;
use ferry_ssh::Login;
use ferry_testkit::sftp_server::{SftpServer, PASSWORD, USER};

#[test]
fn sessions_negotiate_chacha20_poly1305_with_an_openssh_server() {
    let sshd = SftpServer::start();
    let role = "SSH tunnel host";
    let login = Login {
        role,
        scheme: "ssh",
        host: "127.0.0.1".into(),
        port: sshd.port(),
        user: USER.into(),
        password: Some(Secret::new(PASSWORD)),
        private_key: None,
        private_key_passphrase: None,
        pin: Pin::new(Some(sshd.host_key()), None, Path::new("."), role).unwrap(),
        timeout_secs: 10,
    };
    let (session, _) = login.connect().unwrap();
    let chacha = Some("chacha20-poly1305@openssh.com");
    assert_eq!(session.methods(MethodType::CryptCs), chacha);
    assert_eq!(session.methods(MethodType::CryptSc), chacha);
    assert_eq!(session.methods(MethodType::CompSc), Some("none"));
}
