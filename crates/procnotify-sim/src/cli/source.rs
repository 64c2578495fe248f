//! Reading a script or crash file: from a path or, for `-`, standard
//! input; at most a given number of bytes; and, for scripts, decoded as
//! UTF-8 the way Windows editors and shells save text: a UTF-8 byte-order
//! mark is skipped, UTF-16 (what Windows PowerShell 5.1's `>` writes) is
//! named with the fix, and CRLF line endings are read as line endings (by
//! the parser's `str::lines`).

use std::format;
use std::io::Read;
use std::path::Path;
use std::string::{String, ToString};
use std::vec::Vec;

/// The UTF-8 byte-order mark.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// How to save a script as UTF-8, for the messages.
const SAVE_AS_UTF8: &str = "save it as UTF-8: in PowerShell pipe it to `Out-File -Encoding utf8 FILE` instead \
                            of `> FILE`, or use PowerShell 7, whose `>` writes UTF-8";

/// The name of `path` in messages.
pub fn name(path: &Path) -> String {
    if is_stdin(path) { String::from("standard input") } else { path.display().to_string() }
}

fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Reads `path` (or standard input from `stdin` for `-`), refusing more
/// than `limit` bytes.
///
/// # Errors
///
/// A message naming the file: it cannot be read, or it is too large.
pub fn read(path: &Path, stdin: &mut dyn Read, limit: u64) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let result = if is_stdin(path) {
        stdin.take(limit + 1).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|file| file.take(limit + 1).read_to_end(&mut bytes))
    };
    result.map_err(|e| format!("{}: {e}", name(path)))?;
    if bytes.len() as u64 > limit {
        return Err(format!("{}: larger than the limit of {limit} bytes", name(path)));
    }
    Ok(bytes)
}

/// Decodes a script's bytes as UTF-8 text, without a byte-order mark.
///
/// # Errors
///
/// A message naming the encoding found (UTF-16, or bytes that are not
/// UTF-8, with the line) and how to save the file as UTF-8.
pub fn utf8(name: &str, mut bytes: Vec<u8>) -> Result<String, String> {
    if let Some(endian) = utf16(&bytes) {
        return Err(format!("{name}: the file is UTF-16 ({endian}), not UTF-8; {SAVE_AS_UTF8}"));
    }
    if bytes.starts_with(UTF8_BOM) {
        bytes.drain(..UTF8_BOM.len());
    }
    String::from_utf8(bytes).map_err(|error| {
        let at = error.utf8_error().valid_up_to();
        let bytes = error.as_bytes();
        let line = 1 + bytes.iter().take(at).filter(|&&b| b == b'\n').count();
        let byte = bytes.get(at).copied().unwrap_or_default();
        format!("{name}: line {line}: not UTF-8 text (byte 0x{byte:02X}); {SAVE_AS_UTF8}")
    })
}

/// Whether `bytes` look like UTF-16: a byte-order mark, or (without one)
/// the zero bytes ASCII text has every other byte in UTF-16.
fn utf16(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0xFF, 0xFE, ..] => return Some("little-endian, with a byte-order mark"),
        [0xFE, 0xFF, ..] => return Some("big-endian, with a byte-order mark"),
        _ => {}
    }
    let head = bytes.get(..bytes.len().min(64) & !1)?;
    let pairs = head.len() / 2;
    if pairs < 2 {
        return None;
    }
    let zeros_at = |offset: usize| head.iter().skip(offset).step_by(2).filter(|&&b| b == 0).count();
    // ASCII text in UTF-16: every high byte is zero and no low byte is.
    if zeros_at(1) == pairs && zeros_at(0) == 0 {
        Some("little-endian")
    } else if zeros_at(0) == pairs && zeros_at(1) == 0 {
        Some("big-endian")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(text: &str, bom: bool) -> Vec<u8> {
        let mut bytes = if bom { std::vec![0xFF, 0xFE] } else { Vec::new() };
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        bytes
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        assert_eq!(utf8("s", b"\xEF\xBB\xBFboot 2\r\nload\r\n".to_vec()).unwrap(), "boot 2\r\nload\r\n");
        assert_eq!(utf8("s", b"boot 2\n".to_vec()).unwrap(), "boot 2\n");
    }

    #[test]
    fn utf16_is_named_with_or_without_a_mark() {
        for (bytes, endian) in [
            (utf16le("boot 2\r\nload\r\n", true), "little-endian, with a byte-order mark"),
            (utf16le("boot 2\r\nload\r\n", false), "little-endian"),
            ([0xFE, 0xFF, 0, b'b'].to_vec(), "big-endian, with a byte-order mark"),
            ([0, b'b', 0, b'o', 0, b'o', 0, b't'].to_vec(), "big-endian"),
        ] {
            let message = utf8("s.txt", bytes).unwrap_err();
            assert!(message.starts_with(&format!("s.txt: the file is UTF-16 ({endian}), not UTF-8;")), "{message}");
            assert!(message.contains("save it as UTF-8"), "{message}");
        }
    }

    #[test]
    fn other_bytes_name_their_line() {
        let message = utf8("s", b"boot 2\nload\n\xFF\n".to_vec()).unwrap_err();
        assert!(message.starts_with("s: line 3: not UTF-8 text (byte 0xFF); save it as UTF-8"), "{message}");
        // Binary with zero bytes here and there is not UTF-16.
        assert_eq!(utf16(&[0, 0, 0, 0, 1, 0, 0, 0]), None);
        assert_eq!(utf16(b"a"), None);
    }
}
