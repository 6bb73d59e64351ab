//! Group commit on PostgreSQL for the two hot single-use changes, a code's redemption
//! and a refresh token's rotation: the ones that arrive while a batch is in flight wait
//! for the next, and one statement carries them all, so the server pays one statement,
//! one commit and one round trip for many (as SQLite's writer batches its writes).
//! Nothing waits for a timer: a change that finds no batch in flight is sent at once,
//! alone, so a batch grows with the load and only with it.
//!
//! Each statement keeps every item's own conditions and reports, by the item's
//! position, those it changed; an item it did not change (unknown, used, expired, a
//! mismatch, a row another transaction holds, or the same value twice in one batch)
//! goes on to the full check, which answers it alone. A batch locks its rows first and
//! skips a row another transaction holds rather than wait for it: so it never stands
//! in line behind one value's lock, nor, holding some, deadlocks with another.

use std::sync::{Arc, Mutex, PoisonError};

use futures_util::future::BoxFuture;
use sqlx::Row as _;
use sqlx::postgres::PgRow;
use tokio::sync::oneshot;

use super::connections::Connections;

/// Batches in flight at once, per kind and instance. One is enough: a batch waits for
/// no lock, and the queue behind it becomes the next batch. Measured for code
/// redemption on two cores with PostgreSQL beside the server: one batch redeemed
/// 17.6-18.9k codes/s, two 14.9-17.1k, three and four 15.4-15.6k.
const BATCHES_IN_FLIGHT: usize = 1;
/// The most items one statement carries.
const BATCH_SIZE: usize = 64;

/// One kind of batched change: its item and its statement.
pub(super) trait Batched: Send + Sync + 'static {
    type Item: Send + Sync + 'static;
    /// Runs one statement for `items`, returning a row for each item it changed, with
    /// the item's 1-based index in `items` in the column `position`.
    fn run<'a>(
        pool: &'a Connections,
        items: &'a [Self::Item],
    ) -> BoxFuture<'a, Result<Vec<PgRow>, sqlx::Error>>;
}

/// What a waiting item is told: its row if the batch changed it, nothing if the batch
/// did not (the full check decides), or the batch's failure.
pub(super) type Outcome = Result<Option<PgRow>, Arc<sqlx::Error>>;

struct Waiting<T> {
    item: T,
    answer: oneshot::Sender<Outcome>,
}

struct Queue<T> {
    waiting: Vec<Waiting<T>>,
    in_flight: usize,
}

/// The items of kind `B` waiting for their statement.
pub(super) struct Batches<B: Batched> {
    queue: Arc<Mutex<Queue<B::Item>>>,
    pool: Connections,
}

impl<B: Batched> Clone for Batches<B> {
    fn clone(&self) -> Self {
        Self { queue: self.queue.clone(), pool: self.pool.clone() }
    }
}

impl<B: Batched> Batches<B> {
    pub(super) fn new(pool: Connections) -> Self {
        Self { queue: Arc::new(Mutex::new(Queue { waiting: Vec::new(), in_flight: 0 })), pool }
    }

