//! `DATA_DIR/admin.addr`: where the running server's admin endpoint is, so
//! the CLI finds it even when `admin.listen` asked for port 0.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;

pub const ADDR_FILE: &str = "admin.addr";

/// The written file; removed again when dropped (at a clean shutdown).
#[derive(Debug)]
pub struct AddrFile {
    path: PathBuf,
}

impl AddrFile {
    /// Writes `addr` to `data_dir`, replacing a stale file atomically.
    pub fn write(data_dir: &Path, addr: SocketAddr) -> anyhow::Result<AddrFile> {
        let path = data_dir.join(ADDR_FILE);
        let written = tempfile::NamedTempFile::new_in(data_dir).and_then(|mut tmp| {
            std::io::Write::write_all(&mut tmp, format!("{addr}\n").as_bytes())?;
            tmp.persist(&path).map_err(|err| err.error)
        });
        written.with_context(|| format!("failed to write the admin address to {}", path.display()))?;
        Ok(AddrFile { path })
    }
}

impl Drop for AddrFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The address a server on `data_dir` wrote, if there is one (it may be stale after a crash).
pub fn read(data_dir: &Path) -> Option<SocketAddr> {
    std::fs::read_to_string(data_dir.join(ADDR_FILE)).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_read_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let addr: SocketAddr = "127.0.0.1:4321".parse().unwrap();
        let file = AddrFile::write(dir.path(), addr).unwrap();
        assert_eq!(read(dir.path()), Some(addr));
        drop(file);
        assert_eq!(read(dir.path()), None);
        assert!(!dir.path().join(ADDR_FILE).exists());
    }
}
