//! `dump` and `load`: every table in key order as stable text, and back.
//!
//! Both formats hold the same things in the same order: a header line, then
//! per table (by name) a table line with its name and raw metadata, then its
//! entries in key order, then an end line with the counts. A load reads
//! the dump twice (standard input is spooled to a file beside the
//! database): the first pass writes nothing, so a truncated or damaged
//! dump is refused whole, not half loaded. Keys and values are hex, so
//! any bytes round-trip: a dump loaded into a new database dumps to the
//! same bytes.
//!
//! ```text
//! jsonl                                         hex
//! {"format":"jsonl","sluice_dump":1}             sluice-dump 1 hex
//! {"key_type":..,"meta":"<hex>",..,"table":"t"} table <name hex> <meta hex>
//! {"k":"<hex>","v":"<hex>"}                      ' <key hex> <value hex>'
//! {"end":true,"entries":N,"tables":T}           end <tables> <entries>
//! ```

use std::io::{BufRead, BufWriter, Write};
use std::ops::Bound;
use std::path::Path;

use serde_json::{Value, json};
use sluicedb::Database;
use sluicedb::btree::{Comparator, bytewise};
use sluicedb::engine::{Durability, Engine, TableRef, WriteTxn};

use crate::codec::{from_hex, to_hex};
use crate::{CliError, CliResult, Encoding, TableInfo, open_error, pipe, progress_spinner};
use sluicedb::TableMeta;

/// A load batch is committed once it holds this many bytes.
const LOAD_BATCH_BYTES: usize = 4 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Jsonl,
    Hex,
}

impl Format {
    pub(crate) fn parse(name: &str) -> CliResult<Self> {
        match name {
            "jsonl" | "json" => Ok(Self::Jsonl),
            "hex" => Ok(Self::Hex),
            other => Err(CliError::new(format!(
                "unknown dump format {other:?}: use jsonl or hex"
            ))),
        }
    }
}

struct Writer<W: Write> {
    out: W,
    format: Format,
}

impl<W: Write> Writer<W> {
    fn header(&mut self) -> std::io::Result<()> {
        match self.format {
            Format::Jsonl => writeln!(self.out, "{}", json!({"sluice_dump": 1, "format": "jsonl"})),
            Format::Hex => writeln!(self.out, "sluice-dump 1 hex"),
        }
    }

    fn table(&mut self, name: &[u8], meta: &[u8]) -> std::io::Result<()> {
        match self.format {
            Format::Jsonl => {
                let mut line = serde_json::Map::new();
                match std::str::from_utf8(name) {
                    Ok(name) => line.insert("table".into(), name.into()),
                    Err(_) => line.insert("table_hex".into(), to_hex(name).into()),
                };
                line.insert("meta".into(), to_hex(meta).into());
                // For readers only; `load` takes the metadata from "meta".
                if let Some(m) = TableMeta::decode(meta) {
                    line.insert("key_type".into(), m.key_type.into());
                    line.insert("value_type".into(), m.value_type.into());
                }
                writeln!(self.out, "{}", Value::Object(line))
            }
            Format::Hex => writeln!(self.out, "table {} {}", to_hex(name), to_hex(meta)),
        }
    }

    fn entry(&mut self, key: &[u8], value: &[u8]) -> std::io::Result<()> {
        match self.format {
            Format::Jsonl => writeln!(self.out, "{{\"k\":\"{}\",\"v\":\"{}\"}}", to_hex(key), to_hex(value)),
            Format::Hex => writeln!(self.out, " {} {}", to_hex(key), to_hex(value)),
        }
    }

    fn end(&mut self, tables: u64, entries: u64) -> std::io::Result<()> {
        match self.format {
            Format::Jsonl => writeln!(
                self.out,
                "{}",
                json!({"end": true, "tables": tables, "entries": entries})
            ),
            Format::Hex => writeln!(self.out, "end {tables} {entries}"),
        }
    }
}

