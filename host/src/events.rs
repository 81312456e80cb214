//! Publishing Kubernetes events.
//!
//! kube's [`Recorder`] keeps every event it published for six minutes, to
//! count repeats as a series, and prunes only when it publishes again: after
//! a wave of 2,000 ReservedIPs it held thousands of events for as long as
//! the operator stayed idle (the benchmark's memory figure). A repeat is
//! recognised by reason and object alone, not by the note, so a second event
//! of the same reason (a policy's new version loaded, another refusal)
//! became a count on the first, still showing the first's note. The
//! operator announces each change once, so a series count buys nothing
//! here: each event is published by a recorder of its own, and nothing is
//! kept.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, Recorder, Reporter};

/// Publishes events as one reporter (a controller or a watcher).
pub struct Events {
    client: Client,
    reporter: Reporter,
}

impl Events {
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Events { client, reporter }
    }

    pub async fn publish(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        Recorder::new(self.client.clone(), self.reporter.clone())
            .publish(event, regarding)
            .await
    }
}
