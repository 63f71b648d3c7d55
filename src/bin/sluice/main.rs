//! `sluice`: inspect and maintain sluicedb databases from the command line
//! (what `ldb`/`sst_dump` are to RocksDB and `mdb_stat`/`mdb_dump`/
//! `mdb_load`/`mdb_copy` to LMDB).
//!
//! Exit status: 0 on success; 1 on an error (bad input, a missing database
//! or table, a database another process holds, I/O); 2 when `check` finds
//! damage, or a writing command finds it before writing (and so writes
//! nothing). Errors are one line on stderr, never a panic.

mod codec;
mod dump;
mod wal;

use std::io::{IsTerminal, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use sluicedb::btree::{Comparator, Report, TreeStore, TreeStoreOptions};
use sluicedb::engine::{Durability, ReadTxn, RecoveryReport};
use sluicedb::io::FileBackend;
use sluicedb::{Database, DatabaseError, ReadOnlyDatabase, StorageError};

use codec::{Codec, to_hex};
use sluicedb::TableMeta;

/// The page cache the CLI opens databases with: it reads each page about
/// once, so a large cache buys nothing.
const CLI_CACHE_BYTES: usize = 64 << 20;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Inspect and maintain sluicedb databases",
    long_about = "Inspect and maintain sluicedb databases.\n\n\
        Every command but `wal` opens the database as a program would (taking its file lock and \
        replaying its WAL), so it fails cleanly while another process has the database open.\n\n\
        Writing commands look for damage read-only first and write nothing if they find it: \
        `compact`, `checkpoint`, `backup` and `load` into an existing database check the whole file, \
        `put` and `del` the key's path.\n\n\
        Exit status: 0 success, 1 error, 2 damage found (by `check`, or by a writing command before it wrote).",
    after_help = "Examples:\n  sluice stat my.db\n  sluice tables my.db\n  sluice get my.db users alice\n  \
        sluice dump my.db > my.dump && sluice load copy.db < my.dump\n  sluice backup my.db my-backup.db"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How keys and values are written on the command line.
#[derive(Args, Clone, Copy, Default)]
struct Encoding {
    /// Keys and values are hex (both given and shown), whatever the
    /// table's types. Without it, the table's recorded key and value types
    /// decide (integers in decimal, strings as text, byte types as hex).
    #[arg(long)]
    hex: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Show the database's size, WAL, tables and engine counters.
    #[command(after_help = "Examples:\n  sluice stat my.db\n  sluice stat my.db --json | jq .tables")]
    Stat {
        /// The database file.
        path: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the tables: name, key and value types, key order, entries.
    #[command(after_help = "Examples:\n  sluice tables my.db")]
    Tables {
        /// The database file.
        path: PathBuf,
    },
    /// Print the value of one key.
    #[command(
        after_help = "Examples:\n  sluice get my.db users alice\n  sluice get my.db counters 42\n  \
        sluice get my.db blobs --hex 00ff"
    )]
    Get {
        /// The database file.
        path: PathBuf,
        /// The table.
        table: String,
        /// The key.
        #[arg(allow_negative_numbers = true)]
        key: String,
        #[command(flatten)]
        encoding: Encoding,
    },
    /// Insert or replace one key (a durable commit).
    #[command(after_help = "Examples:\n  sluice put my.db users alice 30\n  \
        sluice put my.db notes --create hello world   (creates a &str -> &str table)\n  \
        sluice put my.db blobs --hex --create 00ff 0102   (creates a &[u8] -> &[u8] table)")]
    Put {
        /// The database file.
        path: PathBuf,
        /// The table.
        table: String,
        /// The key.
        #[arg(allow_negative_numbers = true)]
        key: String,
        /// The value.
        #[arg(allow_negative_numbers = true)]
        value: String,
        /// Create the table if it is missing (and the database too): `&str`
        /// keys and values, or `&[u8]` with `--hex`.
        #[arg(long)]
        create: bool,
        #[command(flatten)]
        encoding: Encoding,
    },
    /// Delete one key (a durable commit).
    #[command(after_help = "Examples:\n  sluice del my.db users alice")]
    Del {
        /// The database file.
        path: PathBuf,
        /// The table.
        table: String,
        /// The key.
        #[arg(allow_negative_numbers = true)]
        key: String,
        #[command(flatten)]
        encoding: Encoding,
    },
    /// Print a table's entries in key order, one `key<TAB>value` a line.
    #[command(
        after_help = "Examples:\n  sluice scan my.db users\n  sluice scan my.db users --from a --to m --limit 10\n  \
        sluice scan my.db counters --from 100"
    )]
    Scan {
        /// The database file.
        path: PathBuf,
        /// The table.
        table: String,
        /// First key (inclusive).
        #[arg(long, allow_negative_numbers = true)]
        from: Option<String>,
        /// Last key (exclusive).
        #[arg(long, allow_negative_numbers = true)]
        to: Option<String>,
        /// At most this many entries.
        #[arg(long)]
        limit: Option<u64>,
        #[command(flatten)]
        encoding: Encoding,
    },
    /// Verify the data file: page checksums, key order, counts, page
    /// accounting. Exit 0 if sound, 2 with findings.
    #[command(after_help = "Examples:\n  sluice check my.db && echo sound")]
    Check {
        /// The database file.
        path: PathBuf,
    },
    /// Write every table (or one) in key order: a stable text format that
    /// `load` reads back.
    #[command(after_help = "Formats:\n  jsonl  one JSON object a line: a header, per table one \
        {\"table\",\"meta\",...} line and its {\"k\",\"v\"} entries (hex), an end line\n  \
        hex    `sluice-dump 1 hex`, `table <name hex> <meta hex>`, ` <key hex> <value hex>`, `end ...`\n\n\
        A dump loaded into a new database dumps to the same bytes.\n\n\
        Examples:\n  sluice dump my.db > my.jsonl\n  sluice dump my.db --table users --format hex -o users.dump")]
    Dump {
        /// The database file.
        path: PathBuf,
        /// Only this table.
        #[arg(long)]
        table: Option<String>,
        /// `jsonl` (default) or `hex`.
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Read a dump (either format, detected from its first line) into a
    /// database, creating it if missing; sorted batches, one checkpoint.
    #[command(after_help = "Examples:\n  sluice load new.db < my.jsonl\n  sluice load new.db -i users.dump")]
    Load {
        /// The database file (created if missing).
        path: PathBuf,
        /// Read here instead of standard input.
        #[arg(long, short)]
        input: Option<PathBuf>,
    },
    /// Checkpoint and move live pages to the front, giving the free end of
    /// the file back to the file system.
    #[command(after_help = "Examples:\n  sluice compact my.db")]
    Compact {
        /// The database file.
        path: PathBuf,
    },
    /// Flush everything committed into the data file, make it durable, and
    /// delete the WAL segments it covers.
    #[command(after_help = "Examples:\n  sluice checkpoint my.db")]
    Checkpoint {
        /// The database file.
        path: PathBuf,
    },
    /// Write a consistent, compact copy of the database to DEST (a new
    /// path), from one snapshot.
    #[command(after_help = "Examples:\n  sluice backup my.db /backups/my-2024-05-01.db")]
    Backup {
        /// The database file.
        path: PathBuf,
        /// The copy's path; must not exist.
        dest: PathBuf,
    },
    /// List the WAL's records (sequence, size, tables touched) and where and
    /// why recovery would stop. Reads only: changes nothing.
    #[command(after_help = "Examples:\n  sluice wal my.db\n  sluice wal my.db --summary")]
    Wal {
        /// The database file.
        path: PathBuf,
        /// Print only the totals and the stop point, not each record.
        #[arg(long)]
        summary: bool,
    },
}

