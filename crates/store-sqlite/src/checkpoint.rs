//! The checkpointer thread: copies committed WAL frames back into the
//! database file off the writer's path.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its
//! threshold, on the writer thread, so every transaction queued behind that
//! commit waits for the copy too. Instead the writer nudges this thread
//! after each commit, and it runs PASSIVE checkpoints on its own connection,
//! which block neither the writer nor the readers. The writer keeps a high
//! automatic threshold ([`WRITER_AUTOCHECKPOINT_PAGES`]) as a backstop: a
//! WAL that only restarts when a write begins on a fully copied log could
//! otherwise grow while the writer never pauses.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use rusqlite::Connection;

/// The writer's own automatic checkpoint threshold, in WAL pages (SQLite's
/// default is 1000).
pub(crate) const WRITER_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// The least time between two checkpoints: a page rewritten by many
/// batches in that time is copied once.
const MIN_CHECKPOINT_INTERVAL: Duration = Duration::from_millis(50);

/// The handle the writer nudges; the thread exits when it is dropped.
pub(crate) struct Checkpointer {
    nudges: mpsc::SyncSender<()>,
}

impl Checkpointer {
    /// Starts the thread on `connection` (a read-write connection to the
    /// store's database).
    pub(crate) fn start(connection: Connection) -> std::io::Result<Checkpointer> {
        // One pending nudge is enough: nudges that arrive while one waits
        // are the same request.
        let (nudges, received) = mpsc::sync_channel(1);
        thread::Builder::new()
            .name("store-sqlite-checkpointer".to_string())
            .spawn(move || run(&connection, &received))?;
        Ok(Checkpointer { nudges })
    }

    /// Something was committed: checkpoint soon.
    pub(crate) fn nudge(&self) {
        // Full: a nudge is already pending. Disconnected: the thread died
        // and the writer's own automatic checkpoint takes over.
        let _ = self.nudges.try_send(());
    }
}

fn run(connection: &Connection, nudges: &mpsc::Receiver<()>) {
    while nudges.recv().is_ok() {
        // PASSIVE copies what no reader still needs and never waits.
        if let Err(error) = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(%error, "store checkpoint failed; the writer's automatic checkpoint takes over");
        }
        thread::sleep(MIN_CHECKPOINT_INTERVAL);
    }
}
