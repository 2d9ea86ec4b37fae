//! Docker-style events (`die`, `start`, `destroy`, ...), broadcast to waiters and to
//! `/events` subscribers.

use std::collections::BTreeMap;

use tokio::sync::broadcast;

#[derive(Debug, Clone)]
pub struct Event {
    /// container | image
    pub kind: &'static str,
    pub action: String,
    pub id: String,
    pub attributes: BTreeMap<String, String>,
    pub time_nano: i64,
}

pub struct EventBus {
    tx: broadcast::Sender<Event>,
}

impl EventBus {
    pub fn new() -> EventBus {
        let (tx, _) = broadcast::channel(1024);
        EventBus { tx }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    pub fn emit(
        &self,
        kind: &'static str,
        action: &str,
        id: &str,
        attributes: BTreeMap<String, String>,
    ) {
        let time_nano = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        // No subscribers is fine.
        let _ = self.tx.send(Event {
            kind,
            action: action.to_string(),
            id: id.to_string(),
            attributes,
            time_nano,
        });
    }
}
