//! Reading a buffer as full as the input allows.

use std::io::Read;

/// Reads into `buf` until it is full or `input` ends; returns how many bytes it holds
/// (fewer than `buf.len()` only at the end). A single `read` may return less than it
/// could, and `read_exact` fails at the end.
pub fn read_up_to<R: Read + ?Sized>(input: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gives at most `step` bytes a call.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let k = self.1.min(buf.len()).min(self.0.len());
            buf[..k].copy_from_slice(&self.0[..k]);
            self.0 = &self.0[k..];
            Ok(k)
        }
    }

    #[test]
    fn fills_across_short_reads_and_stops_at_the_end() {
        let mut input = Trickle(b"abcdefg", 2);
        let mut buf = [0u8; 5];
        assert_eq!(read_up_to(&mut input, &mut buf).unwrap(), 5);
        assert_eq!(&buf, b"abcde");
        assert_eq!(read_up_to(&mut input, &mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"fg");
        assert_eq!(read_up_to(&mut input, &mut buf).unwrap(), 0);
    }
}
