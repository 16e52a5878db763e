#!/usr/bin/env bash
# Makes the fixed OpenPGP keys of the `pgp_decrypt` fuzz target (fuzz/pgp/*.asc: test keys,
# they protect nothing) and its kept inputs (engine/tests/fuzz_regressions/pgp_decrypt/),
# with GnuPG, the independent writer. Run from the repository root: fuzz/pgp/make_seeds.sh
# (needs gpg: apt-get install gnupg). Running it again makes new keys and new inputs.
set -euo pipefail
out=engine/tests/fuzz_regressions/pgp_decrypt
keys=fuzz/pgp
mkdir -p "$out"
home=$(mktemp -d); client=$(mktemp -d); tmp=$(mktemp -d)
trap 'gpgconf --homedir "$home" --kill gpg-agent; gpgconf --homedir "$client" --kill gpg-agent; rm -rf "$home" "$client" "$tmp"' EXIT
g() { gpg --homedir "$home" --batch --yes --pinentry-mode loopback --passphrase '' --trust-model always "$@"; }
c() { gpg --homedir "$client" --batch --yes --pinentry-mode loopback --passphrase '' --trust-model always "$@"; }
g --quick-gen-key fuzz-ferry@example.com future-default default never
c --quick-gen-key fuzz-client@example.com future-default default never
g --armor --export-secret-keys fuzz-ferry@example.com > "$keys/ferry.sec.asc"
c --armor --export fuzz-client@example.com > "$keys/client.pub.asc"
g --armor --export fuzz-ferry@example.com > "$tmp/ferry.pub.asc"
c --import "$tmp/ferry.pub.asc"
printf 'id,name\n1,Zoë\n2,"a, b"\n' > "$tmp/rows.csv"
c -o "$out/ok-seed-signed.gpg" -r fuzz-ferry@example.com -u fuzz-client@example.com --sign --encrypt "$tmp/rows.csv"
c -o "$out/ok-seed-signed.asc" --armor -r fuzz-ferry@example.com -u fuzz-client@example.com --sign --encrypt "$tmp/rows.csv"
c -o "$out/ok-seed-uncompressed.gpg" -z 0 -r fuzz-ferry@example.com -u fuzz-client@example.com --sign --encrypt "$tmp/rows.csv"
c -o "$out/err-unsigned.gpg" -r fuzz-ferry@example.com --encrypt "$tmp/rows.csv"
c -o "$tmp/signed-only.gpg" --sign "$tmp/rows.csv" && cp "$tmp/signed-only.gpg" "$out/err-signed-not-encrypted.gpg"
c -o "$out/err-to-another-key.gpg" -r fuzz-client@example.com -u fuzz-client@example.com --sign --encrypt "$tmp/rows.csv"
c -o "$out/err-symmetric.gpg" --passphrase fuzz --symmetric "$tmp/rows.csv"
python3 - "$out" <<'PY'
import sys, os
out = sys.argv[1]
good = open(os.path.join(out, "ok-seed-uncompressed.gpg"), "rb").read()
bad = bytearray(good); bad[len(bad) // 2] ^= 0x01
open(os.path.join(out, "err-tampered.gpg"), "wb").write(bytes(bad))
open(os.path.join(out, "err-truncated.gpg"), "wb").write(good[: len(good) - 10])
open(os.path.join(out, "err-empty.gpg"), "wb").write(b"")
open(os.path.join(out, "err-not-pgp.gpg"), "wb").write(b"id,name\n1,a\n")
open(os.path.join(out, "err-armor-garbage.asc"), "wb").write(b"-----BEGIN PGP MESSAGE-----\n\n!!!!\n-----END PGP MESSAGE-----\n")
PY
echo "made $(ls "$out" | wc -l) inputs in $out"
