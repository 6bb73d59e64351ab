//! Time: the only reader of the wall clock is [`SystemClock`].

use std::sync::atomic::{AtomicI64, Ordering};

/// Seconds since the Unix epoch, as every token claim and store row counts time.
pub type Timestamp = i64;

/// A source of the current time, passed to everything that judges expiry.
pub trait Clock: Send + Sync + 'static {
    /// The current time in Unix seconds.
    fn now(&self) -> Timestamp;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(clippy::disallowed_methods, reason = "the one place that reads the wall clock")]
    fn now(&self) -> Timestamp {
        let since_epoch =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX)
    }
}

/// A clock that tests set and advance; it never moves by itself.
#[derive(Debug, Default)]
pub struct MockClock {
    now: AtomicI64,
}

impl MockClock {
    /// A clock standing at `now`.
    #[must_use]
    pub fn at(now: Timestamp) -> Self {
        Self { now: AtomicI64::new(now) }
    }

    /// A clock standing at the real current time (real clients check `exp`).
    #[must_use]
    pub fn starting_now() -> Self {
        Self::at(SystemClock.now())
    }

    /// Moves the clock forward by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.now.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for MockClock {
    fn now(&self) -> Timestamp {
        self.now.load(Ordering::SeqCst)
    }
}
