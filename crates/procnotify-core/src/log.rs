//! Formatting a log line without an allocator: [`FixedBuf`], a fixed-size,
//! NUL-terminated buffer that implements [`core::fmt::Write`].
//!
//! The Windows layer formats every [`crate::os::Os::log`] line into a
//! `FixedBuf` on the stack and hands it to `DbgPrintEx` as the argument of a
//! constant `"%s\n"` format, never as the format itself. Portable, so its
//! behaviour is tested on any host:
//!
//! - it never allocates and never panics;
//! - it always keeps one byte for the terminating NUL;
//! - a line that does not fit is cut at a UTF-8 character boundary, and once
//!   it has been cut nothing more is appended, so the text is always a prefix
//!   of what was written.

use core::ffi::CStr;
use core::fmt;

/// A NUL-terminated text buffer of `N` bytes (at most `N - 1` of text).
pub struct FixedBuf<const N: usize> {
    /// `bytes[..len]` is the text, `bytes[len]` is NUL, the rest is NUL too.
    bytes: [u8; N],
    len: usize,
    truncated: bool,
}

impl<const N: usize> FixedBuf<N> {
    /// Refuses `N == 0` at compile time: there must be room for the NUL.
    const ROOM_FOR_NUL: () = assert!(N >= 1, "FixedBuf needs at least one byte for the NUL");

    /// Text bytes the buffer can hold.
    pub const CAPACITY: usize = N.saturating_sub(1);

    /// An empty buffer.
    #[must_use]
    pub const fn new() -> Self {
        let () = Self::ROOM_FOR_NUL;
        Self { bytes: [0; N], len: 0, truncated: false }
    }

    /// Formats `args` into a new buffer, cutting what does not fit.
    #[must_use]
    pub fn format(args: fmt::Arguments<'_>) -> Self {
        let mut buf = Self::new();
        // An error only means the text was cut; `truncated` records that.
        let _ = fmt::Write::write_fmt(&mut buf, args);
        buf
    }

    /// The text written so far (without the NUL).
    #[must_use]
    pub fn as_str(&self) -> &str {
        let text = self.bytes.get(..self.len).unwrap_or_default();
        // Only whole characters are ever copied in, so this cannot fail.
        core::str::from_utf8(text).unwrap_or_default()
    }

    /// The text and its terminating NUL.
    #[must_use]
    pub fn as_bytes_with_nul(&self) -> &[u8] {
        self.bytes.get(..=self.len).unwrap_or_default()
    }

    /// The text as a C string, for `DbgPrintEx("%s", ...)`. An interior NUL
    /// written by a formatter ends the C string early; nothing else changes.
    #[must_use]
    pub fn as_c_str(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.bytes).unwrap_or_default()
    }

    /// Bytes of text written.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no text has been written.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether some text did not fit and was dropped.
    #[must_use]
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

impl<const N: usize> Default for FixedBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Write for FixedBuf<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.truncated {
            // Appending after a cut would produce text that was never written.
            return Err(fmt::Error);
        }
        let room = Self::CAPACITY.saturating_sub(self.len);
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            // `take > 0` here: 0 is always a boundary.
            take = take.saturating_sub(1);
        }
        let end = self.len.saturating_add(take);
        let (Some(src), Some(dst)) = (s.as_bytes().get(..take), self.bytes.get_mut(self.len..end)) else {
            // Unreachable by the arithmetic above; refuse rather than panic.
            self.truncated = true;
            return Err(fmt::Error);
        };
        dst.copy_from_slice(src);
        self.len = end;
        // `bytes[len]` is still NUL: it was never written (end <= N - 1).
        if take < s.len() {
            self.truncated = true;
            return Err(fmt::Error);
        }
        Ok(())
    }
}

