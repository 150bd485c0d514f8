//! The database schema and its versioned migrations.
//!
//! `PRAGMA user_version` holds the schema version: the number of entries of
//! [`MIGRATIONS`] applied. Each migration runs in its own transaction
//! together with the version bump, so a crash leaves the database at a
//! whole version. A database with a newer version than this build knows is
//! refused rather than guessed at.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use store::Revision;

use crate::SqliteStoreError;

/// Migration `i` (0-based) brings the schema from version `i` to `i + 1`.
/// Append only: never edit a released migration.
const MIGRATIONS: &[&str] = &[
    // 1: keys, the change log for watches, and the store's counters.
    "CREATE TABLE kv (
        key TEXT PRIMARY KEY NOT NULL,
        value BLOB NOT NULL,
        create_revision INTEGER NOT NULL,
        mod_revision INTEGER NOT NULL,
        version INTEGER NOT NULL
    );
    CREATE TABLE history (
        revision INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        key TEXT NOT NULL,
        kind INTEGER NOT NULL,
        value BLOB NOT NULL,
        create_revision INTEGER NOT NULL,
        version INTEGER NOT NULL,
        PRIMARY KEY (revision, seq)
    ) WITHOUT ROWID;
    CREATE TABLE meta (
        name TEXT PRIMARY KEY NOT NULL,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO meta (name, value) VALUES ('revision', 0), ('compacted_revision', 0);",
];

/// The schema version this build creates and understands.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// `meta.name` of the store revision.
pub(crate) const META_REVISION: &str = "revision";
/// `meta.name` of the oldest revision a watch may start from.
pub(crate) const META_COMPACTED_REVISION: &str = "compacted_revision";

/// `history.kind` values.
pub(crate) const KIND_PUT: i64 = 0;
pub(crate) const KIND_DELETE: i64 = 1;

fn user_version(connection: &Connection) -> rusqlite::Result<i64> {
    connection.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Brings the database at `path` up to [`SCHEMA_VERSION`].
pub(crate) fn migrate(connection: &mut Connection, path: &Path) -> Result<(), SqliteStoreError> {
    let migrate_error = |version: i64| {
        move |source: rusqlite::Error| SqliteStoreError::Migrate {
            path: path.to_path_buf(),
            version,
            source,
        }
    };
    let found = user_version(connection).map_err(migrate_error(0))?;
    if found > SCHEMA_VERSION {
        return Err(SqliteStoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (version, sql) in (1..)
        .zip(MIGRATIONS)
        .skip(usize::try_from(found).unwrap_or(0))
    {
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(migrate_error(version))?;
        // Another process may have migrated while we waited for the lock.
        if user_version(&transaction).map_err(migrate_error(version))? >= version {
            continue;
        }
        transaction
            .execute_batch(sql)
            .map_err(migrate_error(version))?;
        transaction
            .pragma_update(None, "user_version", version)
            .map_err(migrate_error(version))?;
        transaction.commit().map_err(migrate_error(version))?;
    }
    Ok(())
}

pub(crate) fn read_meta(connection: &Connection, name: &str) -> rusqlite::Result<Revision> {
    connection
        .prepare_cached("SELECT value FROM meta WHERE name = ?1")?
        .query_row([name], |row| row.get(0))
        .optional()
        .map(|value| value.unwrap_or(0))
}

pub(crate) fn write_meta(
    connection: &Connection,
    name: &str,
    value: Revision,
) -> rusqlite::Result<()> {
    connection
        .prepare_cached("UPDATE meta SET value = ?2 WHERE name = ?1")?
        .execute(rusqlite::params![name, value])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_names(connection: &Connection) -> Vec<String> {
        let mut statement = connection
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .unwrap();
        let names = statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<Vec<String>>>()
            .unwrap();
        names
    }

    #[test]
    fn a_new_database_gets_every_migration_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let mut connection = Connection::open(&path).unwrap();
        migrate(&mut connection, &path).unwrap();
        assert_eq!(user_version(&connection).unwrap(), SCHEMA_VERSION);
        assert_eq!(table_names(&connection), vec!["history", "kv", "meta"]);
        write_meta(&connection, META_REVISION, 7).unwrap();
        // Migrating again is a no-op and keeps the data.
        migrate(&mut connection, &path).unwrap();
        assert_eq!(read_meta(&connection, META_REVISION).unwrap(), 7);
        assert_eq!(read_meta(&connection, META_COMPACTED_REVISION).unwrap(), 0);
    }

    #[test]
    fn a_database_from_a_newer_build_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let mut connection = Connection::open(&path).unwrap();
        connection
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let error = migrate(&mut connection, &path).unwrap_err();
        assert!(matches!(
            error,
            SqliteStoreError::SchemaTooNew { found, supported, .. }
                if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION
        ));
        let message = error.to_string();
        assert!(message.contains("newer"), "{message}");
        assert!(table_names(&connection).is_empty(), "nothing was touched");
    }
}