/// An error for the user: one line, and the exit status.
pub(crate) struct CliError {
    pub(crate) message: String,
    pub(crate) code: u8,
}

impl CliError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 1,
        }
    }
}

impl From<StorageError> for CliError {
    fn from(e: StorageError) -> Self {
        Self::new(e.to_string())
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        Self::new(format!("I/O error: {e}"))
    }
}

pub(crate) type CliResult<T = ()> = Result<T, CliError>;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line and status 1, as every other error: status 2 is
            // `check`'s "damage found", which a mistyped flag must not say.
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!("sluice: {} (see `sluice --help`)", first.trim_start_matches("error: "));
            return ExitCode::from(1);
        }
    };
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed pipe (`sluice dump | head`) is not worth a message.
            if !e.message.is_empty() {
                eprintln!("sluice: {}", e.message);
            }
            ExitCode::from(e.code)
        }
    }
}

fn run(command: Command) -> CliResult {
    match command {
        Command::Stat { path, json } => stat(&path, json),
        Command::Tables { path } => tables(&path),
        Command::Get {
            path,
            table,
            key,
            encoding,
        } => get(&path, &table, &key, encoding),
        Command::Put {
            path,
            table,
            key,
            value,
            create,
            encoding,
        } => put(&path, &table, &key, &value, create, encoding),
        Command::Del {
            path,
            table,
            key,
            encoding,
        } => del(&path, &table, &key, encoding),
        Command::Scan {
            path,
            table,
            from,
            to,
            limit,
            encoding,
        } => scan(&path, &table, from.as_deref(), to.as_deref(), limit, encoding),
        Command::Check { path } => check(&path),
        Command::Dump {
            path,
            table,
            format,
            output,
        } => {
            let format = dump::Format::parse(&format)?;
            if let Some(output) = &output {
                refuse_output_onto(&path, output)?;
            }
            let db = inspect(&path)?;
            dump::dump(db.engine(), table.as_deref(), format, output.as_deref())
        }
        Command::Load { path, input } => dump::load(&path, input.as_deref()),
        Command::Compact { path } => compact(&path),
        Command::Checkpoint { path } => {
            let db = open_verified(&path, "checkpoint")?;
            db.checkpoint()?;
            println!("checkpointed: {} WAL bytes left", wal_disk_bytes(&path).0);
            Ok(())
        }
        Command::Backup { path, dest } => backup(&path, &dest),
        Command::Wal { path, summary } => wal::wal(&path, summary),
    }
}