pub(crate) fn dump(engine: &Engine, only: Option<&str>, format: Format, output: Option<&Path>) -> CliResult {
    let read = engine.begin_read()?;
    let mut tables = Vec::new();
    for (name, meta) in read.list_tables()? {
        // sluicedb's own tables (persistent savepoints) are not user data,
        // as a backup does not copy them: loaded, a copy would list
        // savepoints whose pinned commits it lacks.
        if sluicedb::is_reserved_table_name(&name) || only.is_some_and(|t| t.as_bytes() != name.as_slice()) {
            continue;
        }
        let order = read.table_order(&name)?.flatten();
        let info = TableInfo::new(name, meta, order, Encoding::default());
        // Refused before anything is written: a dump is whole or nothing.
        info.require_order()?;
        tables.push(info);
    }
    if let Some(t) = only
        && tables.is_empty()
    {
        return Err(CliError::new(format!("no table named {t:?} (see `sluice tables`)")));
    }
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    let sink: Box<dyn Write> = match output {
        Some(path) => {
            Box::new(std::fs::File::create(path).map_err(|e| CliError::new(format!("{}: {e}", path.display())))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let mut w = Writer {
        out: BufWriter::with_capacity(1 << 20, sink),
        format,
    };
    let bar = progress_spinner("dumping");
    w.header().map_err(pipe)?;
    let mut entries = 0u64;
    for info in &tables {
        w.table(&info.name, &info.meta).map_err(pipe)?;
        let order = info.require_order()?;
        let Some(handle) = read.open_table(&info.name, order)? else {
            continue;
        };
        for entry in read.range(&handle, Bound::Unbounded, Bound::Unbounded)? {
            let (k, v) = entry?;
            w.entry(&k, v.as_bytes()).map_err(pipe)?;
            entries += 1;
            if entries.is_multiple_of(4096) {
                bar.set_position(entries);
            }
        }
    }
    w.end(tables.len() as u64, entries).map_err(pipe)?;
    w.out.flush().map_err(pipe)?;
    bar.finish_and_clear();
    Ok(())
}

/// One line of a dump.
enum Line {
    Table { name: Vec<u8>, meta: Vec<u8> },
    Entry { key: Vec<u8>, value: Vec<u8> },
    End { tables: u64, entries: u64 },
}

fn parse_line(format: Format, line: &str) -> Result<Line, String> {
    match format {
        Format::Hex => {
            if let Some(rest) = line.strip_prefix(' ') {
                let (k, v) = rest.split_once(' ').ok_or("an entry needs a key and a value")?;
                return Ok(Line::Entry {
                    key: from_hex(k)?,
                    value: from_hex(v)?,
                });
            }
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                ["table", name, meta] => Ok(Line::Table {
                    name: from_hex(name)?,
                    meta: from_hex(meta)?,
                }),
                ["end", tables, entries] => Ok(Line::End {
                    tables: tables.parse().map_err(|_| "bad table count")?,
                    entries: entries.parse().map_err(|_| "bad entry count")?,
                }),
                _ => Err("not a table, entry or end line".into()),
            }
        }
        Format::Jsonl => {
            let value: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
            let text = |field: &str| value.get(field).and_then(Value::as_str);
            if let (Some(k), Some(v)) = (text("k"), text("v")) {
                return Ok(Line::Entry {
                    key: from_hex(k)?,
                    value: from_hex(v)?,
                });
            }
            if let Some(meta) = text("meta") {
                let name = match (text("table"), text("table_hex")) {
                    (Some(name), _) => name.as_bytes().to_vec(),
                    (None, Some(hex)) => from_hex(hex)?,
                    (None, None) => return Err("a table line needs \"table\"".into()),
                };
                return Ok(Line::Table {
                    name,
                    meta: from_hex(meta)?,
                });
            }
            if value.get("end").is_some() {
                let count = |f: &str| value.get(f).and_then(Value::as_u64).ok_or(format!("bad {f} count"));
                return Ok(Line::End {
                    tables: count("tables")?,
                    entries: count("entries")?,
                });
            }
            Err("not a table, entry or end line".into())
        }
    }
}

/// The table being loaded and its open write transaction.
struct Loading<'e> {
    engine: &'e Engine,
    name: Vec<u8>,
    meta: Vec<u8>,
    order: Comparator,
    /// Always `Some` between calls; taken to commit.
    txn: Option<(Box<WriteTxn>, TableRef)>,
    batch: usize,
}

impl<'e> Loading<'e> {
    fn begin(engine: &'e Engine, name: Vec<u8>, meta: Vec<u8>, order: Comparator) -> CliResult<Self> {
        let mut loading = Self {
            engine,
            name,
            meta,
            order,
            txn: None,
            batch: 0,
        };
        loading.txn = Some(loading.begin_txn()?);
        Ok(loading)
    }

    fn begin_txn(&self) -> CliResult<(Box<WriteTxn>, TableRef)> {
        let mut txn = self.engine.begin_write()?;
        txn.set_durability(Durability::None);
        let table = txn.open_table(&self.name, &self.meta, self.order)?;
        Ok((txn, table))
    }

    fn insert(&mut self, key: &[u8], value: &[u8]) -> CliResult {
        // Sorted input (what `dump` writes) is the fast path: each batch
        // goes into the memtable and then the tree in order. Any order still
        // loads correctly; a repeated key keeps its last value.
        let Some((txn, table)) = self.txn.as_mut() else {
            return Err(CliError::new("internal: no load transaction"));
        };
        txn.insert(*table, key, value)?;
        self.batch += key.len() + value.len();
        if self.batch >= LOAD_BATCH_BYTES {
            self.commit()?;
            self.txn = Some(self.begin_txn()?);
            self.batch = 0;
        }
        Ok(())
    }

    fn commit(&mut self) -> CliResult {
        if let Some((txn, _)) = self.txn.take() {
            txn.commit()?;
        }
        Ok(())
    }
}

/// The order a loaded table gets: byte order, which every table `dump`
/// writes has; a custom order cannot be loaded without its key type.
fn load_order(name: &[u8], meta: &[u8]) -> CliResult<Comparator> {
    match TableMeta::decode(meta) {
        Some(m) if !m.bytewise => Err(CliError::new(format!(
            "table {:?} has a custom key order: the command line cannot load it",
            String::from_utf8_lossy(name)
        ))),
        _ => Ok(bytewise),
    }
}

/// A dump read from standard input, kept in a file beside the database
/// until the load ends, so that it can be read twice.
struct Spool(std::path::PathBuf);

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn spool_stdin(db: &Path) -> CliResult<Spool> {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".load-spool");
    let spool = Spool(db.with_file_name(name));
    let _ = std::fs::remove_file(&spool.0);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&spool.0)
        .map_err(|e| CliError::new(format!("{}: {e}", spool.0.display())))?;
    std::io::copy(&mut std::io::stdin().lock(), &mut file)?;
    Ok(spool)
}

