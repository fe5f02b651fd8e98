//! The context long work runs under. A pipeline, an encoder or an import takes a [`JobCtx`],
//! reports [`Progress`] through it and calls [`JobCtx::check`] between steps (denoising steps,
//! frames, files) so a cancel takes effect within one step.
//!
//! This crate knows nothing of threads, async runtimes or storage: the studio's job registry owns
//! those and hands a `JobCtx` in.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use mintframe_types::Progress;

/// Returned by [`JobCtx::check`] once the job has been cancelled. Work that sees it stops, removes
/// what it half-made and returns it upward unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the job was cancelled")]
pub struct Cancelled;

/// A cancel flag shared between the job and whoever may cancel it.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

type Sink = Arc<dyn Fn(&Progress) + Send + Sync>;
type PreviewSink = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// Progress and cancellation for one job. Cheap to clone; clones share the token and the sinks.
#[derive(Clone)]
pub struct JobCtx {
    cancel: CancelToken,
    sink: Sink,
    preview: Option<PreviewSink>,
}

impl fmt::Debug for JobCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobCtx")
            .field("cancelled", &self.cancel.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl JobCtx {
    /// A context whose progress goes to `sink`. The sink must return quickly: it runs on the
    /// worker thread between steps (a UI forwards to a bounded channel and drops when full).
    pub fn new(cancel: CancelToken, sink: impl Fn(&Progress) + Send + Sync + 'static) -> JobCtx {
        JobCtx {
            cancel,
            sink: Arc::new(sink),
            preview: None,
        }
    }

    /// Also takes small images of the work so far (PNG bytes), for a progress view.
    pub fn with_preview(mut self, sink: impl Fn(&[u8]) + Send + Sync + 'static) -> JobCtx {
        self.preview = Some(Arc::new(sink));
        self
    }

    /// Whether anyone looks at previews: work skips making them when nobody does.
    pub fn wants_preview(&self) -> bool {
        self.preview.is_some()
    }

    /// A PNG of the work so far.
    pub fn preview(&self, png: &[u8]) {
        if let Some(p) = &self.preview {
            p(png);
        }
    }

    /// A context nobody watches and nobody cancels, for tests and one-off calls.
    pub fn detached() -> JobCtx {
        JobCtx::new(CancelToken::new(), |_| {})
    }

    pub fn progress(&self, stage: &str, step: u64, total: u64) {
        (self.sink)(&Progress {
            stage: stage.to_owned(),
            step,
            total,
        });
    }

    /// `Err(Cancelled)` once a cancel was asked for.
    pub fn check(&self) -> Result<(), Cancelled> {
        if self.cancel.is_cancelled() {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }

    pub fn cancel_token(&self) -> &CancelToken {
        &self.cancel
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn progress_reaches_the_sink_in_order() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = Arc::clone(&seen);
        let ctx = JobCtx::new(CancelToken::new(), move |p| {
            seen2
                .lock()
                .expect("lock")
                .push((p.stage.clone(), p.step, p.total));
        });
        ctx.progress("hash", 1, 3);
        ctx.clone().progress("hash", 2, 3);
        assert_eq!(
            *seen.lock().expect("lock"),
            vec![("hash".to_owned(), 1, 3), ("hash".to_owned(), 2, 3)]
        );
    }

    #[test]
    fn cancel_is_seen_by_every_clone() {
        let token = CancelToken::new();
        let ctx = JobCtx::new(token.clone(), |_| {});
        let other = ctx.clone();
        assert_eq!(other.check(), Ok(()));
        token.cancel();
        assert_eq!(ctx.check(), Err(Cancelled));
        assert_eq!(other.check(), Err(Cancelled));
    }
}