/// Refuses paths that cannot be a database before anything touches them.
fn check_path(path: &Path) -> CliResult {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => CliError::new(format!("{}: no such file", path.display())),
        _ => CliError::new(format!("{}: {e}", path.display())),
    })?;
    if meta.is_dir() {
        return Err(CliError::new(format!(
            "{} is a directory, not a database file",
            path.display()
        )));
    }
    Ok(())
}

/// Reads the data file's header and newest commit without writing: a
/// foreign or damaged file is refused here, before opening would create its
/// WAL directory or replay anything.
pub(crate) fn probe(path: &Path) -> CliResult<TreeStore> {
    check_path(path)?;
    let file = std::fs::File::open(path).map_err(|e| CliError::new(format!("{}: {e}", path.display())))?;
    if file.metadata()?.len() == 0 {
        return Err(CliError::new(format!(
            "{} is empty: not a sluicedb database",
            path.display()
        )));
    }
    // A read-only handle: the probe cannot change the file, whatever it finds.
    TreeStore::open(FileBackend::new(file), TreeStoreOptions { cache_bytes: 1 << 20 }).map_err(|e| {
        CliError::new(format!(
            "{} is not a sluicedb database, or is damaged: {e}",
            path.display()
        ))
    })
}

/// Opens the database at `path` read-only for a command that only reads:
/// nothing is written to the data file or the WAL (a writable open records
/// a new log in the data file and replays the WAL into it), and a damaged
/// file gets no WAL directory beside it.
pub(crate) fn inspect(path: &Path) -> CliResult<ReadOnlyDatabase> {
    probe(path)?;
    Database::builder()
        .set_cache_size(CLI_CACHE_BYTES)
        .open_read_only(path)
        .map_err(|e| open_error(path, e))
}

/// Checks the whole database at `path` read-only (the WAL as recovery
/// would read it, then every page of every tree): the integrity check
/// `sluice check` runs, without writing a byte. A path that is no database
/// is refused as by [`probe`]; damage is a [`finding`]. The report and
/// what recovery saw.
fn verify(path: &Path) -> CliResult<(Report, RecoveryReport)> {
    probe(path)?;
    let db = match Database::builder().set_cache_size(CLI_CACHE_BYTES).open_read_only(path) {
        Ok(db) => db,
        Err(DatabaseError::Storage(e @ StorageError::Corrupted(_))) => return Err(finding(e.to_string())),
        Err(e) => return Err(open_error(path, e)),
    };
    let report = db.engine().check_integrity().map_err(|e| match e {
        e @ StorageError::Corrupted(_) => finding(e.to_string()),
        other => CliError::from(other),
    })?;
    Ok((report, db.engine().stats().recovery))
}

/// Damage found: exit code 2 (`check`'s), whichever command found it.
fn finding(what: String) -> CliError {
    CliError {
        message: format!("check found damage: {what}"),
        code: 2,
    }
}