/// Reads the dump at `path`: its format from the header line, then every
/// other line, parsed, to `each` with its line number.
fn read_dump(path: &Path, mut each: impl FnMut(usize, Line) -> CliResult) -> CliResult {
    let file = std::fs::File::open(path).map_err(|e| CliError::new(format!("{}: {e}", path.display())))?;
    let mut lines = std::io::BufReader::with_capacity(1 << 20, file).lines();
    let first = lines
        .next()
        .transpose()?
        .ok_or_else(|| CliError::new("the dump is empty"))?;
    let format = if first == "sluice-dump 1 hex" {
        Format::Hex
    } else if serde_json::from_str::<Value>(&first)
        .ok()
        .and_then(|v| v.get("sluice_dump").and_then(Value::as_u64))
        == Some(1)
    {
        Format::Jsonl
    } else {
        return Err(CliError::new(
            "not a sluice dump: the first line must be `sluice-dump 1 hex` or {\"sluice_dump\":1,...}",
        ));
    };
    for (n, line) in lines.enumerate() {
        let line = line?;
        let parsed = parse_line(format, &line).map_err(|e| CliError::new(format!("dump line {}: {e}", n + 2)))?;
        each(n + 2, parsed)?;
    }
    Ok(())
}

/// The first pass of a load, which writes nothing: every line parses, no
/// entry comes before a table line or anything after the end line, the end
/// line's counts are the dump's, and every table can be loaded. Returns the
/// tables with their metadata.
fn check_dump(path: &Path) -> CliResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut tables: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    // The current table's recorded key and value widths (`None`: any).
    let mut widths: (Option<usize>, Option<usize>) = (None, None);
    let (mut entries, mut ended) = (0u64, false);
    read_dump(path, |n, line| {
        let at = |e: String| CliError::new(format!("dump line {n}: {e}"));
        if ended {
            return Err(at("text after the end line".into()));
        }
        match line {
            Line::Table { name, meta } => {
                if sluicedb::is_reserved_table_name(&name) {
                    return Err(at(format!(
                        "table {:?} is one of sluicedb's own (persistent savepoints): a dump holds user tables only",
                        String::from_utf8_lossy(&name)
                    )));
                }
                load_order(&name, &meta)?;
                // Each table once: a second set of types would be written
                // into the table the first created.
                if tables.iter().any(|(seen, _)| *seen == name) {
                    return Err(at(format!(
                        "table {:?} appears a second time",
                        String::from_utf8_lossy(&name)
                    )));
                }
                widths = TableMeta::decode(&meta).and_then(|m| m.widths).unwrap_or((None, None));
                tables.push((name, meta));
            }
            Line::Entry { .. } if tables.is_empty() => return Err(at("an entry before any table line".into())),
            Line::Entry { key, value } => {
                let table = tables
                    .last()
                    .map(|(name, _)| String::from_utf8_lossy(name))
                    .unwrap_or_default();
                check_entry(&table, widths, &key, &value).map_err(at)?;
                entries += 1;
            }
            Line::End { tables: t, entries: e } => {
                if (t, e) != (tables.len() as u64, entries) {
                    return Err(at(format!(
                        "the end line counts {t} tables and {e} entries, the dump held {} and {entries}",
                        tables.len()
                    )));
                }
                ended = true;
            }
        }
        Ok(())
    })?;
    if !ended {
        return Err(CliError::new(format!(
            "the dump is truncated (no end line after {} tables and {entries} entries): nothing was loaded",
            tables.len()
        )));
    }
    Ok(tables)
}

