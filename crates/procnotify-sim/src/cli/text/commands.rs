//! The action lines of the script text format: `other-driver`, `fault`,
//! `load`, `reload`, `unload`, `toggle`, `hot-add`, `notify`, `read`,
//! `read-all`, `table`, `query` and `expect`, each parsed into a [`Step`].

use std::string::{String, ToString};
use std::vec::Vec;

use procnotify_core::{NtStatus, ProcNumber};

use crate::cli::query::MAX_QUERY_BYTES;
use crate::cli::step::{AddFault, Expect, Fault, LoadFault, Step};
use crate::cli::values::{parse_state, parse_status, parse_u32};
use crate::kernel::NotifyContext;

/// `key value` pairs after a command's fixed arguments.
fn pairs<'a>(args: &[&'a str]) -> Result<Vec<(&'a str, &'a str)>, String> {
    if !args.len().is_multiple_of(2) {
        return Err(format!("`{}` needs a value", args.last().copied().unwrap_or_default()));
    }
    Ok(args.chunks(2).map(|pair| (pair[0], pair[1])).collect())
}

pub(super) fn parse_step(command: &str, args: &[&str]) -> Result<Step, String> {
    let none = || if args.is_empty() { Ok(()) } else { Err(format!("`{command}` takes no arguments")) };
    Ok(match command {
        "other-driver" => parse_other(args)?,
        "fault" => Step::Fault(parse_fault(args)?),
        "load" => Step::Load(parse_load_fault(args)?),
        "reload" => Step::Reload(parse_load_fault(args)?),
        "unload" => none().map(|()| Step::Unload)?,
        "toggle" => none().map(|()| Step::Toggle)?,
        "hot-add" => parse_hot_add(args)?,
        "notify" => parse_notify(args)?,
        "read" => match args {
            [processor] => Step::Read(parse_u32(processor)?),
            _ => return Err("`read` takes a processor index".into()),
        },
        "read-all" => none().map(|()| Step::ReadAll)?,
        "table" => none().map(|()| Step::Table)?,
        "query" => parse_query(args)?,
        "expect" => Step::Expect(parse_expect(args)?),
        other => return Err(format!("unknown command `{other}` (see docs/simulator.md)")),
    })
}

fn parse_other(args: &[&str]) -> Result<Step, String> {
    let Some((&name, rest)) = args.split_first() else {
        return Err("`other-driver` needs a name".into());
    };
    if name == "procnotify" || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(format!("`{name}` is not a usable driver name (letters, digits, - and _)"));
    }
    let mut vetoes = Vec::new();
    let mut words = rest.iter();
    while let Some(&word) = words.next() {
        if word != "veto" {
            return Err(format!("`other-driver {name}` expects `veto INDEX [STATUS]`, not `{word}`"));
        }
        let index = parse_u32(words.next().ok_or("`veto` needs an index")?)?;
        let status = match words.clone().next() {
            Some(&next) if next != "veto" => {
                words.next();
                parse_failing(next)?
            }
            _ => NtStatus::ACCESS_DENIED,
        };
        vetoes.push((index, status));
    }
    Ok(Step::OtherDriver { name: name.to_string(), vetoes })
}

fn parse_failing(text: &str) -> Result<NtStatus, String> {
    let status = parse_status(text)?;
    if status.is_failure() { Ok(status) } else { Err(format!("{status} is not a failing status")) }
}

fn parse_fault(args: &[&str]) -> Result<Fault, String> {
    let number = |value: Option<&&str>| parse_u32(value.copied().ok_or("the fault needs a number")?);
    Ok(match args {
        ["fail-start", index, rest @ ..] => Fault::FailStart {
            index: parse_u32(index)?,
            status: match rest {
                [] => NtStatus::UNSUCCESSFUL,
                [status] => parse_failing(status)?,
                _ => return Err("`fault fail-start INDEX [STATUS]`".into()),
            },
        },
        ["fail-prepare", index] => Fault::FailPrepare { index: parse_u32(index)? },
        ["fail-init", index] => Fault::FailInit { index: parse_u32(index)? },
        ["fail-alloc", rest @ ..] if rest.len() == 1 => match number(rest.first())? {
            0 => return Err("allocations are counted from 1".into()),
            ordinal => Fault::FailAlloc { ordinal },
        },
        ["fail-register"] => Fault::FailRegister,
        _ => {
            return Err("`fault` is one of: fail-start INDEX [STATUS], fail-prepare INDEX, fail-init INDEX, \
                        fail-alloc N, fail-register"
                .into());
        }
    })
}

fn parse_load_fault(args: &[&str]) -> Result<LoadFault, String> {
    Ok(match args {
        [] => LoadFault::None,
        ["fail-alloc", n] => LoadFault::Alloc(parse_u32(n)?.max(1)),
        ["fail-init", k] => LoadFault::Init(parse_u32(k)?),
        ["fail-register"] => LoadFault::Register,
        _ => return Err("a load fault is one of: fail-alloc N, fail-init PROCESSOR, fail-register".into()),
    })
}