/// Opens the database at `path` for a command that rewrites it as a whole
/// (`compact`, `checkpoint`, `backup`, `load` into an existing file): the
/// whole file is verified read-only first ([`verify`]), so damage is
/// reported, and the file left as it was, before a writable open records a
/// new log in it, replays the WAL into it or moves a page.
pub(crate) fn open_verified(path: &Path, verb: &str) -> CliResult<Database> {
    verify_before(path, verb)?;
    open(path)
}

/// [`verify`] before `verb` writes to the database at `path`, its damage
/// the reason `verb` did not.
pub(crate) fn verify_before(path: &Path, verb: &str) -> CliResult {
    verify(path).map(drop).map_err(|e| refusal(path, verb, e))
}

/// `e`, found before `verb` wrote anything, as the reason it did not.
/// Damage keeps `check`'s exit code 2, and the message says where to look.
fn refusal(path: &Path, verb: &str, e: CliError) -> CliError {
    match e.code {
        2 => CliError {
            message: format!(
                "refusing to {verb} {}: nothing was written ({}); `sluice check` reports the damage",
                path.display(),
                e.message
            ),
            code: 2,
        },
        _ => e,
    }
}

/// Opens the database at `path` for a command that writes. Commands that
/// rewrite the whole file use [`open_verified`]; `put` and `del` read
/// their key through a read-only handle first ([`read_before_write`]).
pub(crate) fn open(path: &Path) -> CliResult<Database> {
    probe(path)?;
    // A command leaves the WAL as it found it (`checkpoint` and `compact`
    // checkpoint explicitly): inspecting a database must not change it.
    Database::builder()
        .set_cache_size(CLI_CACHE_BYTES)
        .set_checkpoint_on_drop(false)
        .open(path)
        .map_err(|e| open_error(path, e))
}

pub(crate) fn open_error(path: &Path, e: DatabaseError) -> CliError {
    match e {
        DatabaseError::DatabaseAlreadyOpen => CliError::new(format!(
            "{}: database already open (DatabaseAlreadyOpen): another process holds its file lock; \
             stop it first, or use `sluice wal`, which only reads",
            path.display()
        )),
        other => CliError::new(format!("{}: {other}", path.display())),
    }
}

fn display_name(name: &[u8]) -> String {
    match std::str::from_utf8(name) {
        Ok(s) => s.to_string(),
        Err(_) => format!("0x{}", to_hex(name)),
    }
}

/// A table as a command sees it: name, metadata, and how to order and show
/// its keys and values.
pub(crate) struct TableInfo {
    pub(crate) name: Vec<u8>,
    pub(crate) meta: Vec<u8>,
    pub(crate) key: Column,
    pub(crate) value: Column,
    /// The key order, if this process can know it (byte order; never for a
    /// multimap table, whose pairs the commands do not read).
    pub(crate) order: Option<Comparator>,
    /// Whether it is a multimap table.
    pub(crate) multimap: bool,
}

/// How one column is shown and parsed.
pub(crate) struct Column {
    pub(crate) codec: Codec,
    /// The recorded type name, if any.
    pub(crate) type_name: Option<String>,
    /// Whether the codec follows the recorded type (not a hex fallback).
    pub(crate) typed: bool,
    /// The recorded type's width, if it has a fixed one.
    pub(crate) width: Option<usize>,
}

impl Column {
    fn new(type_name: Option<&str>, width: Option<usize>, encoding: Encoding) -> Self {
        let typed = if encoding.hex {
            None
        } else {
            type_name.and_then(Codec::for_type)
        };
        Self {
            typed: typed.is_some(),
            codec: typed.unwrap_or(Codec::Hex),
            type_name: type_name.map(str::to_string),
            width,
        }
    }

    /// The bytes `text` stands for; refused unless they are as wide as a
    /// fixed-width type's (given as hex, they could be any length, and a
    /// program reading the table would take them for another value).
    pub(crate) fn parse(&self, what: &str, text: &str) -> CliResult<Vec<u8>> {
        let bytes = self.parse_any(what, text)?;
        match self.width {
            Some(width) if bytes.len() != width => Err(CliError::new(format!(
                "bad {what}: {} bytes, but the table's {what} type {} is {width} bytes wide",
                bytes.len(),
                self.type_name.as_deref().unwrap_or("?")
            ))),
            _ => Ok(bytes),
        }
    }

