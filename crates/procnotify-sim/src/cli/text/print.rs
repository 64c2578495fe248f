//! Printing a [`Script`] back in the script text format, so that
//! `parse(print(s)) == s`.

use std::fmt;

use procnotify_core::{NtStatus, ProcNumber};

use crate::cli::step::{Reported, Script, Step};
use crate::cli::values::{state_text, status_text};

impl fmt::Display for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let setup = &self.setup;
        writeln!(f, "boot {}\nmax {}", setup.boot, setup.max)?;
        match setup.reported {
            Reported::Max => {}
            Reported::Half => writeln!(f, "reported-max half")?,
            Reported::Huge => writeln!(f, "reported-max huge")?,
            Reported::Value(n) => writeln!(f, "reported-max {n}")?,
        }
        if !setup.dynamic_partitioning {
            writeln!(f, "dynamic-partitioning off")?;
        }
        for (_, step) in &self.steps {
            writeln!(f, "{step}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OtherDriver { name, vetoes } => {
                write!(f, "other-driver {name}")?;
                for (index, status) in vetoes {
                    write!(f, " veto {index} {}", status_text(*status))?;
                }
                Ok(())
            }
            Self::Fault(fault) => write!(f, "fault {fault}"),
            Self::Load(fault) => write!(f, "load{fault}"),
            Self::Reload(fault) => write!(f, "reload{fault}"),
            Self::Unload => f.write_str("unload"),
            Self::Toggle => f.write_str("toggle"),
            Self::HotAdd { count, fault } => {
                f.write_str("hot-add")?;
                if *count != 1 {
                    write!(f, " {count}")?;
                }
                write!(f, "{fault}")
            }
            Self::Notify(change) => {
                write!(f, "notify {} {}", state_text(change.state), change.nt_number)?;
                if change.status != NtStatus::SUCCESS {
                    write!(f, " status {}", status_text(change.status))?;
                }
                if change.proc_number != ProcNumber::dense(change.nt_number) {
                    write!(f, " group {} number {}", change.proc_number.group, change.proc_number.number)?;
                }
                Ok(())
            }
            Self::Read(processor) => write!(f, "read {processor}"),
            Self::ReadAll => f.write_str("read-all"),
            Self::Table => f.write_str("table"),
            Self::Query { bytes: None } => f.write_str("query"),
            Self::Query { bytes: Some(bytes) } => write!(f, "query bytes={bytes}"),
            Self::Expect(expect) => write!(f, "expect {expect}"),
        }
    }
}
