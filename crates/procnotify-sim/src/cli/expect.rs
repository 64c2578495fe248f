//! `expect` lines: each is checked when reached; one not met is named on
//! stderr and in the trace, and the session exits with code 5.

use std::format;
use std::string::{String, ToString};

use procnotify_core::SlotState;

use super::machine::{Machine, SUMMARY_LINE};
use super::step::{AddResult, Expect, Origin, SlotExpect};
use super::values::status_words;
use crate::kernel::HotAdd;

impl Machine<'_> {
    pub(super) fn expect(&mut self, origin: &Origin, expect: &Expect) {
        self.summary.expectations.checked += 1;
        match self.check(expect) {
            Ok(()) => self.note(&format!("== expect {expect}: met")),
            Err(got) => {
                let message = format!("expect {expect}: not met: {got}");
                self.note(&format!("== {message}"));
                self.complain(origin, &message);
                let message = format!("{origin}: {message}");
                self.sink.reserve(SUMMARY_LINE + message.len() as u64);
                self.summary.expectations.unmet.push(message);
            }
        }
    }

    fn check(&mut self, expect: &Expect) -> Result<(), String> {
        match expect {
            Expect::LoadOk => match self.last.load {
                Some(Ok(())) => Ok(()),
                Some(Err(status)) => Err(format!("the load failed with {}", status_words(status))),
                None => Err("nothing was loaded yet".into()),
            },
            Expect::LoadFailed(want) => match self.last.load {
                Some(Err(status)) if want.is_none_or(|want| want == status) => {
                    self.unexpected_load_failure = false;
                    Ok(())
                }
                Some(Err(status)) => Err(format!("the load failed with {}", status_words(status))),
                Some(Ok(())) => Err("the load succeeded".into()),
                None => Err("nothing was loaded yet".into()),
            },
            Expect::HotAdd(want) => check_hot_add(self.last.hot_add, want),
            Expect::Outcome(want) => match &self.last.outcome {
                Some(got)
                    if got == want || got.strip_prefix(want.as_str()).is_some_and(|rest| rest.starts_with('(')) =>
                {
                    Ok(())
                }
                Some(got) => Err(format!("the last outcome was {got}")),
                None => Err("procnotify has handled no notification".into()),
            },
            Expect::Veto(want) => {
                let got = self.last_veto();
                if got == *want {
                    Ok(())
                } else {
                    Err(got.map_or_else(
                        || "no veto".to_string(),
                        |status| format!("vetoed with {}", status_words(status)),
                    ))
                }
            }
            Expect::Slot { index, state, counters } => self.check_slot(*index, *state, counters),
            Expect::Stats(counters) => {
                let Some(driver) = &self.driver else { return Err("procnotify is not loaded".into()) };
                let stats = driver.context().stats();
                compare(counters, |name| match name {
                    "notifications" => Some(u64::from(stats.notifications)),
                    "vetoes" => Some(u64::from(stats.vetoes)),
                    "anomalies" => Some(u64::from(stats.anomalies)),
                    _ => None,
                })
            }
            Expect::Processors(want) => match self.kernel.processor_count() {
                got if got == *want => Ok(()),
                got => Err(format!("{got} processors")),
            },
            Expect::Read(want) => match self.last.read {
                Some(got) if got == *want => Ok(()),
                Some(got) => Err(format!("the last read {}", if got { "found a slot" } else { "found none" })),
                None => Err("nothing was read yet".into()),
            },
        }
    }

    fn check_slot(&self, index: u32, want: SlotExpect, counters: &[(String, u64)]) -> Result<(), String> {
        let Some(driver) = &self.driver else { return Err("procnotify is not loaded".into()) };
        let Some(slot) = driver.context().table().get(index) else {
            return if want == SlotExpect::Absent { Ok(()) } else { Err("no slot".into()) };
        };
        let got = match slot.state() {
            SlotState::Vacant => SlotExpect::Vacant,
            SlotState::Starting => SlotExpect::Starting,
            SlotState::Online => SlotExpect::Online,
        };
        if got != want {
            return Err(format!("slot {index} is {}", got.name()));
        }
        let c = slot.value().counters();
        compare(counters, |name| match name {
            "starts" => Some(u64::from(c.starts)),
            "completes" => Some(u64::from(c.completes)),
            "failures" => Some(u64::from(c.failures)),
            "visits" => Some(c.visits),
            _ => None,
        })
    }
}

fn compare(wanted: &[(String, u64)], get: impl Fn(&str) -> Option<u64>) -> Result<(), String> {
    for (name, want) in wanted {
        match get(name) {
            Some(got) if got == *want => {}
            Some(got) => return Err(format!("{name}={got}")),
            None => return Err(format!("there is no counter `{name}`")),
        }
    }
    Ok(())
}

fn check_hot_add(got: Option<HotAdd>, want: &AddResult) -> Result<(), String> {
    let Some(got) = got else { return Err("no hot-add yet".into()) };
    let met = match (got, want) {
        (HotAdd::Added(index), AddResult::Added(at)) => at.is_none_or(|at| at == index),
        (HotAdd::Failed { index, status }, AddResult::Failed(at, with)) => {
            at.is_none_or(|at| at == index) && with.is_none_or(|with| with == status)
        }
        (HotAdd::Refused(refusal), AddResult::Refused(reason)) => {
            reason.as_deref().is_none_or(|reason| reason == refusal.token())
        }
        _ => false,
    };
    if met {
        return Ok(());
    }
    Err(match got {
        HotAdd::Added(index) => format!("processor {index} was added"),
        HotAdd::Failed { index, status } => format!("the add of {index} failed with {}", status_words(status)),
        HotAdd::Refused(refusal) => format!("the hot-add was refused ({})", refusal.token()),
    })
}
