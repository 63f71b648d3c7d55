//! Running the `sluice` binary from the CLI tests (`mod cli_support;` in
//! each): a module of its own, not `common`, because it names the binary,
//! which only a build with the `cli` feature has.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

/// Serializes a test binary's subprocesses with its own database handles. A
/// child inherits every open file between its fork and its exec
/// (close-on-exec acts only at the exec), so a child that another test
/// spawns could briefly share the `flock` of a database this test just
/// closed, and the next command would find it locked.
static SERIAL: Mutex<()> = Mutex::new(());

/// Held while a test opens a database or runs the binary.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `sluice args`, as it ended (whatever its status).
pub fn run(args: &[&str]) -> Output {
    let _serial = serial();
    Command::new(env!("CARGO_BIN_EXE_sluice")).args(args).output().unwrap()
}

/// Runs `sluice args` and asserts it did not panic.
pub fn sluice(args: &[&str]) -> Output {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "sluice {args:?} panicked: {stderr}");
    out
}

/// Runs and expects success; returns stdout.
pub fn ok(args: &[&str]) -> String {
    let out = sluice(args);
    assert!(
        out.status.success(),
        "sluice {args:?} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs and expects failure with `code`; returns stderr.
pub fn fails(args: &[&str], code: i32) -> String {
    let out = sluice(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "sluice {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// Every file under `dir` with its bytes, and every directory as an empty
/// entry (so that a directory made and left empty shows).
pub fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut all = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.insert(path.clone(), Vec::new());
            all.extend(files(&path));
        } else {
            all.insert(path.clone(), std::fs::read(&path).unwrap());
        }
    }
    all
}
