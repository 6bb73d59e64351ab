//! Sessions read in the last second, so that an API call does not read the database
//! each time. What this instance changes it changes here too; a change made by another
//! instance (a sign-out, a back-channel logout) is seen here within [`FRESH_FOR`].
//! Refreshes do not depend on it: they read the store under the session's lock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::Session;

/// How long a session read from the store is used without reading it again.
pub const FRESH_FOR: Duration = Duration::from_secs(1);
/// Entries kept at most; past it, stale ones go, then all.
const CAPACITY: usize = 100_000;

#[derive(Default)]
pub struct SessionCache {
    entries: Mutex<HashMap<String, (Session, Instant)>>,
}

impl SessionCache {
    /// The session under `id_hash` if it was read or written here within [`FRESH_FOR`].
    pub fn get(&self, id_hash: &str) -> Option<Session> {
        let entries = self.entries.lock().ok()?;
        let (session, at) = entries.get(id_hash)?;
        (at.elapsed() < FRESH_FOR).then(|| session.clone())
    }

    pub fn put(&self, session: Session) {
        let Ok(mut entries) = self.entries.lock() else { return };
        if entries.len() >= CAPACITY {
            entries.retain(|_, (_, at)| at.elapsed() < FRESH_FOR);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(session.id_hash.clone(), (session, Instant::now()));
    }

    pub fn remove(&self, id_hash: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(id_hash);
        }
    }

    /// Forgets the sessions a back-channel logout ended (see `Store::delete_matching`).
    pub fn remove_matching(&self, sid: Option<&str>, sub: Option<&str>) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (session, _)| match (sid, sub) {
                (Some(sid), Some(sub)) => !(session.sid == sid && session.sub == sub),
                (Some(sid), None) => session.sid != sid,
                (None, Some(sub)) => session.sub != sub,
                (None, None) => true,
            });
        }
    }
}