    fn parse_any(&self, what: &str, text: &str) -> CliResult<Vec<u8>> {
        self.codec.parse(text).map_err(|e| {
            let hint = match (&self.type_name, self.typed) {
                (Some(t), false) if Codec::for_type(t).is_none() => {
                    format!(" (the table's {what} type {t} is not built in: give it as hex)")
                }
                (Some(t), true) => format!(" (the table's {what} type is {t}; --hex takes hex)"),
                _ => String::new(),
            };
            CliError::new(format!("bad {what}: {e}{hint}"))
        })
    }
}

impl TableInfo {
    pub(crate) fn new(name: Vec<u8>, meta: Vec<u8>, order: Option<Comparator>, encoding: Encoding) -> Self {
        let decoded = TableMeta::decode(&meta);
        let widths = decoded.as_ref().and_then(|m| m.widths).unwrap_or((None, None));
        // A multimap table's engine keys are encoded pairs: the engine may
        // know their order (`TableMeta::bytewise_pair`), but a command
        // would read them as keys.
        let multimap = decoded.as_ref().is_some_and(|m| m.multimap);
        Self {
            key: Column::new(decoded.as_ref().map(|m| m.key_type.as_str()), widths.0, encoding),
            value: Column::new(decoded.as_ref().map(|m| m.value_type.as_str()), widths.1, encoding),
            name,
            meta,
            order: order.filter(|_| !multimap),
            multimap,
        }
    }

    /// The key order, or the error saying why the CLI cannot order this
    /// table.
    pub(crate) fn require_order(&self) -> CliResult<Comparator> {
        if self.multimap {
            return Err(CliError::new(format!(
                "table {} is a multimap table; the command line does not read multimap tables: \
                 read it from a program that knows its types",
                display_name(&self.name)
            )));
        }
        self.order.ok_or_else(|| {
            CliError::new(format!(
                "table {} has a custom key order (its key type {} is not ordered as bytes); \
                 the command line cannot order its keys: read it from a program that knows the type",
                display_name(&self.name),
                self.key.type_name.as_deref().unwrap_or("?")
            ))
        })
    }
}

/// The table `name` in a read snapshot.
pub(crate) fn find_table(read: &ReadTxn, name: &str, encoding: Encoding) -> CliResult<TableInfo> {
    let order = read
        .table_order(name.as_bytes())?
        .ok_or_else(|| CliError::new(format!("no table named {name:?} (see `sluice tables`)")))?;
    let meta = read
        .list_tables()?
        .into_iter()
        .find(|(n, _)| n == name.as_bytes())
        .map(|(_, m)| m)
        .unwrap_or_default();
    Ok(TableInfo::new(name.as_bytes().to_vec(), meta, order, encoding))
}

/// A table's entry count, kept by the engine (no scan); ordered tables only
/// (opening a table fixes its key order in this process).
fn count_entries(read: &ReadTxn, info: &TableInfo) -> CliResult<Option<u64>> {
    let Some(order) = info.order else { return Ok(None) };
    let Some(table) = read.open_table(&info.name, order)? else {
        return Ok(Some(0));
    };
    Ok(Some(read.len(&table)?))
}

/// Refuses an output file that is the database at `db` or lies in its WAL
/// directory: creating it would truncate what the command reads.
fn refuse_output_onto(db: &Path, output: &Path) -> CliResult {
    use std::os::unix::fs::MetadataExt;
    let same_file = match (std::fs::metadata(db), std::fs::metadata(output)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    };
    let mut wal = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    wal.push("-wal");
    let wal = db.with_file_name(wal);
    let parent = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let in_wal = match (std::fs::canonicalize(parent), std::fs::canonicalize(&wal)) {
        (Ok(p), Ok(w)) => p.starts_with(w),
        _ => false,
    };
    if same_file || in_wal {
        return Err(CliError::new(format!(
            "{}: the output would overwrite the database it reads ({})",
            output.display(),
            db.display()
        )));
    }
    Ok(())
}

/// `(apparent bytes, allocated bytes, files)` of the database's WAL
/// directory.
fn wal_disk_bytes(path: &Path) -> (u64, u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push("-wal");
    let dir = path.with_file_name(name);
    let mut totals = (0, 0, 0);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for meta in entries.flatten().filter_map(|e| e.metadata().ok()) {
            totals.0 += meta.len();
            totals.1 += meta.blocks() * 512;
            totals.2 += 1;
        }
    }
    totals
}

