//! Log output: one line per event on standard output, written in batches by a thread of its
//! own, so a request only formats its line.
//!
//! Writing each line where it was logged cost a `write` system call per request (and, to a pipe,
//! waking its reader): about a quarter of the CPU of `GET /bff/user` when standard output is a
//! pipe, as it is under a container runtime (BENCHMARKS.md). Now a line is appended to a shared
//! buffer, and the writer thread, woken by the first line, lets lines gather for
//! [`BATCH_INTERVAL`] and writes them in one call. Nothing is dropped:
//! when more than [`MAX_PENDING`] bytes wait (standard output is stuck), the logging thread waits
//! for the writer, as it would have waited on the pipe. The [`LogGuard`] that [`init_logging`]
//! returns writes what is left when it is dropped, at the end of `main`.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use tracing_subscriber::fmt::MakeWriter;

/// Bytes that may wait for the writer thread before logging blocks.
const MAX_PENDING: usize = 1 << 20;

/// How long the writer lets lines gather once one has arrived: a line reaches standard output
/// at most this much later.
const BATCH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(2);

/// Installs the process's log subscriber in its default format (JSON lines unless standard
/// output is a terminal), without traces, for the benchmark's server (`cargo xtask bench
/// proxy`), so it pays for the same logging as production; `main` calls
/// [`crate::telemetry::init`] with its configuration. Keep the guard until the end: dropping it
/// writes the last lines.
#[must_use = "dropping the guard stops the log writer"]
pub fn init_logging() -> crate::telemetry::Telemetry {
    crate::telemetry::init_with(
        &crate::config::LogConfig::default(),
        &crate::config::TracingConfig::default(),
    )
    .unwrap_or_else(|e| {
        eprintln!("bff-server: {e}");
        std::process::exit(1)
    })
}

/// Stops the log writer when dropped, after it has written every pending line.
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogGuard").finish_non_exhaustive()
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        lock(&self.shared.state).closed = true;
        self.shared.wake_writer.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Shared {
    state: Mutex<State>,
    /// The writer waits here for lines.
    wake_writer: Condvar,
    /// Loggers wait here while the buffer is full.
    drained: Condvar,
    /// Where lines go once the writer has stopped (events logged after the guard is dropped).
    late: Mutex<Box<dyn Write + Send>>,
}

struct State {
    pending: Vec<u8>,
    closed: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves bytes, not a broken invariant: keep logging.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The `MakeWriter` handed to the subscriber.
pub(crate) struct BatchedWriter(Arc<Shared>);

/// Takes one formatted event (the subscriber writes each event with one `write_all`).
pub(crate) struct LineSink<'a>(&'a Shared);

impl<'a> MakeWriter<'a> for BatchedWriter {
    type Writer = LineSink<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineSink(&self.0)
    }
}

impl Write for LineSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let shared = self.0;
        let mut state = lock(&shared.state);
        while state.pending.len() >= MAX_PENDING && !state.closed {
            state = shared
                .drained
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if state.closed {
            drop(state);
            lock(&shared.late).write_all(buf)?;
            return Ok(buf.len());
        }
        let writer_idle = state.pending.is_empty();
        state.pending.extend_from_slice(buf);
        drop(state);
        // A writer with pending bytes is busy and takes these too; only an idle one is asleep.
        if writer_idle {
            shared.wake_writer.notify_one();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A writer for the subscriber and the guard of the thread that writes its lines to `out`.
pub(crate) fn batched(out: Box<dyn Write + Send>) -> (BatchedWriter, LogGuard) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            pending: Vec::new(),
            closed: false,
        }),
        wake_writer: Condvar::new(),
        drained: Condvar::new(),
        late: Mutex::new(out),
    });
    let writer_shared = shared.clone();
    let thread = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || write_batches(&writer_shared))
        .ok();
    if thread.is_none() {
        // No thread: every line goes straight out, as before.
        lock(&shared.state).closed = true;
    }
    (BatchedWriter(shared.clone()), LogGuard { shared, thread })
}

fn write_batches(shared: &Shared) {
    let mut batch = Vec::new();
    loop {
        {
            let mut state = lock(&shared.state);
            while state.pending.is_empty() && !state.closed {
                state = shared
                    .wake_writer
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if state.pending.is_empty() {
                return;
            }
            if !state.closed {
                // Let the lines of a busy moment gather: a wake-up and a write per line would
                // cost about what writing them in place did.
                drop(state);
                std::thread::sleep(BATCH_INTERVAL);
                state = lock(&shared.state);
            }
            std::mem::swap(&mut state.pending, &mut batch);
        }
        shared.drained.notify_all();
        let mut out = lock(&shared.late);
        // Nowhere to report a failed write of the log itself.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        drop(out);
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    /// An output the test can read, optionally slow.
    #[derive(Clone, Default)]
    struct Captured {
        bytes: Arc<Mutex<Vec<u8>>>,
        writes: Arc<Mutex<usize>>,
        delay: Option<std::time::Duration>,
    }

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if let Some(delay) = self.delay {
                std::thread::sleep(delay);
            }
            *self.writes.lock().unwrap() += 1;
            self.bytes.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn log_lines(writer: &BatchedWriter, thread: usize, count: usize) {
        for n in 0..count {
            writer
                .make_writer()
                .write_all(format!("thread {thread} line {n}\n").as_bytes())
                .unwrap();
        }
    }

    #[test]
    fn every_line_arrives_whole_and_in_order_per_thread() {
        let out = Captured::default();
        let (writer, guard) = batched(Box::new(out.clone()));
        let writer = Arc::new(writer);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let writer = writer.clone();
                std::thread::spawn(move || log_lines(&writer, t, 2_000))
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(guard);
        let text = String::from_utf8(out.bytes.lock().unwrap().clone()).unwrap();
        for t in 0..4 {
            let mine: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with(&format!("thread {t} ")))
                .collect();
            let expected: Vec<String> =
                (0..2_000).map(|n| format!("thread {t} line {n}")).collect();
            assert_eq!(mine, expected, "thread {t}");
        }
        assert_eq!(text.lines().count(), 8_000);
    }

    #[test]
    fn lines_are_written_in_batches_and_a_full_buffer_waits_instead_of_dropping() {
        // A slow output: lines pile up while one write is in progress, and with lines of 100 kB
        // the buffer fills, so loggers must wait for the writer rather than lose lines.
        let out = Captured {
            delay: Some(std::time::Duration::from_millis(2)),
            ..Captured::default()
        };
        let (writer, guard) = batched(Box::new(out.clone()));
        let line = format!("{}\n", "x".repeat(100_000));
        for _ in 0..40 {
            writer.make_writer().write_all(line.as_bytes()).unwrap();
        }
        drop(guard);
        assert_eq!(out.bytes.lock().unwrap().len(), 40 * line.len());
        let writes = *out.writes.lock().unwrap();
        assert!(writes < 40, "{writes} writes for 40 lines: not batched");
    }

    #[test]
    fn lines_logged_after_the_guard_is_dropped_still_arrive() {
        let out = Captured::default();
        let (writer, guard) = batched(Box::new(out.clone()));
        drop(guard);
        writer.make_writer().write_all(b"late line\n").unwrap();
        assert_eq!(out.bytes.lock().unwrap().as_slice(), b"late line\n");
    }
}
