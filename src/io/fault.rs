//! The fault plan shared by the crash-simulating backends: which operation
//! fails, panics, or finds the power gone.

use std::io;

/// Faults by operation number (`write`, `set_len` and `sync_data` count in
/// call order from 0; reads do not).
#[derive(Debug, Default)]
pub(crate) struct FaultPlan {
    ops: u64,
    failures: Vec<(u64, io::ErrorKind)>,
    panic_at: Option<u64>,
    cut_after: Option<u64>,
}

impl FaultPlan {
    pub(crate) fn fail_op(&mut self, op: u64, kind: io::ErrorKind) {
        self.failures.push((op, kind));
    }

    pub(crate) fn panic_at_op(&mut self, op: u64) {
        self.panic_at = Some(op);
    }

    pub(crate) fn cut_power_after(&mut self, ops: u64) {
        self.cut_after = Some(ops);
    }

    pub(crate) fn ops(&self) -> u64 {
        self.ops
    }

    /// Counts an operation and decides whether it may run.
    pub(crate) fn begin_op(&mut self) -> io::Result<()> {
        let op = self.ops;
        self.ops += 1;
        if self.cut_after.is_some_and(|cut| op >= cut) {
            return Err(io::Error::other("simulated power loss"));
        }
        if self.panic_at == Some(op) {
            panic!("injected panic at storage operation {op}");
        }
        if let Some(&(_, kind)) = self.failures.iter().find(|(at, _)| *at == op) {
            return Err(io::Error::new(kind, format!("injected failure at operation {op}")));
        }
        Ok(())
    }
}