fn stat(path: &Path, json: bool) -> CliResult {
    let db = inspect(path)?;
    let engine = db.engine();
    let read = engine.begin_read()?;
    let file_bytes = engine.file_len()?;
    let (wal_bytes, wal_allocated, wal_files) = wal_disk_bytes(path);
    let tables = read.list_tables()?;
    let s = engine.stats();
    let r = &s.recovery;
    if json {
        let value = serde_json::json!({
            "path": path.display().to_string(),
            "db_id": format!("{:032x}", engine.db_id()),
            "file_bytes": file_bytes,
            "wal_files": wal_files,
            "wal_file_bytes": wal_bytes,
            "wal_allocated_bytes": wal_allocated,
            "tables": tables.len(),
            "sequence": read.sequence(),
            "durable_seq": s.durable_seq,
            "published_seq": s.published_seq,
            "commits": s.commits,
            "wal_records": s.wal_records,
            "wal_bytes_written": s.wal_bytes,
            "wal_segments": s.wal_segments,
            "wal_segments_from_spares": s.wal_segments_from_spares,
            "wal_spare_failures": s.wal_spare_failures,
            "wal_last_spare_error": s.wal_last_spare_error,
            "wal_queue_depth": s.wal_queue_depth,
            "wal_queue_bytes": s.wal_queue_bytes,
            "wal_queue_stalls": s.wal_queue_stalls,
            "wal_queue_stall_micros": s.wal_queue_stall_micros,
            "fsyncs": s.fsyncs,
            "fsync_p50_us": s.fsync_p50_us,
            "fsync_p99_us": s.fsync_p99_us,
            "fsync_max_us": s.fsync_max_us,
            "flushes": s.flushes,
            "flush_passes": s.flush_passes,
            "flush_part_commits": s.flush_part_commits,
            "flush_ms": s.flush_time.as_secs_f64() * 1e3,
            "checkpoints": s.checkpoints,
            "checkpoint_ms": s.checkpoint_time.as_secs_f64() * 1e3,
            "stalls": s.stalls,
            "stall_ms": s.stall_time.as_secs_f64() * 1e3,
            "recovery": {
                "replayed_records": r.replayed_records,
                "replayed_bytes": r.replayed_bytes,
                "torn_tail": r.torn_tail,
                "discarded_records": r.discarded_records,
                "discarded_bytes": r.discarded_bytes,
                "deferred_records": r.deferred_records,
            },
        });
        println!("{value}");
    } else {
        println!("path:            {}", path.display());
        println!("database id:     {:032x}", engine.db_id());
        println!("data file:       {file_bytes} bytes");
        println!("WAL:             {wal_files} files, {wal_bytes} bytes ({wal_allocated} allocated)");
        println!("tables:          {}", tables.len());
        println!("sequence:        {}", read.sequence());
        println!(
            "WAL this run:    {} records, {} bytes written, {} fsyncs (p50 {} us, p99 {} us, max {} us)",
            s.wal_records, s.wal_bytes, s.fsyncs, s.fsync_p50_us, s.fsync_p99_us, s.fsync_max_us
        );
        println!(
            "recovery:        replayed {} records ({} bytes), torn tail: {}, discarded {} records ({} bytes), deferred {}",
            r.replayed_records,
            r.replayed_bytes,
            r.torn_tail,
            r.discarded_records,
            r.discarded_bytes,
            r.deferred_records
        );
    }
    Ok(())
}

fn tables(path: &Path) -> CliResult {
    let db = inspect(path)?;
    let read = db.engine().begin_read()?;
    let mut out = std::io::stdout().lock();
    let mut lines = vec![[
        "name".to_string(),
        "key".into(),
        "value".into(),
        "order".into(),
        "entries".into(),
    ]];
    for (name, meta) in read.list_tables()? {
        let order = read.table_order(&name)?.flatten();
        let info = TableInfo::new(name, meta, order, Encoding::default());
        let decoded = TableMeta::decode(&info.meta);
        let entries = count_entries(&read, &info)?;
        lines.push([
            display_name(&info.name),
            decoded.as_ref().map_or("?".into(), |m| m.key_type.clone()),
            decoded.as_ref().map_or("?".into(), |m| m.value_type.clone()),
            match (&decoded, info.order) {
                (Some(m), _) if m.multimap => "multimap".into(),
                (_, Some(_)) => "bytes".into(),
                (Some(_), None) => "custom".into(),
                (None, None) => "unknown".into(),
            },
            entries.map_or("?".into(), |n| n.to_string()),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| lines.iter().map(|l| l[i].len()).max().unwrap_or(0))
        .collect();
    for line in lines {
        let text: Vec<String> = line.iter().zip(&widths).map(|(c, w)| format!("{c:w$}")).collect();
        writeln!(out, "{}", text.join("  ").trim_end()).map_err(pipe)?;
    }
    Ok(())
}

/// Maps an output error; a closed pipe ends the command quietly.
pub(crate) fn pipe(e: std::io::Error) -> CliError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        CliError {
            message: String::new(),
            code: 1,
        }
    } else {
        CliError::new(format!("cannot write output: {e}"))
    }
}

