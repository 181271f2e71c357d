//! The filewatch example's logic (`examples_support::filewatch`) against a real file
//! and real clients over loopback: the content on connect, then every change, whether
//! the file is rewritten in place or replaced by a rename (as editors save).

mod common;

use std::fs;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{recv, recv_until, Server};
use melody_tokio::Config;

/// A fresh directory under the system's temporary one, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("melody-filewatch-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn sessions_follow_the_file() {
    let dir = TempDir::new();
    let path = dir.0.join("watched.txt");
    let server = Server::start(Config::default());
    let watch = examples_support::filewatch(&server.melody, &path).expect("watch the file");
    assert!(path.exists(), "a missing file is created");
    assert_eq!(watch.path(), fs::canonicalize(&path).unwrap());

    // A session gets the content on connect: the new file is empty.
    let mut a = server.connect("/ws");
    assert_eq!(recv(&mut a), "t:");

    // Rewritten in place: every session gets the new content (a write may show as
    // more than one change, so intermediate contents are skipped).
    fs::write(&path, "first").unwrap();
    recv_until(&mut a, "t:first");

    // A later session starts from the current content.
    let mut b = server.connect("/ws");
    assert_eq!(recv(&mut b), "t:first");

    // Replaced by a rename, as an editor saves: still followed.
    let copy = dir.0.join("watched.txt.new");
    fs::write(&copy, "second\nline").unwrap();
    fs::rename(&copy, &path).unwrap();
    recv_until(&mut a, "t:second\nline");
    recv_until(&mut b, "t:second\nline");
}
