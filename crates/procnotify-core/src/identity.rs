//! [`Identity`]: who the driver built on the engine is — the [`Name`] its
//! log lines carry and the [`PoolTag`] its memory is allocated under.
//!
//! A driver names itself once, on a zero-sized type, and hands that type to
//! its [`Os`](crate::os::Os) (`Os::Identity`): the engine's trace lines are
//! `NAME: ...`, and the Windows allocator passes `POOL_TAG` to
//! `ExAllocatePool2` / `ExFreePoolWithTag`, so `!poolused 2 Tag`, PoolMon and
//! Driver Verifier's leak report tell two drivers built on the engine apart.
//!
//! ```
//! use procnotify_core::identity::{Identity, Name, PoolTag};
//! use procnotify_core::{name, pool_tag};
//!
//! /// A filter driver's identity.
//! pub struct Contoso;
//!
//! impl Identity for Contoso {
//!     const NAME: Name = name!("contoso_filter");
//!     const POOL_TAG: PoolTag = pool_tag!(b"CnFl");
//! }
//!
//! assert_eq!(Contoso::NAME.as_str(), "contoso_filter");
//! assert_eq!(Contoso::POOL_TAG.bytes(), *b"CnFl");
//! ```
//!
//! # Why a type, with constants
//!
//! - **No run-time cost.** The identity is a type parameter: the name and the
//!   tag are constants folded into each call (`ExAllocatePool2(.., 'yfNP')`
//!   is an immediate operand); nothing is stored, copied or looked up.
//! - **Checked when the driver is compiled.** [`Name`] and [`PoolTag`] can
//!   only hold valid values: their constructors ([`Name::new`],
//!   [`PoolTag::new`]) return an error for anything else, and the [`name!`](crate::name!) and
//!   [`pool_tag!`](crate::pool_tag!) macros evaluate them in a `const` item, so a bad name or
//!   tag is a build error (`cargo check` included), never a silent odd tag
//!   in PoolMon or a panic at run time:
//!
//!   ```compile_fail
//!   use procnotify_core::identity::PoolTag;
//!   const TAG: PoolTag = procnotify_core::pool_tag!(b"PN\0y"); // error: not printable
//!   ```
//!
//! - **Cannot be forgotten.** `Os::Identity` has no default: an OS layer
//!   that does not say whose it is does not compile, and every engine line
//!   and every allocation go through it.
//!
//! This module is a leaf, like [`values`](crate::values): it imports nothing
//! else of the engine.

use core::fmt;

/// Who a driver built on the engine is. Implement it on a zero-sized type
/// and give that type to the OS layer (`Os::Identity`).
pub trait Identity: 'static {
    /// The name the engine's log lines start with (`NAME: add-start ...`).
    const NAME: Name;
    /// The tag every pool allocation of the engine is made under.
    const POOL_TAG: PoolTag;
}

/// The most bytes a [`Name`] may have. The engine's longest line is about
/// 140 bytes after the name and the Windows layer formats lines into 200
/// bytes, so a name of this length never cuts a line.
pub const MAX_NAME_LEN: usize = 32;

/// Why a name or a pool tag was refused. [`IdentityError::message`] is what
/// the [`name!`](crate::name!) and [`pool_tag!`](crate::pool_tag!) macros print when they refuse one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentityError {
    /// The name is empty.
    EmptyName,
    /// The name is longer than [`MAX_NAME_LEN`] bytes.
    NameTooLong,
    /// A byte of the name is not an ASCII letter, digit, `_`, `-` or `.`.
    NameCharacter,
    /// A byte of the tag is outside printable ASCII (`0x20 ..= 0x7E`).
    TagNotPrintable,
    /// The tag starts with a space, or a space is followed by something else
    /// than spaces: only trailing padding (`b"Irp "`) is allowed.
    TagSpace,
    /// The tag holds `*` or `?`, the wildcards of `!poolused`, `!poolfind`
    /// and PoolMon: it could not be searched for on its own.
    TagWildcard,
}