fn get(path: &Path, table: &str, key: &str, encoding: Encoding) -> CliResult {
    let db = inspect(path)?;
    let read = db.engine().begin_read()?;
    let info = find_table(&read, table, encoding)?;
    let order = info.require_order()?;
    let key = info.key.parse("key", key)?;
    let Some(handle) = read.open_table(&info.name, order)? else {
        return Err(CliError::new(format!("no table named {table:?}")));
    };
    match read.get(&handle, &key)? {
        Some(value) => {
            println!("{}", info.value.codec.render(value.as_bytes()));
            Ok(())
        }
        None => Err(CliError::new(format!("key not found in table {table:?}"))),
    }
}

fn put(path: &Path, table: &str, key: &str, value: &str, create: bool, encoding: Encoding) -> CliResult {
    let (db, info, key, value) = if create && !path.exists() {
        let db = Database::builder()
            .set_cache_size(CLI_CACHE_BYTES)
            .create(path)
            .map_err(|e| open_error(path, e))?;
        let read = db.engine().begin_read()?;
        let (info, key, value) = put_target(&read, table, key, value, create, encoding)?;
        drop(read);
        (db, info, key, value)
    } else {
        // Planned through a read-only handle: a bad table, key or value,
        // or damage on the key's path, is refused before the writable open.
        let (info, key, value) = {
            let ro = inspect(path)?;
            let read = ro.engine().begin_read()?;
            let target = put_target(&read, table, key, value, create, encoding)?;
            read_before_write(&read, &target.0, &target.1).map_err(|e| refusal(path, "put", e))?;
            target
        };
        (open(path)?, info, key, value)
    };
    let order = info.require_order()?;
    let mut txn = db.engine().begin_write()?;
    txn.set_durability(Durability::Immediate);
    let handle = txn.open_table(&info.name, &info.meta, order)?;
    txn.insert(handle, &key, &value)?;
    txn.commit()?;
    Ok(())
}

/// What `put` writes: the table (a new one of UTF-8 or hex byte strings
/// when `create` allows and it is missing), and the key and value parsed
/// for it.
fn put_target(
    read: &ReadTxn,
    table: &str,
    key: &str,
    value: &str,
    create: bool,
    encoding: Encoding,
) -> CliResult<(TableInfo, Vec<u8>, Vec<u8>)> {
    let info = match read.table_order(table.as_bytes())? {
        Some(_) => find_table(read, table, encoding)?,
        None if create => {
            let t = if encoding.hex { "&[u8]" } else { "&str" };
            let meta = TableMeta {
                key_type: t.into(),
                value_type: t.into(),
                bytewise: true,
                multimap: false,
                bytewise_pair: false,
                widths: Some((None, None)),
            };
            TableInfo::new(
                table.as_bytes().to_vec(),
                meta.encode(),
                Some(sluicedb::btree::bytewise),
                encoding,
            )
        }
        None => {
            return Err(CliError::new(format!(
                "no table named {table:?} (see `sluice tables`; --create makes one)"
            )));
        }
    };
    info.require_order()?;
    let key = info.key.parse("key", key)?;
    let value = info.value.parse("value", value)?;
    Ok((info, key, value))
}

/// Reads `key` of the table `info` names through the read-only `read`
/// before a command writes it: damage on the key's path through the tree
/// is found (exit 2, as `check`'s findings) before a writable open records
/// a new log in the file and replays the WAL into it. Whether the key is
/// present (a table not yet made holds nothing).
fn read_before_write(read: &ReadTxn, info: &TableInfo, key: &[u8]) -> CliResult<bool> {
    let Some(handle) = read.open_table(&info.name, info.require_order()?)? else {
        return Ok(false);
    };
    match read.get(&handle, key) {
        Ok(value) => Ok(value.is_some()),
        Err(e @ StorageError::Corrupted(_)) => Err(finding(e.to_string())),
        Err(e) => Err(e.into()),
    }
}

