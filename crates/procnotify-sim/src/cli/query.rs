//! The user-mode query as a session issues it: a `query` line, or
//! `--query-after-each`. The loaded driver answers `IOCTL_PROCNOTIFY_QUERY`
//! into an output buffer with [`crate::query::answer`] (the Windows
//! driver's mapping of its table to rows, then `abi::encode`); the bytes it
//! wrote are decoded with `abi::decode` and printed with `abi::format`'s
//! [`ReplyText`] and [`ReplyJson`], the code `procnotify-ctl table` prints
//! a reply with. So what a session shows is what `procnotify-ctl` would
//! print for that driver, and every query goes through the ABI.

use std::fmt::Write as _;
use std::format;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

use procnotify_core::NtStatus;
use procnotify_core::abi::format::{ReplyJson, ReplyText};
use procnotify_core::abi::{self, DecodeError, MAX_REPLY_SIZE, Reply};

use super::values::status_words;
use crate::os::SimDriver;

/// The largest output buffer a `query bytes=N` line may ask for: 65,600
/// bytes, the reply of a table of 2048 processors, which always holds the
/// whole table (a larger buffer is answered the same way).
pub const MAX_QUERY_BYTES: u32 = MAX_REPLY_SIZE as u32;

const _: () = assert!(MAX_QUERY_BYTES as usize == MAX_REPLY_SIZE);

/// One query and what it got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryView {
    /// Where it was asked: `line 7`, `--add 4`, `end of session`.
    pub at: String,
    /// The step `--query-after-each` asked it after (`load`, `hot-add`,
    /// `unload`, ...); `None` for a `query` line.
    pub after: Option<&'static str>,
    /// The driver's answer; `None` when procnotify is not loaded (no
    /// device: `procnotify-ctl` would exit 3).
    pub answer: Option<Answer>,
}

/// The driver's answer to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The output buffer's length.
    pub buffer: u32,
    /// Whether the length is the one `procnotify-ctl` asks with (64 + 32 ×
    /// the capacity, after its 64-byte probe) rather than a `bytes=N`.
    pub sized_as_ctl: bool,
    /// The table's capacity.
    pub capacity: u32,
    /// The status the request was completed with.
    pub status: NtStatus,
    /// The bytes written (`Information`), as the caller receives them.
    pub bytes: Vec<u8>,
}

impl QueryView {
    /// Asks `driver` (if loaded) with an output buffer of `len` bytes, or
    /// by default of the size `procnotify-ctl` asks with. `len` is at most
    /// [`MAX_QUERY_BYTES`] (the parser's check; a larger one is cut to it).
    pub fn ask(driver: Option<&SimDriver>, len: Option<u32>, at: String, after: Option<&'static str>) -> Self {
        let answer = driver.map(|driver| {
            let capacity = driver.context().table().capacity();
            let buffer = len.unwrap_or_else(|| abi::reply_size(capacity)).min(MAX_QUERY_BYTES);
            let mut out = vec![0; buffer as usize];
            let encoded = crate::query::answer(driver, &mut out);
            out.truncate(encoded.written);
            Answer { buffer, sized_as_ctl: len.is_none(), capacity, status: encoded.status, bytes: out }
        });
        Self { at, after, answer }
    }

    /// The decoded reply; `None` when nothing was written (not loaded, or
    /// `STATUS_BUFFER_TOO_SMALL`).
    pub fn reply(&self) -> Option<Result<Reply<'_>, DecodeError>> {
        let answer = self.answer.as_ref()?;
        (!answer.bytes.is_empty()).then(|| abi::decode(&answer.bytes))
    }

    /// The first line: what was asked and what came back.
    pub fn heading(&self) -> String {
        let what = match self.after {
            Some(step) => format!("== query after {step} ({})", self.at),
            None => format!("== query ({})", self.at),
        };
        let Some(answer) = &self.answer else {
            return format!(
                "{what}: procnotify is not loaded: no device interface, so `procnotify-ctl table` would exit 3 \
                 (not installed)"
            );
        };
        let sized = if answer.sized_as_ctl {
            format!(" (64 + 32 × capacity {}, as procnotify-ctl asks after its 64-byte probe)", answer.capacity)
        } else {
            String::new()
        };
        let rows = match self.reply() {
            None => String::from("no reply"),
            Some(Ok(reply)) => {
                format!(
                    "the header and {} of the table's {} rows",
                    reply.header.rows_written, reply.header.rows_in_table
                )
            }
            Some(Err(_)) => String::from("a reply that does not decode"),
        };
        format!(
            "{what}: IOCTL_PROCNOTIFY_QUERY into {} bytes{sized}: {}, {} bytes written: {rows}",
            answer.buffer,
            status_words(answer.status),
            answer.bytes.len()
        )
    }

    /// The text output: the heading, then what `procnotify-ctl table`
    /// prints for the bytes written. Every line ends with `\n`.
    pub fn text(&self) -> String {
        let mut text = self.heading();
        text.push('\n');
        match self.reply() {
            None => {}
            Some(Ok(reply)) => {
                let _ = write!(text, "{}", ReplyText(&reply));
            }
            Some(Err(error)) => {
                let _ = writeln!(text, "procnotify-ctl: the driver's reply does not decode: {error}");
            }
        }
        text
    }

    /// Lines [`text`](Self::text) prints, without formatting them.
    pub fn lines(&self) -> u64 {
        1 + match self.reply() {
            None => 0,
            Some(Ok(reply)) => ReplyText(&reply).lines(),
            Some(Err(_)) => 1,
        }
    }

    /// The decoded reply as `procnotify-ctl table --json` prints it, without
    /// its `schema` member; `None` when there is none.
    pub fn reply_json(&self) -> Option<String> {
        match self.reply()? {
            Ok(reply) => Some(ReplyJson { reply: &reply, schema: None }.to_string()),
            Err(_) => None,
        }
    }

    /// Why the reply does not decode, if it does not (a bug of the encoder
    /// or the decoder: the simulator reports it as a violation).
    pub fn decode_error(&self) -> Option<String> {
        match self.reply()? {
            Ok(_) => None,
            Err(error) => Some(error.to_string()),
        }
    }
}