impl IdentityError {
    /// The reason, as one sentence.
    #[must_use]
    pub const fn message(self) -> &'static str {
        match self {
            Self::EmptyName => "the name is empty",
            Self::NameTooLong => "the name is longer than 32 bytes",
            Self::NameCharacter => "the name may hold only ASCII letters, digits, '_', '-' and '.'",
            Self::TagNotPrintable => "a pool tag is four printable ASCII bytes (0x20 ..= 0x7E)",
            Self::TagSpace => "a pool tag may end in spaces but not start with one or hold one inside",
            Self::TagWildcard => "a pool tag must not hold '*' or '?', the wildcards of !poolused and PoolMon",
        }
    }
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// A driver's name in log lines: 1 to [`MAX_NAME_LEN`] ASCII letters,
/// digits, `_`, `-` or `.`. No whitespace, so a line splits into tokens
/// the same way whatever the name; no `%` or control bytes, so a name is
/// never read as a format or breaks a debugger's line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Name(&'static str);

impl Name {
    /// `name` if it is valid. Usually written as [`name!`](crate::name!), which makes an
    /// invalid name a build error.
    ///
    /// # Errors
    ///
    /// What is wrong with it.
    pub const fn new(name: &'static str) -> Result<Self, IdentityError> {
        let bytes = name.as_bytes();
        if bytes.is_empty() {
            return Err(IdentityError::EmptyName);
        }
        if bytes.len() > MAX_NAME_LEN {
            return Err(IdentityError::NameTooLong);
        }
        let mut rest = bytes;
        while let [byte, tail @ ..] = rest {
            if !(byte.is_ascii_alphanumeric() || *byte == b'_' || *byte == b'-' || *byte == b'.') {
                return Err(IdentityError::NameCharacter);
            }
            rest = tail;
        }
        Ok(Self(name))
    }

    /// The name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A pool tag: four printable ASCII bytes, as the WDK asks
/// (`ExAllocatePool2`'s `Tag`: "each ASCII character in the tag must be a
/// value in the range 0x20 (space) to 0x7E (tilde)").
///
/// Stricter than the WDK in two ways, both so that the tag can be searched
/// for: a space is allowed only as trailing padding (`b"Irp "`, as Windows'
/// own short tags; a leading or inner space would not survive a debugger
/// command line), and `*` and `?` are refused (the wildcards of
/// `!poolused`, `!poolfind` and PoolMon).
///
/// Written in reading order: `pool_tag!(b"PNfy")` shows as `PNfy` in WinDbg
/// and PoolMon ([`PoolTag::value`] puts the first byte in the low byte, which
/// is what the C literal `'yfNP'` does).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PoolTag([u8; 4]);

impl PoolTag {
    /// `tag` if it is valid. Usually written as [`pool_tag!`](crate::pool_tag!), which makes an
    /// invalid tag a build error.
    ///
    /// # Errors
    ///
    /// What is wrong with it.
    pub const fn new(tag: &[u8; 4]) -> Result<Self, IdentityError> {
        if tag[0] == b' ' {
            return Err(IdentityError::TagSpace);
        }
        let mut rest: &[u8] = tag;
        let mut padding = false;
        while let [byte, tail @ ..] = rest {
            let byte = *byte;
            if byte < 0x20 || byte > 0x7E {
                return Err(IdentityError::TagNotPrintable);
            }
            if byte == b'*' || byte == b'?' {
                return Err(IdentityError::TagWildcard);
            }
            if byte == b' ' {
                padding = true;
            } else if padding {
                return Err(IdentityError::TagSpace);
            }
            rest = tail;
        }
        Ok(Self(*tag))
    }

    /// The four bytes, in reading order.
    #[must_use]
    pub const fn bytes(self) -> [u8; 4] {
        self.0
    }

    /// The `ULONG` the pool routines take: the first byte in the low byte.
    #[must_use]
    pub const fn value(self) -> u32 {
        u32::from_le_bytes(self.0)
    }

    /// The tag as text (always ASCII).
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Printable ASCII by construction, so this never fails.
        core::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Debug for PoolTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PoolTag({:?})", self.as_str())
    }
}

