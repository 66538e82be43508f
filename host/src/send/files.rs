//! Messages from files: a file may hold one message or several, one after
//! the other; segments may end in `\r`, `\n` or `\r\n`. Sent with `\r`.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// Every message in the given files and directories (a directory's files in name order).
pub fn messages_in(paths: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("failed to read directory {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            entries.sort();
            for file in entries {
                read_file(&file, &mut out)?;
            }
        } else {
            read_file(path, &mut out)?;
        }
    }
    Ok(out)
}

fn read_file(path: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    for message in split_messages(&bytes) {
        out.push((path.to_path_buf(), message));
    }
    Ok(())
}

/// Splits at every segment that starts with `MSH`; joins segments with `\r`.
pub fn split_messages(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut messages: Vec<Vec<u8>> = Vec::new();
    for line in bytes.split(|&b| b == b'\r' || b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)) {
        if line.starts_with(b"MSH") || messages.is_empty() {
            messages.push(Vec::new());
        }
        let current = messages.last_mut().expect("pushed above");
        current.extend_from_slice(line);
        current.push(b'\r');
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_files_with_several_messages_and_any_line_ending() {
        let file = b"MSH|^~\\&|A\r\nPID|1\n\nMSH|^~\\&|B\rPID|2\r";
        assert_eq!(split_messages(file), vec![b"MSH|^~\\&|A\rPID|1\r".to_vec(), b"MSH|^~\\&|B\rPID|2\r".to_vec()]);
    }
}
