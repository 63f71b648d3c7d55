//! What the comparison measures besides time and disk: a process's peak
//! resident memory, and the CPU time of this process's threads (Linux
//! `/proc`; on other systems the values read as zero).

use std::collections::HashMap;

/// The peak resident set of this process so far, in bytes: `VmHWM` of
/// `/proc/self/status` (anonymous memory plus the file pages it maps).
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// The CPU time every thread of this process has used, at one instant.
pub struct Threads {
    /// Thread id -> (name, CPU ns).
    cpu: HashMap<u32, (String, u64)>,
    /// CPU ns of the whole process, threads that have exited included.
    process_ns: u64,
    /// The thread that took the snapshot (it waits for the row's threads).
    caller: u32,
}

/// CPU ns a thread has run: the first field of its `schedstat`, else its
/// `stat` utime + stime in clock ticks (USER_HZ, 100 on Linux).
fn thread_ns(tid: &str) -> Option<u64> {
    let dir = format!("/proc/self/task/{tid}");
    if let Some(ns) = std::fs::read_to_string(format!("{dir}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
    {
        return Some(ns);
    }
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    // Fields after the parenthesised name; utime and stime are fields 14, 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * 10_000_000)
}

impl Threads {
    pub fn snapshot() -> Self {
        let mut cpu = HashMap::new();
        if let Ok(entries) = std::fs::read_dir("/proc/self/task") {
            for entry in entries.filter_map(|e| e.ok()) {
                let tid = entry.file_name().to_string_lossy().into_owned();
                let (Ok(id), Some(ns)) = (tid.parse::<u32>(), thread_ns(&tid)) else {
                    continue;
                };
                let name = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm"))
                    .map(|s| s.trim().to_string())
                    .unwrap_or_default();
                cpu.insert(id, (name, ns));
            }
        }
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a valid timespec for the call to fill.
        let process_ns = if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) } == 0 {
            ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
        } else {
            0
        };
        // SAFETY: gettid has no preconditions.
        let caller = unsafe { libc::gettid() } as u32;
        Self {
            cpu,
            process_ns,
            caller,
        }
    }
}

/// The engine a thread belongs to, by the name its engine gives it; `None`
/// for unnamed threads (counted for whichever engine is measured).
fn owner(thread_name: &str) -> Option<&'static str> {
    if thread_name.starts_with("sluicedb") {
        Some("sluicedb")
    } else if thread_name.starts_with("rocksdb") {
        Some("rocksdb")
    } else {
        None
    }
}

/// How the CPU time between two snapshots divides between the threads that
/// ran the row (spawned by it and exited by the second snapshot) and the
/// engine's background threads (alive at the second snapshot).
pub struct CpuShare {
    /// CPU ns of the row's own threads.
    pub foreground_ns: u64,
    /// CPU ns of `engine`'s background threads (and of unnamed ones).
    pub background_ns: u64,
    /// The background threads that ran: (name, CPU ns), largest first.
    pub by_thread: Vec<(String, u64)>,
}

impl CpuShare {
    /// Between `before` and `after`, taken by the same thread around a row
    /// whose threads had all exited by `after`. Threads named for another
    /// engine (its idle instance in this process) count for neither side.
    pub fn between(before: &Threads, after: &Threads, engine: &str) -> Self {
        let total = after.process_ns.saturating_sub(before.process_ns);
        let mut live = 0u64;
        let mut by_thread = Vec::new();
        for (tid, (name, ns)) in &after.cpu {
            // A thread id reused by a new thread (its name differs) starts at 0.
            let start = match before.cpu.get(tid) {
                Some((old, ns)) if old == name => *ns,
                _ => 0,
            };
            let delta = ns.saturating_sub(start);
            live += delta;
            if *tid == after.caller || delta == 0 {
                continue;
            }
            if owner(name).is_none_or(|o| o == engine) {
                by_thread.push((name.clone(), delta));
            }
        }
        by_thread.sort_by_key(|t| std::cmp::Reverse(t.1));
        Self {
            // The row's threads have exited: the process's time that no live
            // thread accounts for is theirs.
            foreground_ns: total.saturating_sub(live),
            background_ns: by_thread.iter().map(|t| t.1).sum(),
            by_thread,
        }
    }

    /// The background threads' share of the row's CPU time, in percent.
    pub fn percent(&self) -> f64 {
        let all = self.foreground_ns + self.background_ns;
        if all == 0 {
            0.0
        } else {
            100.0 * self.background_ns as f64 / all as f64
        }
    }

    /// One line: the row's CPU time and each background thread's.
    pub fn detail(&self) -> String {
        let ms = |ns: u64| ns as f64 / 1e6;
        let threads: Vec<String> = self
            .by_thread
            .iter()
            .map(|(n, ns)| format!("{n} {:.1} ms", ms(*ns)))
            .collect();
        format!(
            "committers {:.1} ms, background {:.1} ms ({})",
            ms(self.foreground_ns),
            ms(self.background_ns),
            threads.join(", ")
        )
    }
}

/// How long [`settle`] watches the process's threads at a time.
const SETTLE_WINDOW: std::time::Duration = std::time::Duration::from_millis(200);

/// Waits until this process's threads other than the caller are quiet: less
/// than a tenth of one core's time over a [`SETTLE_WINDOW`] (the engines'
/// background flushes, compactions and checkpoints left by earlier rows
/// have finished), or until `max` has passed. Returns the time waited and
/// whether the threads went quiet.
///
/// Why: the rows run each engine in turn in one process on a 2-core host,
/// and an engine's background work outlives its own timed run. Without this
/// it ran into the next engine's timing: RocksDB's compactions after its
/// load beside sluicedb's reads, sluicedb's flush beside RocksDB's writes;
/// the engines' order within a row moved a ratio by up to a fifth
/// (forty-fifth session). Every engine's timed run now starts on a quiet
/// machine; what an engine does in the background during its own run still
/// counts against it.
pub fn settle(max: std::time::Duration) -> (std::time::Duration, bool) {
    let started = std::time::Instant::now();
    loop {
        let before = Threads::snapshot();
        std::thread::sleep(SETTLE_WINDOW);
        let after = Threads::snapshot();
        let busy: u64 = after
            .cpu
            .iter()
            .filter(|(tid, _)| **tid != after.caller)
            .map(|(tid, (name, ns))| match before.cpu.get(tid) {
                Some((old, start)) if old == name => ns.saturating_sub(*start),
                _ => *ns,
            })
            .sum();
        let quiet = busy < SETTLE_WINDOW.as_nanos() as u64 / 10;
        if quiet || started.elapsed() >= max {
            return (started.elapsed(), quiet);
        }
    }
}
