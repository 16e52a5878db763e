//! The page's "check it yourself" section: the commands a client runs (the same as the
//! README's and `ferry verify`'s), and each output's digest, files also as the lines of
//! `SHA256SUMS` for `sha256sum -c`.

use std::fmt::Write;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::escape::text;
use crate::checksums;
use crate::group::group;
use crate::receipt::SignedReceipt;
use crate::sshsig;

/// The section, for the receipt saved as `file_name`.
pub fn section(signed: &SignedReceipt, file_name: &str) -> String {
    let r = &signed.receipt;
    let outputs: Vec<_> = r.streams.iter().flat_map(|s| &s.outputs).collect();
    let has = |kind: &str| outputs.iter().any(|o| o.kind == kind);
    let key = signed.signature.as_ref().map(|s| s.public_key.as_str());
    let pubkey = key.unwrap_or("KEY");
    let mut out = String::from("<section id=\"verify\"><h2>Check this delivery yourself</h2>");
    out.push_str(
        "<p>Use the public key you were given when the deliveries began, never one copied \
         from this page: anyone can sign a receipt with a key of their own.</p>",
    );
    let mut commands = String::new();
    if has("file") {
        let _ = writeln!(
            commands,
            "ferry verify {} --pubkey {pubkey} --dir DELIVERY   # DELIVERY: the folder of files you received",
            text(file_name)
        );
    }
    if outputs.iter().any(|o| o.kind != "file") || outputs.is_empty() {
        let _ = writeln!(
            commands,
            "ferry verify {} --pubkey {pubkey} -c sync.toml   # tables and objects, read back through the destination",
            text(file_name)
        );
    }
    let _ = write!(
        out,
        "<p>With Ferry (exit 0: signed by that key, and no output changed or missing):</p>\
         <pre class=\"cmd\">{commands}</pre>"
    );
    if let Some(sums) = checksums::text(outputs.iter().copied()) {
        let signer = key
            .and_then(|k| B64.decode(k).ok())
            .map(|k| sshsig::allowed_signers_line(&k))
            .unwrap_or_else(|| "ferry namespaces=\"ferry-delivery\" ssh-ed25519 AAAA…".into());
        let _ = write!(
            out,
            "<p>Without Ferry, in the delivered folder (coreutils and OpenSSH 8.2 or later); \
             the first line is the <code>allowed_signers</code> line you were given:</p>\
             <pre class=\"cmd\">echo '{}' &gt; allowed_signers\n\
             ssh-keygen -Y verify -f allowed_signers -I {} -n {} -s {} &lt; {}\n\
             sha256sum -c {}</pre>\
             <p>The <code>{}</code> of this run (<code>sha256sum -c</code> reads these lines):</p>\
             <pre class=\"sums\">{}</pre>",
            text(&signer),
            sshsig::IDENTITY,
            sshsig::NAMESPACE,
            checksums::SIG_FILE_NAME,
            checksums::FILE_NAME,
            checksums::FILE_NAME,
            checksums::FILE_NAME,
            text(&sums)
        );
    }
    out.push_str(
        "<table class=\"outputs\"><thead><tr><th>Stream</th><th>Output</th><th class=\"n\">Rows</th>\
         <th class=\"n\">Bytes</th><th>Digest</th></tr></thead><tbody>",
    );
    for s in &r.streams {
        for o in &s.outputs {
            let bytes = o.bytes.map(|b| b.to_string()).unwrap_or_default();
            let digest = o.digest.clone().unwrap_or_default();
            let _ =
                write!(
                out,
                "<tr class=\"output\" data-output-of=\"{}\" data-kind=\"{}\" data-location=\"{}\" \
                 data-rows=\"{}\" data-bytes=\"{}\" data-digest=\"{}\"><td>{}</td><td>{} {}</td>\
                 <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"digest\">{}</td></tr>",
                text(&s.stream),
                text(&o.kind),
                text(&o.location),
                o.rows,
                bytes,
                text(&digest),
                text(&s.stream),
                text(&o.kind),
                text(&o.location),
                group(o.rows),
                o.bytes.map(group).unwrap_or_else(|| "—".into()),
                if digest.is_empty() { "—".into() } else { text(&digest) },
            );
        }
    }
    out.push_str("</tbody></table></section>");
    out
}