/// Whether an entry of table `table` (whose recorded key and value widths
/// are `widths`) can be loaded: within the engine's size limits, and as
/// wide as a fixed-width type (a program reading the table would take other
/// bytes for another value, as `put` refuses them). Checked in the first
/// pass, so that a dump with such an entry loads nothing.
fn check_entry(table: &str, widths: (Option<usize>, Option<usize>), key: &[u8], value: &[u8]) -> Result<(), String> {
    if key.len() > sluicedb::btree::MAX_KEY_LEN {
        return Err(format!(
            "a key of {} bytes in table {table:?}, over the {} bytes a key may have",
            key.len(),
            sluicedb::btree::MAX_KEY_LEN
        ));
    }
    if value.len() > sluicedb::btree::MAX_VALUE_LEN {
        return Err(format!(
            "a value of {} bytes in table {table:?}, over the {} bytes a value may have",
            value.len(),
            sluicedb::btree::MAX_VALUE_LEN
        ));
    }
    for (what, width, bytes) in [("key", widths.0, key), ("value", widths.1, value)] {
        if let Some(width) = width
            && bytes.len() != width
        {
            return Err(format!(
                "a {what} of {} bytes in table {table:?}, whose {what} type is {width} bytes wide",
                bytes.len()
            ));
        }
    }
    Ok(())
}

/// Loads a dump in two passes: the first reads it whole and writes nothing
/// (`check_dump`), so a truncated or damaged dump, one whose table exists
/// here with other types or appears twice, or one with an entry too large
/// or of the wrong width for its table's types, is refused before anything
/// is loaded; the second loads it in batches, each table in key order.
pub(crate) fn load(path: &Path, input: Option<&Path>) -> CliResult {
    let spool;
    let dump = match input {
        Some(p) => p,
        None => {
            spool = spool_stdin(path)?;
            spool.0.as_path()
        }
    };
    let dump_tables = check_dump(dump)?;
    if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
        crate::verify_before(path, "load into")?;
    }
    let db = Database::builder().create(path).map_err(|e| open_error(path, e))?;
    let engine = db.engine();
    let existing = engine.begin_read()?.list_tables()?;
    for (name, meta) in &dump_tables {
        if existing.iter().any(|(n, stored)| n == name && stored != meta) {
            return Err(CliError::new(format!(
                "table {:?} exists with other types than the dump's: nothing was loaded",
                String::from_utf8_lossy(name)
            )));
        }
    }
    let bar = progress_spinner("loading");
    let mut current: Option<Loading<'_>> = None;
    let (mut tables, mut entries) = (0u64, 0u64);
    read_dump(dump, |_, line| {
        match line {
            Line::Table { name, meta } => {
                if let Some(mut done) = current.take() {
                    done.commit()?;
                }
                let order = load_order(&name, &meta)?;
                current = Some(Loading::begin(engine, name, meta, order)?);
                tables += 1;
            }
            Line::Entry { key, value } => {
                let Some(loading) = current.as_mut() else {
                    return Err(CliError::new("the dump changed while it was loaded"));
                };
                loading.insert(&key, &value)?;
                entries += 1;
                if entries.is_multiple_of(4096) {
                    bar.set_position(entries);
                }
            }
            Line::End { .. } => {}
        }
        Ok(())
    })?;
    if let Some(mut done) = current.take() {
        done.commit()?;
    }
    db.close().map_err(|e| CliError::new(e.to_string()))?;
    bar.finish_and_clear();
    println!("loaded {tables} tables, {entries} entries into {}", path.display());
    Ok(())
}