fn parse_hot_add(args: &[&str]) -> Result<Step, String> {
    let (count, rest) = match args.split_first() {
        Some((first, rest)) if first.starts_with(|c: char| c.is_ascii_digit()) => (parse_u32(first)?, rest),
        _ => (1, args),
    };
    let fault = match rest {
        [] => AddFault::None,
        ["veto", driver, rest @ ..] => AddFault::Veto {
            driver: (*driver).to_string(),
            status: match rest {
                [] => NtStatus::ACCESS_DENIED,
                [status] => parse_failing(status)?,
                _ => return Err("`hot-add veto DRIVER [STATUS]`".into()),
            },
        },
        ["fail-start"] => AddFault::FailStart(NtStatus::UNSUCCESSFUL),
        ["fail-start", status] => AddFault::FailStart(parse_failing(status)?),
        ["fail-alloc", n] => AddFault::FailAlloc(parse_u32(n)?.max(1)),
        ["fail-init"] => AddFault::FailInit,
        ["fail-prepare"] => AddFault::FailPrepare,
        _ => {
            return Err("a hot-add fault is one of: veto DRIVER [STATUS], fail-start [STATUS], fail-alloc N, \
                        fail-init, fail-prepare"
                .into());
        }
    };
    if count != 1 && fault != AddFault::None {
        return Err("a hot-add with a fault adds one processor".into());
    }
    Ok(Step::HotAdd { count, fault })
}

fn parse_query(args: &[&str]) -> Result<Step, String> {
    let bytes = match args {
        [] => None,
        [arg] => {
            let Some(value) = arg.strip_prefix("bytes=") else {
                return Err(format!("`query` takes `bytes=N` (the output buffer's length), not `{arg}`"));
            };
            let bytes = parse_u32(value)?;
            if bytes > MAX_QUERY_BYTES {
                return Err(format!(
                    "bytes={bytes}: at most {MAX_QUERY_BYTES} (a buffer of {MAX_QUERY_BYTES} bytes holds the whole \
                     table of 2048 processors)"
                ));
            }
            Some(bytes)
        }
        _ => return Err("`query [bytes=N]` takes one argument at most".into()),
    };
    Ok(Step::Query { bytes })
}

fn parse_notify(args: &[&str]) -> Result<Step, String> {
    let [state, index, rest @ ..] = args else {
        return Err("`notify STATE INDEX [status S] [group G] [number N]`".into());
    };
    let state = parse_state(state)?;
    let nt_number = parse_u32(index)?;
    let mut change =
        NotifyContext { state, nt_number, status: NtStatus::SUCCESS, proc_number: ProcNumber::dense(nt_number) };
    for (key, value) in pairs(rest)? {
        match key {
            "status" => change.status = parse_status(value)?,
            "group" => {
                change.proc_number.group =
                    u16::try_from(parse_u32(value)?).map_err(|_| format!("group {value} does not fit 16 bits"))?;
            }
            "number" => {
                change.proc_number.number =
                    u8::try_from(parse_u32(value)?).map_err(|_| format!("number {value} does not fit 8 bits"))?;
            }
            other => return Err(format!("`notify` has no `{other}`")),
        }
    }
    Ok(Step::Notify(change))
}

fn parse_expect(args: &[&str]) -> Result<Expect, String> {
    use crate::cli::step::{AddResult, SlotExpect};
    let counters = |rest: &[&str]| -> Result<Vec<(String, u64)>, String> {
        rest.iter()
            .map(|pair| {
                let (key, value) = pair.split_once('=').ok_or(format!("`{pair}`: expected NAME=VALUE"))?;
                Ok((key.to_string(), u64::from(parse_u32(value)?)))
            })
            .collect()
    };
    let optional_index = |rest: &[&str]| rest.first().map(|v| parse_u32(v)).transpose();
    Ok(match args {
        ["load", "ok"] => Expect::LoadOk,
        ["load", "failed"] => Expect::LoadFailed(None),
        ["load", "failed", status] => Expect::LoadFailed(Some(parse_status(status)?)),
        ["hot-add", "added", rest @ ..] if rest.len() <= 1 => Expect::HotAdd(AddResult::Added(optional_index(rest)?)),
        ["hot-add", "failed", rest @ ..] if rest.len() <= 2 => {
            Expect::HotAdd(AddResult::Failed(optional_index(rest)?, rest.get(1).map(|s| parse_status(s)).transpose()?))
        }
        ["hot-add", "refused", rest @ ..] if rest.len() <= 1 => {
            Expect::HotAdd(AddResult::Refused(rest.first().map(|s| (*s).to_string())))
        }
        ["outcome", outcome] => Expect::Outcome((*outcome).to_string()),
        ["veto", "none"] => Expect::Veto(None),
        ["veto", status] => Expect::Veto(Some(parse_status(status)?)),
        ["slot", index, state, rest @ ..] => {
            Expect::Slot { index: parse_u32(index)?, state: SlotExpect::parse(state)?, counters: counters(rest)? }
        }
        ["stats", rest @ ..] if !rest.is_empty() => Expect::Stats(counters(rest)?),
        ["processors", n] => Expect::Processors(parse_u32(n)?),
        ["read", "found"] => Expect::Read(true),
        ["read", "none"] => Expect::Read(false),
        _ => return Err("unknown expectation (see docs/simulator.md for the list)".into()),
    })
}
