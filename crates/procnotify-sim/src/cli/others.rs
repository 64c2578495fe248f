//! The other drivers of a session: each registers its own callback (without
//! `ADD_EXISTING`) and vetoes the `AddStart`s its plan names, so a session
//! can show procnotify coping with a veto it did not issue.
//!
//! [`Others`] owns them and knows nothing of the machine that runs the
//! session: the machine prints, this module registers, arms and counts.

use std::boxed::Box;
use std::format;
use std::string::{String, ToString};
use std::sync::Arc;
use std::vec::Vec;

use crate::locks::Mutex;
use procnotify_core::{NotifyState, NtStatus};

use super::step::Origin;
use super::values::status_words;
use crate::kernel::{Handle, SimKernel};

/// Another driver's veto plan, shared with its callback.
#[derive(Default)]
struct OtherPlan {
    /// (index, status, fired): veto the first `AddStart` of `index`.
    standing: Vec<(u32, NtStatus, bool)>,
    /// Veto this hot-add's `AddStart`.
    armed: Option<NtStatus>,
    /// Vetoes issued.
    vetoes: u32,
}

struct Other {
    name: String,
    origin: Origin,
    id: u64,
    handle: Option<Handle>,
    plan: Arc<Mutex<OtherPlan>>,
}

/// The other drivers registered so far, in order of registration.
#[derive(Default)]
pub(super) struct Others {
    list: Vec<Other>,
}

impl Others {
    /// The trace line announcing the registration of `name` with `vetoes`.
    pub(super) fn announcement(name: &str, vetoes: &[(u32, NtStatus)]) -> String {
        let what: Vec<String> =
            vetoes.iter().map(|(index, status)| format!("index {index} with {}", status_words(*status))).collect();
        format!(
            "== other driver \"{name}\" registers its callback{}",
            if what.is_empty() {
                String::new()
            } else {
                format!("; it will veto the first AddStart of {}", what.join(", "))
            }
        )
    }

    /// Registers `name`'s callback with `kernel`; it vetoes the first
    /// `AddStart` of each index in `vetoes`, and any `AddStart` while armed.
    pub(super) fn register(&mut self, kernel: &SimKernel, origin: &Origin, name: &str, vetoes: &[(u32, NtStatus)]) {
        let plan = Arc::new(Mutex::new(OtherPlan {
            standing: vetoes.iter().map(|&(index, status)| (index, status, false)).collect(),
            ..OtherPlan::default()
        }));
        let theirs = Arc::clone(&plan);
        let handle = kernel.register_other_driver(Box::new(move |change| {
            if change.state != NotifyState::AddStart.raw() {
                return NtStatus::SUCCESS;
            }
            let mut plan = theirs.lock();
            let status = plan.armed.or_else(|| {
                let entry = plan.standing.iter_mut().find(|(index, _, fired)| *index == change.nt_number && !fired)?;
                entry.2 = true;
                Some(entry.1)
            });
            plan.vetoes += u32::from(status.is_some());
            status.unwrap_or(NtStatus::SUCCESS)
        }));
        self.list.push(Other {
            name: name.to_string(),
            origin: origin.clone(),
            id: handle.id(),
            handle: Some(handle),
            plan,
        });
    }

    /// Names a registration: `other driver "NAME"`, or procnotify.
    pub(super) fn who(&self, registration: u64) -> String {
        self.list
            .iter()
            .find(|other| other.id == registration)
            .map_or_else(|| String::from("procnotify"), |other| format!("other driver \"{}\"", other.name))
    }

    /// Whether `registration` is one of the other drivers'.
    pub(super) fn is_other(&self, registration: u64) -> bool {
        self.list.iter().any(|other| other.id == registration)
    }

    /// Arms the registered driver `name` to veto the next `AddStart` with
    /// `status`: its position and the vetoes it issued so far, or `None`
    /// when no such driver is registered.
    pub(super) fn arm(&self, name: &str, status: NtStatus) -> Option<(usize, u32)> {
        let position = self.list.iter().position(|other| other.name == name && other.handle.is_some())?;
        let mut plan = self.list.get(position)?.plan.lock();
        plan.armed = Some(status);
        Some((position, plan.vetoes))
    }

    /// The vetoes issued by the driver at `position`.
    pub(super) fn vetoes_at(&self, position: usize) -> u32 {
        self.list.get(position).map_or(0, |other| other.plan.lock().vetoes)
    }

    /// Disarms every driver (their standing vetoes stay).
    pub(super) fn disarm(&self) {
        for other in &self.list {
            other.plan.lock().armed = None;
        }
    }

    /// Takes the handles of the drivers still registered, in order, with their names.
    pub(super) fn take_handles(&mut self) -> Vec<(String, Handle)> {
        self.list.iter_mut().filter_map(|other| Some((other.name.clone(), other.handle.take()?))).collect()
    }

    /// Each driver's vetoes: (`other driver "NAME"`, count).
    pub(super) fn veto_counts(&self) -> Vec<(String, u32)> {
        self.list.iter().map(|other| (format!("other driver \"{}\"", other.name), other.plan.lock().vetoes)).collect()
    }

    /// Every standing veto: (label, fired, why it did not fire).
    pub(super) fn standing(&self) -> Vec<(String, bool, String)> {
        let mut results = Vec::new();
        for other in &self.list {
            for &(index, _, fired) in &other.plan.lock().standing {
                let label = match &other.origin {
                    Origin::Line(_) => format!("{}: other-driver {} veto {index}", other.origin, other.name),
                    Origin::Flag(_) => format!("--veto-add {index}"),
                };
                results.push((label, fired, format!("no AddStart for index {index} reached \"{}\"", other.name)));
            }
        }
        results
    }
}
