//! What a long operation (pull, push, build) reports while it runs. The Docker
//! API writes each event as one line of docker's JSON stream; a caller that only
//! wants the outcome (the CRI's `PullImage`) drains the stream to its end.

use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq)]
pub enum ProgressEvent {
    /// A status line, about one layer when `id` is set ("Pulling fs layer").
    Status { id: Option<String>, status: String },
    /// Build output: step headers, RUN's output (docker's `stream`).
    Output(String),
    /// The image a build made (docker's `aux.ID`).
    Built { id: String },
    /// The manifest a push stored (docker's `aux` Tag, Digest, Size).
    Pushed {
        tag: String,
        digest: String,
        size: usize,
    },
    /// The operation failed; nothing follows.
    Error(String),
}

/// The receiving end of an operation's events.
pub type ProgressStream = mpsc::Receiver<ProgressEvent>;

/// The sending end, held by the operation.
#[derive(Clone)]
pub(crate) struct Progress {
    tx: mpsc::Sender<ProgressEvent>,
    /// Build output is left out (`build -q`); status, results and errors are not.
    quiet: bool,
}

impl Progress {
    /// A new stream; `quiet` drops build output.
    pub(crate) fn channel(quiet: bool) -> (Progress, ProgressStream) {
        let (tx, rx) = mpsc::channel(64);
        (Progress { tx, quiet }, rx)
    }

    /// Sends an event; a reader that went away stops nothing (the operation
    /// completes, as docker's does when its client disconnects).
    pub(crate) async fn send(&self, event: ProgressEvent) {
        let _ = self.tx.send(event).await;
    }

    pub(crate) async fn status(&self, id: Option<&str>, status: &str) {
        self.send(ProgressEvent::Status {
            id: id.map(String::from),
            status: status.to_string(),
        })
        .await;
    }

    /// Build output, unless quiet.
    pub(crate) async fn stream(&self, text: impl Into<String>) {
        if !self.quiet {
            self.send(ProgressEvent::Output(text.into())).await;
        }
    }

    pub(crate) async fn error(&self, message: &str) {
        self.send(ProgressEvent::Error(message.to_string())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn quiet_drops_only_build_output() {
        let (p, mut rx) = Progress::channel(true);
        p.stream("Step 1/2\n").await;
        p.status(Some("abc"), "Pull complete").await;
        p.send(ProgressEvent::Built {
            id: "sha256:x".into(),
        })
        .await;
        p.error("boom").await;
        drop(p);
        let mut seen = Vec::new();
        while let Some(e) = rx.recv().await {
            seen.push(e);
        }
        assert_eq!(
            seen,
            [
                ProgressEvent::Status {
                    id: Some("abc".into()),
                    status: "Pull complete".into()
                },
                ProgressEvent::Built {
                    id: "sha256:x".into()
                },
                ProgressEvent::Error("boom".into()),
            ]
        );
    }
}
