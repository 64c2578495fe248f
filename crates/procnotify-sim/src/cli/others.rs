//! The other drivers of a session: each registers its own callback (without
//! `ADD_EXISTING`) and vetoes the `AddStart`s its plan names, so a session
//! can show procnotify coping with a veto it did not issue.

use std::boxed::Box;
use std::format;
use std::string::{String, ToString};
use std::sync::Arc;
use std::vec::Vec;

use parking_lot::Mutex;
use procnotify_core::{NotifyState, NtStatus};

use super::machine::Machine;
use super::step::Origin;
use super::values::status_words;
use crate::kernel::Handle;

/// Another driver's veto plan, shared with its callback.
#[derive(Default)]
pub(super) struct OtherPlan {
    /// (index, status, fired): veto the first `AddStart` of `index`.
    pub standing: Vec<(u32, NtStatus, bool)>,
    /// Veto this hot-add's `AddStart`.
    pub armed: Option<NtStatus>,
    /// Vetoes issued.
    pub vetoes: u32,
}

pub(super) struct Other {
    pub name: String,
    pub origin: Origin,
    pub id: u64,
    pub handle: Option<Handle>,
    pub plan: Arc<Mutex<OtherPlan>>,
}

impl Machine<'_> {
    pub(super) fn register_other(&mut self, origin: &Origin, name: &str, vetoes: &[(u32, NtStatus)]) {
        let plan = Arc::new(Mutex::new(OtherPlan {
            standing: vetoes.iter().map(|&(index, status)| (index, status, false)).collect(),
            ..OtherPlan::default()
        }));
        let theirs = Arc::clone(&plan);
        let what: Vec<String> =
            vetoes.iter().map(|(index, status)| format!("index {index} with {}", status_words(*status))).collect();
        self.note(&format!(
            "== other driver \"{name}\" registers its callback{}",
            if what.is_empty() {
                String::new()
            } else {
                format!("; it will veto the first AddStart of {}", what.join(", "))
            }
        ));
        let handle = self.kernel.register_other_driver(Box::new(move |change| {
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
        self.others.push(Other {
            name: name.to_string(),
            origin: origin.clone(),
            id: handle.id(),
            handle: Some(handle),
            plan,
        });
        self.drain();
    }

    /// Names a registration.
    pub(super) fn who(&self, registration: u64) -> String {
        self.others
            .iter()
            .find(|other| other.id == registration)
            .map_or_else(|| String::from("procnotify"), |other| format!("other driver \"{}\"", other.name))
    }
}
