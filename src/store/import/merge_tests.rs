//! One batch against a real SQLite file: new rows many per statement, the same serial twice in
//! a batch, a conflict, a serial issued here, and a re-run that changes nothing.

use serde_json::json;

use super::super::{ImportOutcome, ImportRow, ImportedCertificate, ImportedRevocation};
use crate::store::{AuditEvent, Store};

fn cert(serial: &str, der: u8) -> ImportRow {
    ImportRow {
        serial: serial.into(),
        certificate: Some(ImportedCertificate {
            subject: format!("CN={serial}"),
            not_after: 4_000_000_000,
            der: vec![0x30, der],
            sha256: format!("{der:064x}"),
        }),
        revocation: None,
    }
}

fn revoked(serial: &str, reason: &str) -> ImportRow {
    ImportRow {
        serial: serial.into(),
        certificate: None,
        revocation: Some(ImportedRevocation {
            revoked_at: 1_700_000_000,
            reason: Some(reason.into()),
            invalidity_date: None,
        }),
    }
}

async fn batch(store: &Store, rows: &[ImportRow]) -> Vec<ImportOutcome> {
    let event = AuditEvent::now("history-imported", "cli", "test", json!({}));
    store
        .import_batch("legacy", "import", rows, None, &event, 1)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_batch_merges_new_known_and_repeated_serials() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    let store = Store::open(&url, 2).await.unwrap();
    // 250 new rows (three INSERT statements), one of them revoked later in the same batch, and
    // one certificate repeated with other contents.
    let mut rows: Vec<ImportRow> = (0..250).map(|i| cert(&format!("{i:040x}"), 1)).collect();
    rows.push(revoked(&format!("{:040x}", 7), "keyCompromise"));
    rows.push(cert(&format!("{:040x}", 9), 2));
    let outcomes = batch(&store, &rows).await;
    assert!(
        outcomes[..250]
            .iter()
            .all(|o| *o == ImportOutcome::Imported)
    );
    assert_eq!(outcomes[250], ImportOutcome::Updated);
    assert!(matches!(
        outcomes[251],
        ImportOutcome::Refused("conflict", _)
    ));
    assert_eq!(store.imported_count("legacy").await.unwrap(), 250);
    let status = store
        .imported_status("legacy", &format!("{:040x}", 7))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        status.revocation.unwrap().reason.as_deref(),
        Some("keyCompromise")
    );

    // A re-run: everything already there, the revocation kept.
    let outcomes = batch(&store, &rows[..251]).await;
    assert!(outcomes.iter().all(|o| *o == ImportOutcome::AlreadyThere));
    // A revocation-only row completed by its certificate.
    let outcomes = batch(
        &store,
        &[revoked("ff", "cessationOfOperation"), cert("ee", 3)],
    )
    .await;
    assert_eq!(outcomes, vec![ImportOutcome::Imported; 2]);
    let outcomes = batch(&store, &[cert("ff", 4)]).await;
    assert_eq!(outcomes, vec![ImportOutcome::Updated]);
}