    /// Sends `item` with the next batch and waits for its outcome.
    pub(super) async fn submit(&self, item: B::Item) -> Outcome {
        let (answer, answered) = oneshot::channel();
        let start = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.waiting.push(Waiting { item, answer });
            let start = queue.in_flight < BATCHES_IN_FLIGHT;
            if start {
                queue.in_flight += 1;
            }
            start
        };
        if start {
            // A task of its own, so an item whose request goes away mid-flight does
            // not take the others' answers with it.
            tokio::spawn(self.clone().send_batches());
        }
        answered.await.unwrap_or_else(|_| Err(Arc::new(sqlx::Error::WorkerCrashed)))
    }

    /// Sends what waits, one batch at a time, until nothing does.
    async fn send_batches(self) {
        let mut sender = Sender { queue: &self.queue, done: false };
        loop {
            let batch: Vec<Waiting<B::Item>> = {
                let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
                if queue.waiting.is_empty() {
                    queue.in_flight -= 1;
                    sender.done = true;
                    return;
                }
                let take = queue.waiting.len().min(BATCH_SIZE);
                queue.waiting.drain(..take).collect()
            };
            let (items, answers): (Vec<B::Item>, Vec<oneshot::Sender<Outcome>>) =
                batch.into_iter().map(|waiting| (waiting.item, waiting.answer)).unzip();
            let outcome = B::run(&self.pool, &items).await.and_then(|rows| by_position(rows, items.len()));
            match outcome {
                Ok(rows) => {
                    for (answer, row) in answers.into_iter().zip(rows) {
                        let _ = answer.send(Ok(row));
                    }
                }
                // A failed batch, or one whose rows cannot be told apart (changed, but
                // not known which): each item settles its own as a lost answer.
                Err(error) => {
                    let error = Arc::new(error);
                    for answer in answers {
                        let _ = answer.send(Err(error.clone()));
                    }
                }
            }
        }
    }
}

/// A sender of batches that did not finish (its task panicked or was cancelled) gives
/// up its slot and fails what waits, so no later item waits for a sender that is gone.
struct Sender<'a, T> {
    queue: &'a Mutex<Queue<T>>,
    done: bool,
}

impl<T> Drop for Sender<'_, T> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.in_flight -= 1;
        // Dropping their senders answers them `WorkerCrashed`.
        queue.waiting.clear();
    }
}

/// The rows of a batch of `batch_size` by the position (1-based) each names.
fn by_position(rows: Vec<PgRow>, batch_size: usize) -> Result<Vec<Option<PgRow>>, sqlx::Error> {
    let mut slots: Vec<Option<PgRow>> = std::iter::repeat_with(|| None).take(batch_size).collect();
    for row in rows {
        let position: i64 = row.try_get("position")?;
        let slot = usize::try_from(position - 1).ok().and_then(|index| slots.get_mut(index));
        let Some(slot) = slot else {
            return Err(sqlx::Error::Protocol(format!(
                "a batch of {batch_size} returned position {position}"
            )));
        };
        *slot = Some(row);
    }
    Ok(slots)
}

/// A batch's failure, as each of its items reports it.
#[derive(Debug)]
pub(super) struct BatchFailed(pub(super) Arc<sqlx::Error>);

impl std::fmt::Display for BatchFailed {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "batched statement: {}", self.0)
    }
}

impl std::error::Error for BatchFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr as _;
    use std::time::Duration;

    use futures_util::FutureExt as _;
    use sqlx::postgres::PgConnectOptions;

    use super::{Batched, Batches, Connections};

    /// A batch that changes nothing, or panics when an item asks it to.
    struct Panicking;

    impl Batched for Panicking {
        type Item = bool;
        fn run<'a>(
            _: &'a Connections,
            items: &'a [bool],
        ) -> futures_util::future::BoxFuture<'a, Result<Vec<sqlx::postgres::PgRow>, sqlx::Error>> {
            let panics = items.iter().any(|&panics| panics);
            async move {
                assert!(!panics, "the batch's statement panicked");
                Ok(Vec::new())
            }
            .boxed()
        }
    }

    #[tokio::test]
    async fn a_sender_that_panicked_fails_its_batch_and_holds_up_no_later_one() {
        // Never connected: the batches above send nothing to it.
        let options = PgConnectOptions::from_str("postgres://127.0.0.1:1/none").unwrap();
        let batches =
            Batches::<Panicking>::new(Connections::new(options, 1, Duration::from_secs(1)).unwrap());

        let crashed = batches.submit(true).await;
        let crashed = crashed.expect_err("a panicked batch answered");
        assert!(matches!(*crashed, sqlx::Error::WorkerCrashed), "{crashed:?}");

        let later = tokio::time::timeout(Duration::from_secs(2), batches.submit(false)).await;
        assert!(matches!(later, Ok(Ok(None))), "a later item waits for a sender that is gone: {later:?}");
    }
}
