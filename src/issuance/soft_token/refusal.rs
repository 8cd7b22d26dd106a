//! Auditing a refusal of the soft-token pipeline (and of the REST API, which shares it): who,
//! from where, which rule and the operator message, never a PIN or a header value. A refusal
//! issues nothing.

use serde_json::json;

use crate::identity::Connection;
use crate::issuance::{Gateway, IssuanceError};
use crate::store::AuditEvent;

impl Gateway {
    /// Audits a refusal: who (the verified client certificate's fingerprint if there is one,
    /// else the peer), from where (the TCP peer), which rule, and the operator message. Never
    /// a PIN or a header value. Returns the error.
    pub async fn refuse_on(
        &self,
        connection: &Connection,
        path: &str,
        request_id: &str,
        error: IssuanceError,
    ) -> IssuanceError {
        let rules = self.rules();
        let handler = crate::rules::decode_remainder(path)
            .ok()
            .and_then(|remainder| rules.select(&remainder))
            .map(|h| format!("handler.{}", h.number));
        self.record_refusal(
            connection,
            path,
            handler.as_deref().unwrap_or("none"),
            request_id,
            error,
        )
        .await
    }

    /// Audits a refusal at `path` (counted in metrics under `label`) and returns it.
    pub(crate) async fn record_refusal(
        &self,
        connection: &Connection,
        path: &str,
        label: &str,
        request_id: &str,
        error: IssuanceError,
    ) -> IssuanceError {
        let peer = connection.peer.ip().to_string();
        let certificate = connection
            .client_certificate
            .as_ref()
            .map(|c| c.fingerprint().to_string());
        let actor = match &certificate {
            Some(fingerprint) => format!("certificate:{fingerprint}"),
            None => format!("peer:{peer}"),
        };
        crate::issuance::metrics::refused(label, error.code().as_str());
        let rule = match &error {
            IssuanceError::Trust(trust) => trust.rule(),
            other => other.code().as_str(),
        };
        let detail = json!({
            "code": error.code(),
            "rule": rule,
            "reason": error.to_string(),
            "path": path,
            "peer": peer,
            "clientCertificate": certificate,
        });
        let event = AuditEvent::now("refused", &actor, request_id, detail);
        // Aggregated per peer, code and minute: a flood of refusals adds rows per minute, not
        // per request (the store bounds the stored path, too).
        // A refusal about load (overload, rate limit) must not wait for the database it is
        // protecting: its row, when one is written, goes with the writer's next batch.
        let code = error.code().as_str();
        let recorded = if error.retry_after().is_some() {
            self.store.record_load_refusal(&peer, code, &event).await
        } else {
            self.store.record_refusal(&peer, code, &event).await
        };
        if let Err(e) = recorded {
            tracing::error!(target: "audit", request_id, error = %e, "could not record a refusal in the audit table");
        }
        error
    }
}
