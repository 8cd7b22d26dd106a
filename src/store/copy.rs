//! Copying a SQLite database into an empty PostgreSQL one (`ast-gateway db copy`): every table
//! the gateway keeps (tokens, certificates, the audit chain and its head and anchors, officers,
//! CRL state, idempotency keys, imported certificates, signed bodies), row for row, so the audit
//! chain verifies on the copy with the same `data/secret.key` and anchor file.
//!
//! Generic over the schema: the tables are those of the SQLite file (in an order where a table
//! comes after the tables its foreign keys name), the columns those of each row, and each value
//! is read and bound as the type of the PostgreSQL column it goes to, so a later migration's
//! table or column is carried without changes here. Both databases are migrated to this
//! version first (by [`Store::open`]). The source is read in one read transaction (a
//! snapshot, also while a gateway still writes to it, though it should be stopped), the target
//! written in one transaction: all or nothing. A target holding any row is refused.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Connection, Row};

use super::{Store, StoreError};

/// Rows read from the source per query.
const PAGE: i64 = 500;

/// Rows copied per table, in copy order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    pub tables: Vec<(String, u64)>,
}

/// The PostgreSQL type a column is read and bound as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Integer,
    Text,
    Bytes,
    Boolean,
    Double,
}

impl Store {
    /// Copies every row of this SQLite database into `target`, an empty PostgreSQL database of
    /// the same schema version. Refuses a target that holds any row (beyond the empty audit
    /// chain head its migration wrote).
    pub async fn copy_to(&self, target: &Store) -> Result<CopyReport, StoreError> {
        if self.is_postgres() || !target.is_postgres() {
            return Err(StoreError::Unsupported(
                "db copy goes from a SQLite database to a PostgreSQL one",
            ));
        }
        let mut source = self.pool.acquire().await?;
        let mut destination = target.pool.acquire().await?;
        let tables = source_tables(&mut source).await?;
        let columns = target_columns(&mut destination).await?;
        refuse_non_empty(&mut destination, &columns).await?;
        sqlx::query("BEGIN").execute(&mut *source).await?;
        let copied = async {
            let mut tx = destination.begin().await?;
            // The migration's empty chain head is replaced by the source's.
            sqlx::query("DELETE FROM audit_head")
                .execute(&mut *tx)
                .await?;
            let mut report = CopyReport::default();
            for table in &tables {
                let Some(kinds) = columns.get(table) else {
                    return Err(StoreError::Corrupt(format!(
                        "table {table} of the SQLite database does not exist in PostgreSQL"
                    )));
                };
                let rows = copy_table(&mut source, &mut tx, table, kinds).await?;
                report.tables.push((table.clone(), rows));
            }
            reset_sequences(&mut tx).await?;
            tx.commit().await?;
            Ok(report)
        }
        .await;
        let _ = sqlx::query("ROLLBACK").execute(&mut *source).await;
        copied
    }

    /// Rows per table of this database (the tables of [`Store::copy_to`]); for checking a copy.
    pub async fn table_counts(&self) -> Result<BTreeMap<String, i64>, StoreError> {
        let mut connection = self.pool.acquire().await?;
        let tables: Vec<String> = if self.is_postgres() {
            target_columns(&mut connection).await?.into_keys().collect()
        } else {
            source_tables(&mut connection).await?
        };
        let mut counts = BTreeMap::new();
        for table in tables {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT count(*) FROM \"{table}\""
            )))
            .fetch_one(&mut *connection)
            .await?;
            counts.insert(table, row.try_get::<i64, _>(0)?);
        }
        Ok(counts)
    }
}

/// The gateway's tables of a SQLite file, parents before the tables whose foreign keys name
/// them (sqlx's bookkeeping and SQLite's own tables left out).
async fn source_tables(connection: &mut AnyConnection) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(
        "SELECT m.name, COALESCE(f.\"table\", '') FROM sqlite_master m \
         LEFT JOIN pragma_foreign_key_list(m.name) f \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx_%' \
         ORDER BY m.name",
    )
    .fetch_all(&mut *connection)
    .await?;
    let mut parents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in &rows {
        let table: String = row.try_get(0)?;
        let parent: String = row.try_get(1)?;
        let entry = parents.entry(table.clone()).or_default();
        if !parent.is_empty() && parent != table {
            entry.insert(parent);
        }
    }
    let mut ordered: Vec<String> = Vec::new();
    while ordered.len() < parents.len() {
        let ready: Vec<String> = parents
            .iter()
            .filter(|(t, p)| !ordered.contains(t) && p.iter().all(|p| ordered.contains(p)))
            .map(|(t, _)| t.clone())
            .collect();
        if ready.is_empty() {
            return Err(StoreError::Corrupt(
                "the SQLite tables' foreign keys form a cycle".into(),
            ));
        }
        ordered.extend(ready);
    }
    Ok(ordered)
}

