//! A small local journal of what waits for the store while it is away (alerts it did not take,
//! outcomes of deliveries it did not record): one JSON file under the data directory, written
//! whole at each change (to a temporary file, synced, then renamed over the old one, so a stop
//! at any moment leaves the old or the new content), removed when nothing waits, and read back
//! at start. A file that cannot be read is set aside as `<name>.bad`, with a log line.

use super::alerts::DeliveryRow;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Larger files are not read (set aside): the journal holds a thousand alerts at most.
const MAX_BYTES: u64 = 16 * 1024 * 1024;

/// An alert as the journal keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JournaledAlert {
    pub kind: String,
    pub key: String,
    pub severity: String,
    pub message: String,
    /// Unix ms.
    pub at: i64,
}

/// Everything that waits for the store, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Waiting {
    pub alerts: Vec<JournaledAlert>,
    pub deliveries: Vec<DeliveryRow>,
}

impl Waiting {
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty() && self.deliveries.is_empty()
    }
}

pub struct Journal {
    path: PathBuf,
}

impl Journal {
    /// The journal `name` (a file name) in `dir`.
    pub fn new(dir: &Path, name: &str) -> Journal {
        Journal {
            path: dir.join(name),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What was waiting when the journal was last written (nothing when there is no file).
    pub fn load(&self) -> Waiting {
        let read = || -> Result<Option<Waiting>, String> {
            let meta = match std::fs::metadata(&self.path) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e.to_string()),
            };
            if meta.len() > MAX_BYTES {
                return Err(format!("{} bytes, more than {MAX_BYTES}", meta.len()));
            }
            let text = std::fs::read(&self.path).map_err(|e| e.to_string())?;
            serde_json::from_slice(&text)
                .map(Some)
                .map_err(|e| e.to_string())
        };
        match read() {
            Ok(w) => w.unwrap_or_default(),
            Err(e) => {
                let aside = self.path.with_extension("bad");
                let moved = std::fs::rename(&self.path, &aside);
                log::error!(
                    "journal {}: cannot be read ({e}); {}",
                    self.path.display(),
                    match moved {
                        Ok(()) => format!("set aside as {}", aside.display()),
                        Err(m) => format!("cannot set it aside either: {m}"),
                    }
                );
                Waiting::default()
            }
        }
    }

    /// Writes `w` in place of what the journal held (removes the file when nothing waits).
    pub fn save(&self, w: &Waiting) -> Result<(), String> {
        let shown = |e: std::io::Error| format!("{}: {e}", self.path.display());
        if w.is_empty() {
            return match std::fs::remove_file(&self.path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(shown(e)),
                _ => Ok(()),
            };
        }
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(shown)?;
        }
        let text = serde_json::to_vec(w).map_err(|e| e.to_string())?;
        let tmp = self.path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp).map_err(shown)?;
        f.write_all(&text).map_err(shown)?;
        f.sync_all().map_err(shown)?;
        std::fs::rename(&tmp, &self.path).map_err(shown)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting() -> Waiting {
        Waiting {
            alerts: vec![JournaledAlert {
                kind: "actor_failed".into(),
                key: "actor:x".into(),
                severity: "critical".into(),
                message: "x failed".into(),
                at: 7,
            }],
            deliveries: vec![DeliveryRow::pending(3, "telegram", 9)],
        }
    }

    #[test]
    fn what_is_saved_is_loaded_and_nothing_waiting_removes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(&dir.path().join("sub"), "journal.json");
        assert_eq!(j.load(), Waiting::default());
        j.save(&waiting()).unwrap();
        assert_eq!(j.load(), waiting());
        j.save(&Waiting::default()).unwrap();
        assert!(!j.path().exists());
        assert_eq!(j.load(), Waiting::default());
    }

    #[test]
    fn an_unreadable_journal_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path(), "journal.json");
        std::fs::write(j.path(), b"{\"alerts\": [nonsense").unwrap();
        assert_eq!(j.load(), Waiting::default());
        assert!(!j.path().exists());
        assert!(dir.path().join("journal.bad").exists());
    }
}
