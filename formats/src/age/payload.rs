//! The age payload's STREAM construction: 64 KiB chunks, each sealed with
//! ChaCha20-Poly1305 under the nonce `11-byte big-endian counter ‖ last flag`, with a key
//! derived from the file key and the payload's 16-byte nonce. The chunks do not depend on
//! each other, so a batch of them is sealed or opened on several threads at once.
//!
//! `ring`'s ChaCha20-Poly1305 (SIMD assembly) does the work: it is several times faster
//! than the portable one the `age` crate uses, which is where Ferry's speed comes from.

use std::sync::OnceLock;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use ring::hkdf::{Salt, HKDF_SHA256};

/// Plaintext bytes per chunk (all but the last are full).
pub(super) const CHUNK: usize = 64 << 10;
/// Poly1305 tag after each chunk.
pub(super) const TAG: usize = 16;
/// Bytes of a full sealed chunk.
pub(super) const SEALED: usize = CHUNK + TAG;
/// Bytes of the payload nonce (the HKDF salt of the payload key).
pub(super) const NONCE: usize = 16;

/// Most threads a batch is spread over.
const MAX_THREADS: usize = 8;
/// Chunks each thread takes per batch at full speed (1 MiB): enough work to pay for a
/// thread's start, small enough to keep memory bounded.
const CHUNKS_PER_THREAD: usize = 16;

/// Threads a batch is spread over: the machine's cores, at most [`MAX_THREADS`].
pub(super) fn threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_THREADS)
    })
}

/// Chunks in a full batch: per stream, memory is two buffers of this many chunks
/// (2 MiB each with 2 cores, at most 8 MiB each).
pub(super) fn batch_chunks() -> usize {
    threads() * CHUNKS_PER_THREAD
}

/// The ChaCha20-Poly1305 key of a payload: HKDF-SHA256(file key, salt = nonce,
/// info = "payload").
pub(super) fn payload_key(file_key: &[u8], nonce: &[u8; NONCE]) -> LessSafeKey {
    let prk = Salt::new(HKDF_SHA256, nonce).extract(file_key);
    let okm = prk
        .expand(&[b"payload"], &CHACHA20_POLY1305)
        .expect("a 32-byte key is a valid HKDF output length");
    LessSafeKey::new(UnboundKey::from(okm))
}

/// The STREAM nonce of chunk `counter`.
fn nonce(counter: u64, last: bool) -> Nonce {
    let mut n = [0u8; aead::NONCE_LEN];
    n[3..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    Nonce::assume_unique_for_key(n)
}

/// Seals `plain` (at most [`CHUNK`] bytes) into `out` (`plain.len() + TAG` bytes).
pub(super) fn seal(key: &LessSafeKey, counter: u64, last: bool, plain: &[u8], out: &mut [u8]) {
    let (body, tag) = out.split_at_mut(plain.len());
    body.copy_from_slice(plain);
    let t = key
        .seal_in_place_separate_tag(nonce(counter, last), Aad::empty(), body)
        .expect("a 64 KiB chunk is far below ChaCha20's limit");
    tag.copy_from_slice(t.as_ref());
}

/// Opens the sealed chunk `sealed` into `slot` (at least as long); returns the plaintext
/// length, or `None` when it does not authenticate with this nonce.
pub(super) fn open(
    key: &LessSafeKey,
    counter: u64,
    last: bool,
    sealed: &[u8],
    slot: &mut [u8],
) -> Option<usize> {
    if sealed.len() < TAG {
        return None;
    }
    let slot = &mut slot[..sealed.len()];
    slot.copy_from_slice(sealed);
    key.open_in_place(nonce(counter, last), Aad::empty(), slot)
        .ok()
        .map(|p| p.len())
}

/// Runs `work` on every item, the items split into contiguous groups, one group per
/// thread (the calling thread takes the first); a single group runs on the caller.
pub(super) fn spread<T: Send>(items: Vec<T>, work: impl Fn(T) + Sync) {
    let groups = threads().min(items.len()).max(1);
    if groups == 1 {
        items.into_iter().for_each(work);
        return;
    }
    let per = items.len().div_ceil(groups);
    let mut items = items.into_iter();
    let mut split: Vec<Vec<T>> = Vec::with_capacity(groups);
    loop {
        let group: Vec<T> = items.by_ref().take(per).collect();
        if group.is_empty() {
            break;
        }
        split.push(group);
    }
    let work = &work;
    std::thread::scope(|s| {
        let mut split = split.into_iter();
        let first = split.next().unwrap_or_default();
        for group in split {
            s.spawn(move || group.into_iter().for_each(work));
        }
        first.into_iter().for_each(work);
    });
}
