//! Opening a delivery Ferry encrypted and signed with OpenPGP, as the client would with
//! `gpg`.

use std::path::Path;

use ferry_testkit::gpg::Gpg;

/// The plain text of the delivery `sealed`, opened by the client's `gpg -d`, after checking
/// that `clear` (a word of its plain text) is not in it in the clear and that `signer`
/// signed it.
pub fn open_delivery(client: &Gpg, sealed: &Path, clear: &[u8], signer: &str) -> String {
    let bytes = std::fs::read(sealed).unwrap();
    assert!(
        !bytes.windows(clear.len()).any(|w| w == clear),
        "the delivery is not encrypted"
    );
    let (plain, stderr) = client
        .decrypt(sealed)
        .unwrap_or_else(|e| panic!("the client's gpg -d: {e}"));
    assert!(
        stderr.contains(&format!("Good signature from \"{signer}")),
        "{stderr}"
    );
    String::from_utf8(plain).expect("a UTF-8 delivery")
}
