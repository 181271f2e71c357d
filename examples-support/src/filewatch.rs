//! olahol/melody's filewatch: every session sees a file's content, live.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use melody_driver::{Melody, Runtime};
use notify::{Event, RecommendedWatcher, RecursiveMode, Watcher};

/// Watches a file for as long as it lives; dropping it stops the broadcasts.
pub struct FileWatch {
    _watcher: RecommendedWatcher,
    path: PathBuf,
}

impl FileWatch {
    /// The watched file, as an absolute path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// olahol/melody's filewatch: `path`'s content goes to each session when it connects,
/// and to every session whenever the file changes. The file is created, empty, if
/// missing.
///
/// The watching happens outside every handler, on the `notify` crate's own thread:
/// it reads the file there (blocking I/O has no place in a handler) and broadcasts
/// the new content when it differs from the last one. `on_connect` writes the last
/// content read, so a connecting session never reads the file either.
///
/// The directory is watched rather than the file, so that a file an editor replaces
/// (write a copy, rename it over the original) is still followed.
pub fn filewatch<R: Runtime>(melody: &Melody<R>, path: &Path) -> io::Result<FileWatch> {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let path = fs::canonicalize(path)?;
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::other(format!(
            "{} is not a file",
            path.display()
        )));
    };
    let (dir, name) = (dir.to_owned(), name.to_owned());
    let content = Arc::new(Mutex::new(read(&path)));

    // The lock is held while a session's first message or a broadcast is queued
    // (both only queue), so that a session connecting during a change never ends with
    // the older content: it gets the old one then the broadcast, or only the new one.
    let latest = Arc::clone(&content);
    melody.on_connect(move |session| {
        session.write(&lock(&latest));
    });

    let melody = melody.clone();
    let file = path.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
        let Ok(event) = event else { return };
        let ours = event.paths.iter().any(|p| p.file_name() == Some(&*name));
        if !ours || !(event.kind.is_create() || event.kind.is_modify()) {
            return;
        }
        let now = read(&file);
        let mut last = lock(&content);
        if *last != now {
            *last = now;
            melody.broadcast(&last);
        }
    })
    .map_err(io::Error::other)?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(io::Error::other)?;
    Ok(FileWatch {
        _watcher: watcher,
        path,
    })
}

/// The file's content as text (invalid UTF-8 replaced); empty if it cannot be read,
/// say while an editor replaces it.
fn read(path: &Path) -> String {
    fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

fn lock(content: &Mutex<String>) -> MutexGuard<'_, String> {
    content
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
