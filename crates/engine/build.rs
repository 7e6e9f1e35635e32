//! `sqlx::migrate!` embeds the PostgreSQL migrations at compile time, but cargo does not see
//! it read them: without this, a new or changed migration leaves the engine unrebuilt, and a
//! binary built before it meets a database migrated after it with "migration 1 was previously
//! applied but has been modified" (seen in the E2E run). The directory's mtime changes when a
//! file is added; the files' own when they are edited.
fn main() {
    println!("cargo:rerun-if-changed=migrations-pg");
}