fn del(path: &Path, table: &str, key: &str, encoding: Encoding) -> CliResult {
    // Planned through a read-only handle, as `put`: a missing key or
    // damage on its path is refused before the writable open.
    let (info, key) = {
        let ro = inspect(path)?;
        let read = ro.engine().begin_read()?;
        let info = find_table(&read, table, encoding)?;
        let key = info.key.parse("key", key)?;
        if !read_before_write(&read, &info, &key).map_err(|e| refusal(path, "delete from", e))? {
            return Err(CliError::new(format!("key not found in table {table:?}")));
        }
        (info, key)
    };
    let db = open(path)?;
    let engine = db.engine();
    let order = info.require_order()?;
    let mut txn = engine.begin_write()?;
    let handle = txn.open_table(&info.name, &info.meta, order)?;
    if txn.remove(handle, &key)?.is_none() {
        return Err(CliError::new(format!("key not found in table {table:?}")));
    }
    txn.commit()?;
    Ok(())
}

fn scan(
    path: &Path,
    table: &str,
    from: Option<&str>,
    to: Option<&str>,
    limit: Option<u64>,
    encoding: Encoding,
) -> CliResult {
    let db = inspect(path)?;
    let read = db.engine().begin_read()?;
    let info = find_table(&read, table, encoding)?;
    let order = info.require_order()?;
    let from = from.map(|k| info.key.parse("--from key", k)).transpose()?;
    let to = to.map(|k| info.key.parse("--to key", k)).transpose()?;
    let Some(handle) = read.open_table(&info.name, order)? else {
        return Err(CliError::new(format!("no table named {table:?}")));
    };
    let lower = from.as_deref().map_or(Bound::Unbounded, Bound::Included);
    let upper = to.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    if let (Some(f), Some(t)) = (&from, &to)
        && order(f, t).is_gt()
    {
        return Err(CliError::new("--from is after --to"));
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (i, entry) in read.range(&handle, lower, upper)?.enumerate() {
        if limit.is_some_and(|l| i as u64 >= l) {
            break;
        }
        let (k, v) = entry?;
        writeln!(
            out,
            "{}\t{}",
            info.key.codec.render(&k),
            info.value.codec.render(v.as_bytes())
        )
        .map_err(pipe)?;
    }
    out.flush().map_err(pipe)
}

fn check(path: &Path) -> CliResult {
    check_path(path)?;
    // For `check` a file that is no database at all is a finding too.
    if let Err(e) = probe(path) {
        return Err(finding(e.message));
    }
    let (report, recovery) = verify(path)?;
    println!(
        "sound: {} trees, {} entries, {} of {} pages reachable",
        report.trees, report.entries, report.reachable_pages, report.file_pages
    );
    if recovery.torn_tail {
        println!("note: the WAL ended in a torn record (a crash during a write); it held nothing acknowledged");
    }
    Ok(())
}

fn compact(path: &Path) -> CliResult {
    let mut db = open_verified(path, "compact")?;
    let before = db.engine().file_len()?;
    db.compact().map_err(|e| CliError::new(e.to_string()))?;
    let after = db.engine().file_len()?;
    println!("compacted: {before} -> {after} bytes");
    Ok(())
}

fn backup(path: &Path, dest: &Path) -> CliResult {
    // Before the open, which writes to the database: the destination, and
    // every table's key order (the library refuses an order this process
    // does not know, and the command line knows none but byte order).
    Database::check_backup_paths(path, dest)
        .map_err(|e| CliError::new(format!("backup to {} refused: {e}", dest.display())))?;
    inspect(path)?.check_backup_orders().map_err(|e| {
        CliError::new(format!(
            "refusing to back up {}: {e}; nothing was written",
            path.display()
        ))
    })?;
    let db = open_verified(path, "back up")?;
    let bar = progress_spinner("copying");
    let report = db
        .backup_with_progress(dest, |n| bar.set_position(n))
        .map_err(|e| CliError::new(format!("backup to {} failed: {e}", dest.display())))?;
    bar.finish_and_clear();
    println!(
        "backed up sequence {}: {} tables, {} entries, {} bytes to {}",
        report.sequence,
        report.tables,
        report.entries,
        report.bytes,
        dest.display()
    );
    Ok(())
}

/// A spinner counting entries on stderr, drawn only on a terminal.
pub(crate) fn progress_spinner(what: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg}: {pos} entries ({per_sec})") {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}
