//! Disk faults. The data directory on a tmpfs of a fixed size that the test
//! mounts (Linux; it needs root, as CI runs: without it the test says so and
//! passes nothing off as tested), filled up by a ballast file beside the
//! store: while free space is below `min_free_disk` every message gets AE
//! (never AA, never a hang), the server keeps running and `/readyz` says not
//! ready; once the ballast goes it accepts again, with every acknowledged
//! message still queued. And a data directory that cannot be opened stops
//! start-up with one line naming the path and the cause.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{RawClient, SLUICE, Sluice, ack_field, adt, http_get};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A tmpfs mounted on `at`, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// `None` where mounting is not permitted (root in a container without the capability).
    fn mount(at: &Path, options: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", options, "tmpfs"]).arg(at).output().expect("run mount");
        if !out.status.success() {
            eprintln!("SKIPPED: mount -t tmpfs -o {options} on {} was refused: {}", at.display(), String::from_utf8_lossy(&out.stderr).trim());
            return None;
        }
        Some(Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn free_bytes(path: &Path) -> u64 {
    let out = Command::new("df").args(["--output=avail", "-B1"]).arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().nth(1).and_then(|l| l.trim().parse().ok()).expect("df output")
}

/// Writes zeros until `path`'s filesystem has less than `leave` bytes free.
fn fill(ballast: &Path, leave: u64) {
    let mut file = std::fs::File::create(ballast).unwrap();
    let chunk = vec![0u8; 1 << 20];
    while free_bytes(ballast) >= leave {
        file.write_all(&chunk).unwrap();
        file.flush().unwrap();
    }
}

fn answer(client: &mut RawClient, id: &str) -> (String, String) {
    let ack = client.send(&adt(id));
    (ack_field(&ack, "MSA", 1), String::from_utf8_lossy(&ack).into_owned())
}

#[test]
fn a_full_disk_gets_ae_and_not_ready_until_space_is_freed_and_loses_nothing() {
    if !is_root() {
        eprintln!("SKIPPED: mounting the small filesystem this test fills needs root (CI runs as root)");
        return;
    }
    let mut sluice = Sluice::prepare("min_free_disk = \"64MiB\"\n[connectors.lab]\n");
    let Some(_disk) = Tmpfs::mount(&sluice.data_dir(), "size=512m") else { return };
    sluice.launch();
    let admin = sluice.admin_addr();
    let mut client = sluice.client();
    let mut acked = Vec::new();
    for i in 0..20 {
        let id = format!("BEFORE-{i}");
        assert_eq!(answer(&mut client, &id).0, "AA");
        acked.push(id);
    }
    assert_eq!(http_get(admin, "/readyz", None).0, 200);

    let ballast = sluice.data_dir().join("ballast");
    fill(&ballast, 32 << 20);
    for i in 0..50 {
        let (code, ack) = answer(&mut client, &format!("FULL-{i}"));
        assert_eq!(code, "AE", "a full disk answers AE: {ack}");
        assert!(ack.contains("disk nearly full"), "the AE says why: {ack}");
    }
    let (status, body) = http_get(admin, "/readyz", None);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("disk nearly full") && body.contains("min_free_disk"), "{body}");
    assert!(sluice.is_running());
    // A new connection is served too (with AE), never left hanging.
    assert_eq!(answer(&mut sluice.client(), "FULL-NEW").0, "AE");

    std::fs::remove_file(&ballast).unwrap();
    for i in 0..20 {
        let id = format!("AFTER-{i}");
        assert_eq!(answer(&mut client, &id).0, "AA", "accepted again once space is freed");
        acked.push(id);
    }
    assert_eq!(http_get(admin, "/readyz", None).0, 200);
    assert_eq!(sluice.outbox("lab"), acked, "every acknowledged message is queued, in order; no AE'd one is");
    // The shortage is logged when it starts and when it ends, not once per refused message:
    // a log line per message would itself fill a disk that is already short.
    let log = sluice.log();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "one ERROR line for the whole shortage: {errors:#?}");
    assert!(errors[0].contains("disk nearly full"), "{errors:#?}");
    assert_eq!(log.matches("accepting messages again").count(), 1, "{log}");
}

#[test]
fn a_data_directory_locked_by_another_server_stops_start_up_with_one_clear_line() {
    let sluice = Sluice::start("");
    let config = sluice.dir.path().join("second.toml");
    std::fs::write(&config, format!("listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n[admin]\nlisten = \"off\"\n", sluice.data_dir().display().to_string()))
        .unwrap();
    let out = Command::new(SLUICE).args(["serve", "--config"]).arg(&config).output().unwrap();
    assert!(!out.status.success(), "a second server on the same store must not start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.lines().last().unwrap_or_default();
    assert!(line.contains(&sluice.data_dir().display().to_string()), "names the path: {stderr}");
    assert!(line.to_lowercase().contains("lock"), "names the cause: {stderr}");
    assert!(sluice.client().send(&adt("STILL-1")).starts_with(b"MSH"), "the first server is unharmed");
}

#[test]
fn a_data_directory_that_cannot_be_written_stops_start_up_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Root passes any permission check, so as root the directory is a read-only mount.
    let _mount = if is_root() {
        let Some(mount) = Tmpfs::mount(&data, "size=1m,ro") else { return };
        Some(mount)
    } else {
        std::fs::create_dir_all(&data).unwrap();
        let mut perms = std::fs::metadata(&data).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o500);
        std::fs::set_permissions(&data, perms).unwrap();
        None
    };
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, format!("listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n[admin]\nlisten = \"off\"\n", data.display().to_string())).unwrap();
    let out = Command::new(SLUICE).args(["serve", "--config"]).arg(&config).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.lines().last().unwrap_or_default();
    assert!(line.starts_with("sluice: "), "{stderr}");
    assert!(line.contains(&data.display().to_string()), "names the path: {stderr}");
    assert!(line.contains("Read-only file system") || line.contains("Permission denied"), "names the cause: {stderr}");
}