/// Every table of the target's `public` schema with its columns' types.
async fn target_columns(
    connection: &mut AnyConnection,
) -> Result<BTreeMap<String, BTreeMap<String, Kind>>, StoreError> {
    let rows = sqlx::query(
        "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_sqlx\\_%'",
    )
    .fetch_all(&mut *connection)
    .await?;
    let mut tables: BTreeMap<String, BTreeMap<String, Kind>> = BTreeMap::new();
    for row in rows {
        let (table, column, data_type): (String, String, String) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        let kind = match data_type.as_str() {
            "bigint" | "integer" | "smallint" => Kind::Integer,
            "text" | "character varying" | "character" => Kind::Text,
            "bytea" => Kind::Bytes,
            "boolean" => Kind::Boolean,
            "double precision" | "real" => Kind::Double,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "column {table}.{column} has the type {other}, which db copy does not carry"
                )));
            }
        };
        tables.entry(table).or_default().insert(column, kind);
    }
    Ok(tables)
}

/// Refuses a target with any row, except the one empty audit chain head of its migration.
async fn refuse_non_empty(
    connection: &mut AnyConnection,
    tables: &BTreeMap<String, BTreeMap<String, Kind>>,
) -> Result<(), StoreError> {
    for table in tables.keys() {
        let sql = if table == "audit_head" {
            "SELECT count(*) FROM audit_head WHERE seq <> 0".to_string()
        } else {
            format!("SELECT count(*) FROM \"{table}\"")
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut *connection)
            .await?;
        let rows: i64 = row.try_get(0)?;
        if rows > 0 {
            return Err(StoreError::Corrupt(format!(
                "the target database is not empty: table {table} holds {rows} row(s); db copy \
                 writes only into a new, empty database (it never merges)"
            )));
        }
    }
    Ok(())
}

/// Copies one table page by page (in rowid order); the number of rows.
async fn copy_table(
    source: &mut AnyConnection,
    target: &mut AnyConnection,
    table: &str,
    kinds: &BTreeMap<String, Kind>,
) -> Result<u64, StoreError> {
    let mut after = i64::MIN;
    let mut copied = 0;
    loop {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT rowid AS \"_copy_rowid\", * FROM \"{table}\" WHERE rowid > ? ORDER BY rowid LIMIT ?"
        )))
        .bind(after)
        .bind(PAGE)
        .fetch_all(&mut *source)
        .await?;
        let Some(last) = rows.last() else {
            return Ok(copied);
        };
        after = last.try_get("_copy_rowid")?;
        for row in &rows {
            insert_row(target, table, kinds, row).await?;
            copied += 1;
        }
    }
}

/// One row into the target, each value as its target column's type.
async fn insert_row(
    target: &mut AnyConnection,
    table: &str,
    kinds: &BTreeMap<String, Kind>,
    row: &AnyRow,
) -> Result<(), StoreError> {
    let names: Vec<&str> = row
        .columns()
        .iter()
        .map(sqlx::Column::name)
        .filter(|n| *n != "_copy_rowid")
        .collect();
    let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "INSERT INTO \"{table}\" ({}) VALUES ({})",
        names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", "),
        placeholders.join(", ")
    );
    let mut query = sqlx::query::<Any>(sqlx::AssertSqlSafe(sql));
    for name in &names {
        let Some(kind) = kinds.get(*name) else {
            return Err(StoreError::Corrupt(format!(
                "column {table}.{name} of the SQLite database does not exist in PostgreSQL"
            )));
        };
        query = match kind {
            Kind::Integer => query.bind(row.try_get::<Option<i64>, _>(*name)?),
            Kind::Text => query.bind(row.try_get::<Option<String>, _>(*name)?),
            Kind::Bytes => query.bind(row.try_get::<Option<Vec<u8>>, _>(*name)?),
            Kind::Boolean => query.bind(row.try_get::<Option<bool>, _>(*name)?),
            Kind::Double => query.bind(row.try_get::<Option<f64>, _>(*name)?),
        };
    }
    query.execute(&mut *target).await?;
    Ok(())
}

/// Every sequence behind a column (`BIGSERIAL`) continues after the largest copied value.
async fn reset_sequences(target: &mut AnyConnection) -> Result<(), StoreError> {
    let rows = sqlx::query(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND column_default LIKE 'nextval(%'",
    )
    .fetch_all(&mut *target)
    .await?;
    for row in rows {
        let (table, column): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT setval(pg_get_serial_sequence($1, $2), \
             COALESCE((SELECT max(\"{column}\") FROM \"{table}\"), 0) + 1, false)"
        )))
        .bind(&table)
        .bind(&column)
        .fetch_one(&mut *target)
        .await?;
    }
    Ok(())
}