impl<const N: usize> fmt::Debug for FixedBuf<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The text stands for `bytes` and `len`.
        f.debug_struct("FixedBuf")
            .field("text", &self.as_str())
            .field("truncated", &self.truncated)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use core::fmt::Write as _;

    use super::FixedBuf;

    #[test]
    fn short_text_is_kept_and_nul_terminated() {
        let buf = FixedBuf::<16>::format(format_args!("index={} ok", 4));
        assert_eq!(buf.as_str(), "index=4 ok");
        assert_eq!(buf.as_bytes_with_nul(), b"index=4 ok\0");
        assert_eq!(buf.as_c_str().to_bytes(), b"index=4 ok");
        assert!(!buf.is_truncated());
    }

    #[test]
    fn long_text_is_cut_and_keeps_the_nul() {
        let buf = FixedBuf::<8>::format(format_args!("procnotify: {}", "add-start"));
        assert_eq!(buf.as_str(), "procnot");
        assert_eq!(buf.as_bytes_with_nul(), b"procnot\0");
        assert_eq!(buf.len(), FixedBuf::<8>::CAPACITY);
        assert!(buf.is_truncated());
    }

    #[test]
    fn exact_fit_is_not_truncated() {
        let mut buf = FixedBuf::<6>::new();
        assert!(buf.write_str("abcde").is_ok());
        assert_eq!(buf.as_bytes_with_nul(), b"abcde\0");
        assert!(!buf.is_truncated());
        // One more byte does not fit.
        assert!(buf.write_str("f").is_err());
        assert!(buf.is_truncated());
        assert_eq!(buf.as_str(), "abcde");
    }

    #[test]
    fn multibyte_character_is_never_split() {
        // "é" is two bytes; only one byte of room is left after "abcd".
        let buf = FixedBuf::<6>::format(format_args!("abcdé"));
        assert_eq!(buf.as_str(), "abcd");
        assert_eq!(buf.as_bytes_with_nul(), b"abcd\0");
        assert!(buf.is_truncated());

        // A three-byte character with two bytes of room.
        let buf = FixedBuf::<4>::format(format_args!("a€"));
        assert_eq!(buf.as_str(), "a");
        assert!(buf.is_truncated());
    }

    #[test]
    fn nothing_is_appended_after_a_cut() {
        let mut buf = FixedBuf::<5>::new();
        assert!(buf.write_str("ab").is_ok());
        assert!(buf.write_str("cdé").is_err()); // "cd" fits, "é" does not
        assert!(buf.write_str("x").is_err()); // would fit, but the text was cut
        assert_eq!(buf.as_str(), "abcd");
    }

    #[test]
    fn one_byte_buffer_holds_only_the_nul() {
        let buf = FixedBuf::<1>::format(format_args!("anything"));
        assert!(buf.is_empty());
        assert_eq!(buf.as_bytes_with_nul(), b"\0");
        assert!(buf.is_truncated());
    }

    #[test]
    fn interior_nul_ends_the_c_string() {
        let buf = FixedBuf::<16>::format(format_args!("a\0b"));
        assert_eq!(buf.as_str(), "a\0b");
        assert_eq!(buf.as_c_str().to_bytes(), b"a");
    }

    const PIECES: [&str; 3] = ["procnotify: add-", "start é€", "😀 status=0x00000000"];

    /// Formats [`PIECES`] into an `N`-byte buffer and checks the invariants:
    /// a prefix of the text, at most `N - 1` bytes, NUL-terminated.
    fn check_prefix<const N: usize>() {
        let [a, b, c] = PIECES;
        let text = std::format!("{a}{b}{c}");
        let buf = FixedBuf::<N>::format(format_args!("{a}{b}{c}"));
        assert!(text.starts_with(buf.as_str()), "N={N}: {:?}", buf.as_str());
        assert!(buf.len() < N);
        assert_eq!(buf.as_bytes_with_nul().last(), Some(&0));
        assert_eq!(buf.as_bytes_with_nul().len(), buf.len() + 1);
        assert_eq!(buf.is_truncated(), buf.len() < text.len());
        // The cut loses less than one character.
        assert!(buf.is_truncated() || buf.len() == text.len());
        assert!(!buf.is_truncated() || N - 1 - buf.len() < 4);
    }

    #[test]
    fn every_size_cuts_to_a_valid_prefix() {
        macro_rules! sizes {
            ($($n:literal)*) => { $(check_prefix::<$n>();)* };
        }
        sizes!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 20 23 24 25 26 27 28 29 30 31 32 33 34 40 47 48 49 64 200);
    }
}
