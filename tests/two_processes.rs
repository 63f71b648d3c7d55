//! Two processes opening one database: the second gets a clear error, and
//! can open it once the first has closed it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use sluicedb::{Database, DatabaseError};

const HOLD: &str = "SLUICE_TEST_HOLD_DB";

#[test]
fn a_second_process_is_refused_until_the_first_closes() {
    if let Ok(path) = std::env::var(HOLD) {
        // Child: hold the database open until the parent closes our stdin.
        let _db = Database::create(&path).unwrap();
        println!("ready");
        std::io::stdout().flush().unwrap();
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "a_second_process_is_refused_until_the_first_closes",
            "--exact",
            "--nocapture",
        ])
        .env(HOLD, &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.unwrap().contains("ready")),
        "the child never opened the database"
    );
    match Database::open(&path) {
        Err(DatabaseError::DatabaseAlreadyOpen) => {}
        other => panic!("expected DatabaseAlreadyOpen, got {:?}", other.err()),
    }
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    Database::open(&path).unwrap();
}
