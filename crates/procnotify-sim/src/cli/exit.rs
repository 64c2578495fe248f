//! The exit codes of `simulate`.

/// How a session ended; see [`EXIT_CODES`](super::EXIT_CODES).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Exit {
    /// 0.
    #[default]
    Ok,
    /// 1: leak, double free, use after free.
    Leak,
    /// 2: bad command line or script, or a limit reached.
    Usage,
    /// 3: the load failed.
    LoadFailed,
    /// 4: a planned fault did not fire.
    FaultNotFired,
    /// 5: an expectation was not met.
    Expectation,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Leak => 1,
            Self::Usage => 2,
            Self::LoadFailed => 3,
            Self::FaultNotFired => 4,
            Self::Expectation => 5,
        }
    }

    /// What it means, in words.
    pub fn meaning(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Leak => "memory leaked or misused",
            Self::Usage => "usage error",
            Self::LoadFailed => "load failed",
            Self::FaultNotFired => "a planned fault did not fire",
            Self::Expectation => "an expectation was not met",
        }
    }
}

/// Written as its code.
impl serde::Serialize for Exit {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.code())
    }
}
