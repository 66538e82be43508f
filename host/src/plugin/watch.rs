//! Hot reload: watches the plugins folder and reloads a plugin when its
//! `.wasm` file is written, replaced (also by rename) or removed. Events are
//! debounced, so a file being copied in is read once it is complete, and
//! compiling runs on a low-priority thread, away from the message path.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::catalog::{Catalog, plugin_name};

/// Quiet time after the last event before the changed files are read.
const DEBOUNCE: Duration = Duration::from_millis(100);

/// Starts watching; the returned task ends when `shutdown` is cancelled.
pub fn watch(catalog: Arc<Catalog>, shutdown: tokio_util::sync::CancellationToken) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let dir = catalog.dir().to_path_buf();
    std::fs::create_dir_all(&dir).map_err(|err| anyhow::anyhow!("cannot create the plugins folder {}: {err}", dir.display()))?;
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| match event {
        Ok(event) if is_change(&event.kind) => {
            for path in event.paths.into_iter().filter(|p| plugin_name(p).is_some()) {
                let _ = tx.send(path);
            }
        }
        Ok(_) => {}
        Err(err) => tracing::warn!("plugins folder watch error: {err}"),
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    tracing::info!(dir = %dir.display(), "watching the plugins folder for changes");
    Ok(tokio::spawn(async move {
        let _watcher = watcher;
        loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => return,
                path = rx.recv() => match path { Some(path) => path, None => return },
            };
            let mut changed = BTreeSet::from([first]);
            while let Ok(Some(path)) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                changed.insert(path);
            }
            // On a thread of its own at compile priority (a blocking-pool
            // thread also serves the store, so it must keep its priority).
            let catalog = catalog.clone();
            let (done, reloaded) = tokio::sync::oneshot::channel();
            let spawned = std::thread::Builder::new().name("sluice-reload".into()).spawn(move || {
                super::priority::lower_this_thread();
                for path in &changed {
                    catalog.reload(path);
                }
                let _ = done.send(());
            });
            match spawned {
                Ok(_) => {
                    if reloaded.await.is_err() {
                        tracing::error!("plugin reload failed (its thread ended early)");
                    }
                }
                Err(err) => tracing::error!("cannot start a thread to reload plugins: {err}"),
            }
        }
    }))
}

/// Writes, creations, renames and removals; not reads (we read the files
/// ourselves, and must not react to that).
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Other | EventKind::Any => false,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
    }
}
