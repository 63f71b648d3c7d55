//! Key types whose order is not byte order, for the typed-API tests, and a
//! crash-simulating disk under a `Database`.

#![allow(dead_code)]

use sluicedb::io::TearMode;
use sluicedb::{Builder, Database};

/// A string key type named `$name` ordered by `$compare`.
macro_rules! str_key {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $compare:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $ty;

        impl sluicedb::Value for $ty {
            type SelfType<'a> = &'a str;
            type AsBytes<'a> = &'a str;

            fn fixed_width() -> Option<usize> {
                None
            }

            fn from_bytes<'a>(data: &'a [u8]) -> &'a str
            where
                Self: 'a,
            {
                std::str::from_utf8(data).expect("test keys are UTF-8")
            }

            fn as_bytes<'a, 'b: 'a>(value: &'a &'b str) -> &'a str
            where
                Self: 'b,
            {
                value
            }

            fn type_name() -> sluicedb::TypeName {
                sluicedb::TypeName::new($name)
            }
        }

        impl sluicedb::Key for $ty {
            fn compare(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
                let compare: fn(&[u8], &[u8]) -> std::cmp::Ordering = $compare;
                compare(a, b)
            }
        }
    };
}

/// A `u64` key type named `$name`, stored as `$to` writes it and read back
/// with `$from`, ordered by `$compare` over the stored bytes.
#[allow(unused_macros)]
macro_rules! u64_key {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $from:expr, $to:expr, $compare:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $ty;

        impl sluicedb::Value for $ty {
            type SelfType<'a> = u64;
            type AsBytes<'a> = [u8; 8];

            fn fixed_width() -> Option<usize> {
                Some(8)
            }

            fn from_bytes<'a>(data: &'a [u8]) -> u64
            where
                Self: 'a,
            {
                let from: fn([u8; 8]) -> u64 = $from;
                from(data.try_into().expect("an 8-byte key"))
            }

            fn as_bytes<'a, 'b: 'a>(value: &'a u64) -> [u8; 8]
            where
                Self: 'b,
            {
                let to: fn(u64) -> [u8; 8] = $to;
                to(*value)
            }

            fn type_name() -> sluicedb::TypeName {
                sluicedb::TypeName::new($name)
            }
        }

        impl sluicedb::Key for $ty {
            fn compare(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
                let compare: fn(&[u8], &[u8]) -> std::cmp::Ordering = $compare;
                compare(a, b)
            }
        }
    };
}

// Test files that define their own key types use the macros; others do not.
#[allow(unused_imports)]
pub(crate) use {str_key, u64_key};

str_key!(
    /// Strings in reverse byte order.
    Reversed,
    "test::Reversed",
    |a, b| b.cmp(a)
);

str_key!(
    /// ASCII strings compared without case: "apple" and "APPLE" are one key.
    CaseInsensitive,
    "test::CaseInsensitive",
    |a, b| a.to_ascii_lowercase().cmp(&b.to_ascii_lowercase())
);

/// A data file and WAL directory that crash together
/// ([`sluicedb::io::CrashDisk`]: images of one instant), with a database
/// opener.
#[derive(Clone)]
pub struct CrashDisk(sluicedb::io::CrashDisk);

impl std::ops::Deref for CrashDisk {
    type Target = sluicedb::io::CrashDisk;

    fn deref(&self) -> &sluicedb::io::CrashDisk {
        &self.0
    }
}

impl CrashDisk {
    pub fn new() -> Self {
        Self(sluicedb::io::CrashDisk::new())
    }

    /// Opens (or creates) a database on this disk.
    pub fn open(&self, builder: &Builder) -> Database {
        builder
            .create_with_backends(self.data.clone(), self.wal.clone())
            .expect("the database opens")
    }

    /// What a restart after a power cut finds.
    pub fn crashed(&self, mode: TearMode) -> CrashDisk {
        Self(self.0.crashed(mode))
    }
}

/// Runs the test `name` of the current test binary in a fresh process (so
/// that nothing this process learned, such as key types it used, carries
/// over) with `SLUICE_CHILD` set to `arg`; panics if it fails.
pub fn run_in_child_process(name: &str, arg: &str) {
    let output = std::process::Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env("SLUICE_CHILD", arg)
        .output()
        .expect("the child process runs");
    assert!(
        output.status.success(),
        "child process failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The argument of a child process started by [`run_in_child_process`].
pub fn child_arg() -> Option<String> {
    std::env::var("SLUICE_CHILD").ok()
}

/// A key of `len` bytes for the long-key tests (ASCII, as `Reversed`
/// wants UTF-8): a long shared prefix, so neighbours differ late and
/// separators are about as long as the keys, then `id` in hex.
pub fn long_key(len: usize, id: u64) -> Vec<u8> {
    let id = format!("{id:016x}");
    let mut k = vec![b'k'; len.saturating_sub(id.len())];
    k.extend_from_slice(&id.as_bytes()[id.len() - len.min(id.len())..]);
    k
}

/// A `long_key` as the `&str` a `Reversed` table takes.
pub fn text(key: &[u8]) -> &str {
    std::str::from_utf8(key).unwrap()
}
