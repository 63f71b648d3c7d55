//! `wal`: list the log's records and where recovery would stop, changing
//! nothing: the data file is read through a read-only handle, the log with
//! `sluicedb::wal::scan`, which starts no thread and writes nothing.

use std::collections::HashMap;
use std::fs::TryLockError;
use std::io::Write;
use std::path::Path;

use sluicedb::engine::{RecordSummary, checkpointed_tables};
use sluicedb::io::FsLogDir;
use sluicedb::wal::{StopReason, scan};

use crate::{CliError, CliResult, pipe, probe};

fn name_of(names: &HashMap<u64, String>, id: u64) -> String {
    names.get(&id).cloned().unwrap_or_else(|| format!("#{id}"))
}

pub(crate) fn wal(path: &Path, summary: bool) -> CliResult {
    let trees = probe(path)?;
    let db_id = trees.db_id();
    let checkpoint = trees.durable_checkpoint_seq();
    let mut names: HashMap<u64, String> = checkpointed_tables(&trees.snapshot())?
        .into_iter()
        .map(|(name, id, _)| (id, String::from_utf8_lossy(&name).into_owned()))
        .collect();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let locked = std::fs::File::open(path).map(|f| matches!(f.try_lock_shared(), Err(TryLockError::WouldBlock)));
    if locked.unwrap_or(false) {
        writeln!(
            out,
            "note: another process has the database open; its log may change while read"
        )
        .map_err(pipe)?;
    }
    let mut dir_name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    dir_name.push("-wal");
    let dir_path = path.with_file_name(dir_name);
    writeln!(
        out,
        "data file checkpoint: sequence {checkpoint} (records at or below it are not replayed)"
    )
    .map_err(pipe)?;
    if !dir_path.is_dir() {
        writeln!(
            out,
            "no WAL directory at {}: recovery replays nothing",
            dir_path.display()
        )
        .map_err(pipe)?;
        return out.flush().map_err(pipe);
    }
    let mut files: Vec<(String, u64)> = std::fs::read_dir(&dir_path)?
        .flatten()
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.metadata().ok()?.len())))
        .collect();
    files.sort();
    writeln!(out, "WAL directory {}: {} files", dir_path.display(), files.len()).map_err(pipe)?;
    for (name, len) in &files {
        writeln!(out, "  {name}  {len} bytes").map_err(pipe)?;
    }
    let dir = FsLogDir::open(&dir_path)?;
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut listing = Vec::new();
    let result = scan(&dir, db_id, trees.log_ids(), checkpoint, |seq, payload| {
        records += 1;
        bytes += payload.len() as u64;
        if summary {
            return Ok(());
        }
        let mut line = format!("seq {seq}  {} bytes", payload.len());
        match RecordSummary::decode(payload) {
            Ok(record) => {
                for (name, id) in &record.bindings {
                    let name = String::from_utf8_lossy(name).into_owned();
                    match id {
                        Some(id) => {
                            line.push_str(&format!("  bind {name}=#{id}"));
                            names.insert(*id, name);
                        }
                        None => line.push_str(&format!("  unbind {name}")),
                    }
                }
                for id in &record.dropped {
                    line.push_str(&format!("  drop {}", name_of(&names, *id)));
                }
                let touched: Vec<String> = record
                    .tables
                    .iter()
                    .map(|&(id, puts, dels)| format!("{}(+{puts} -{dels})", name_of(&names, id)))
                    .collect();
                if !touched.is_empty() {
                    line.push_str(&format!("  tables: {}", touched.join(" ")));
                }
            }
            Err(e) => line.push_str(&format!("  undecodable: {e}")),
        }
        listing.push(line);
        Ok(())
    });
    for line in &listing {
        writeln!(out, "{line}").map_err(pipe)?;
    }
    match result {
        Ok(recovery) => {
            writeln!(
                out,
                "{records} records after the checkpoint, {bytes} payload bytes; last sequence {}",
                recovery.last_seq.max(checkpoint)
            )
            .map_err(pipe)?;
            match &recovery.stop {
                None => writeln!(out, "recovery: the log ends cleanly").map_err(pipe)?,
                Some(stop) => {
                    let why = match &stop.reason {
                        StopReason::Truncated => "the log ends inside a record (a torn write)".to_string(),
                        StopReason::Corrupt => "a record's checksum fails (torn or zero-filled bytes)".to_string(),
                        StopReason::OutOfOrder { expected, found } => {
                            format!("a record has sequence {found}, {expected} was expected")
                        }
                        StopReason::BadHeader(e) => format!("a segment header is damaged: {e}"),
                        StopReason::Gap { expected, found } => {
                            format!("the next segment starts at {found}, {expected} was expected")
                        }
                    };
                    writeln!(
                        out,
                        "recovery would stop in {} at offset {}: {why}; {} bytes past it would be discarded{}",
                        stop.segment,
                        stop.offset,
                        recovery.discarded_bytes,
                        if recovery.torn_tail {
                            " (a torn tail: nothing acknowledged is lost)"
                        } else {
                            ""
                        }
                    )
                    .map_err(pipe)?;
                }
            }
            for name in &recovery.leftovers {
                writeln!(
                    out,
                    "leftover segment {name}: wholly checkpointed, deleted at the next checkpoint"
                )
                .map_err(pipe)?;
            }
            out.flush().map_err(pipe)
        }
        Err(e) => {
            out.flush().map_err(pipe)?;
            Err(CliError {
                message: format!("recovery would refuse this log: {e}"),
                code: 2,
            })
        }
    }
}
