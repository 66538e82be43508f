//! Free space on the data directory's filesystem, looked at before every
//! write that adds data. RocksDB that meets a full disk in the middle of a
//! WAL append stops accepting writes until it is reopened; refusing (AE)
//! while space is below `min_free_disk` keeps it from ever getting there,
//! and accepting resumes by itself once space is freed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::StoreError;

#[derive(Debug)]
pub struct DiskSpace {
    dir: PathBuf,
    min_free: u64,
    /// Whether the last look found too little (for the log: one line per change).
    low: AtomicBool,
}

impl DiskSpace {
    pub fn new(dir: &Path, min_free: u64) -> DiskSpace {
        DiskSpace { dir: dir.to_path_buf(), min_free, low: AtomicBool::new(false) }
    }

    /// Bytes free for this process on the data directory's filesystem.
    pub fn free_bytes(&self) -> std::io::Result<u64> {
        let path = std::ffi::CString::new(self.dir.as_os_str().as_encoded_bytes()).map_err(std::io::Error::other)?;
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: a NUL-terminated path and a statvfs the call fills in.
        if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
    }

    /// `Err(DiskFull)` while free space is below `min_free_disk`.
    pub fn ensure_room(&self) -> Result<(), StoreError> {
        match self.shortage() {
            None => Ok(()),
            Some(reason) => Err(StoreError::DiskFull(reason)),
        }
    }

    /// Why writes are refused now, if they are.
    pub fn shortage(&self) -> Option<String> {
        if self.min_free == 0 {
            return None;
        }
        // A filesystem that cannot be asked is not judged: the write itself will tell.
        let free = self.free_bytes().ok()?;
        let low = free < self.min_free;
        if self.low.swap(low, Ordering::Relaxed) != low {
            if low {
                tracing::error!(free_bytes = free, min_free_disk = self.min_free, dir = %self.dir.display(), "disk nearly full: new messages get AE until space is freed");
            } else {
                tracing::warn!(free_bytes = free, dir = %self.dir.display(), "disk space freed: accepting messages again");
            }
        }
        low.then(|| format!("disk nearly full: {} MiB free in {}, below min_free_disk ({} MiB)", free >> 20, self.dir.display(), self.min_free >> 20))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_below_the_minimum_and_never_with_zero() {
        let dir = tempfile::tempdir().unwrap();
        assert!(DiskSpace::new(dir.path(), 0).ensure_room().is_ok());
        assert!(DiskSpace::new(dir.path(), 1).ensure_room().is_ok());
        let err = DiskSpace::new(dir.path(), u64::MAX).ensure_room().unwrap_err();
        assert!(err.to_string().contains("disk nearly full") && err.to_string().contains("min_free_disk"), "{err}");
    }
}