impl fmt::Display for PoolTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A [`Name`], checked when the crate is compiled: an invalid name is a
/// build error (the check runs in a `const` item, so it never reaches run
/// time).
///
/// ```
/// const NAME: procnotify_core::identity::Name = procnotify_core::name!("percpu_stats");
/// assert_eq!(NAME.as_str(), "percpu_stats");
/// ```
///
/// ```compile_fail
/// const NAME: procnotify_core::identity::Name = procnotify_core::name!("my driver"); // a space
/// ```
#[macro_export]
macro_rules! name {
    ($name:expr $(,)?) => {{
        // Evaluated by the compiler: the panic is a compile-time error
        // message, never code in the driver.
        #[allow(clippy::panic)]
        const NAME: $crate::identity::Name = match $crate::identity::Name::new($name) {
            ::core::result::Result::Ok(name) => name,
            ::core::result::Result::Err(error) => ::core::panic!("{}", error.message()),
        };
        NAME
    }};
}

/// A [`PoolTag`] from four bytes in reading order, checked when the crate is
/// compiled: an invalid tag is a build error (the check runs in a `const`
/// item, so it never reaches run time).
///
/// ```
/// const TAG: procnotify_core::identity::PoolTag = procnotify_core::pool_tag!(b"PNfy");
/// assert_eq!(TAG.value(), u32::from_le_bytes(*b"PNfy"));
/// ```
///
/// ```compile_fail
/// const TAG: procnotify_core::identity::PoolTag = procnotify_core::pool_tag!(b"P*fy"); // a wildcard
/// ```
#[macro_export]
macro_rules! pool_tag {
    ($tag:expr $(,)?) => {{
        // Evaluated by the compiler: the panic is a compile-time error
        // message, never code in the driver.
        #[allow(clippy::panic)]
        const TAG: $crate::identity::PoolTag = match $crate::identity::PoolTag::new($tag) {
            ::core::result::Result::Ok(tag) => tag,
            ::core::result::Result::Err(error) => ::core::panic!("{}", error.message()),
        };
        TAG
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name of exactly `MAX_NAME_LEN` bytes.
    const LONGEST: &str = "abcdefghijklmnopqrstuvwxyz012345";

    #[test]
    fn names_are_checked() {
        assert_eq!(Name::new("procnotify").map(Name::as_str), Ok("procnotify"));
        assert_eq!(Name::new("a.b-c_9").map(Name::as_str), Ok("a.b-c_9"));
        assert_eq!(Name::new(""), Err(IdentityError::EmptyName));
        assert_eq!(LONGEST.len(), MAX_NAME_LEN);
        assert!(Name::new(LONGEST).is_ok());
        assert_eq!(Name::new(concat!("abcdefghijklmnopqrstuvwxyz012345", "6")), Err(IdentityError::NameTooLong));
        for bad in ["my driver", "tab\t", "100%", "né", "a:b", "line\n"] {
            assert_eq!(Name::new(bad), Err(IdentityError::NameCharacter), "{bad:?}");
        }
    }

    #[test]
    fn tags_are_checked() {
        assert_eq!(PoolTag::new(b"PNfy").map(PoolTag::value), Ok(u32::from_le_bytes(*b"PNfy")));
        assert_eq!(PoolTag::new(b"Irp ").map(PoolTag::bytes), Ok(*b"Irp "));
        assert!(PoolTag::new(b"A   ").is_ok());
        assert_eq!(PoolTag::new(b" Irp"), Err(IdentityError::TagSpace));
        assert_eq!(PoolTag::new(b"I rp"), Err(IdentityError::TagSpace));
        assert_eq!(PoolTag::new(b"    "), Err(IdentityError::TagSpace));
        assert_eq!(PoolTag::new(b"PN\0y"), Err(IdentityError::TagNotPrintable));
        assert_eq!(PoolTag::new(b"PN\x7Fy"), Err(IdentityError::TagNotPrintable));
        assert_eq!(PoolTag::new(&[b'P', b'N', 0xE9, b'y']), Err(IdentityError::TagNotPrintable));
        assert_eq!(PoolTag::new(b"PN*y"), Err(IdentityError::TagWildcard));
        assert_eq!(PoolTag::new(b"PN?y"), Err(IdentityError::TagWildcard));
        assert_eq!(std::format!("{}", pool_tag!(b"PNfy")), "PNfy");
    }

    #[test]
    fn macros_give_the_checked_values() {
        assert_eq!(name!("percpu_stats").as_str(), "percpu_stats");
        assert_eq!(pool_tag!(b"PcSt").bytes(), *b"PcSt");
    }
}
