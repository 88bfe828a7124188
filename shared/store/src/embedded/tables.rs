//! The redb tables of one embedded store file.
//!
//! | table         | key                                   | value                   |
//! |---------------|---------------------------------------|-------------------------|
//! | `items`       | `part(pk) part(sk)`                   | encoded [`Item`]        |
//! | `gsi1`,`gsi2` | `part(gsi pk) part(gsi sk)` + table key | table key             |
//! | `expiry`      | biased big-endian `expires_at` + table key | `()`               |
//! | `changes`     | `seq`                                 | encoded [`Change`]      |
//! | `checkpoints` | consumer name                         | last processed `seq`    |
//! | `meta`        | `"last_seq"`                          | last assigned `seq`     |
//!
//! Index tables point at the item instead of copying it: writes stay small
//! and index reads are strongly consistent for free (stronger than DynamoDB,
//! which the port allows). The `expiry` table lets the writer purge expired
//! items without scanning.
//!
//! [`Item`]: crate::Item
//! [`Change`]: crate::Change

use redb::TableDefinition;

use crate::model::Index;

pub type Bytes = &'static [u8];

pub const ITEMS: TableDefinition<Bytes, Bytes> = TableDefinition::new("items");
pub const GSI1: TableDefinition<Bytes, Bytes> = TableDefinition::new("gsi1");
pub const GSI2: TableDefinition<Bytes, Bytes> = TableDefinition::new("gsi2");
pub const EXPIRY: TableDefinition<Bytes, ()> = TableDefinition::new("expiry");
pub const CHANGES: TableDefinition<u64, Bytes> = TableDefinition::new("changes");
pub const CHECKPOINTS: TableDefinition<&str, u64> = TableDefinition::new("checkpoints");
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Key of the last assigned change sequence number in `meta`.
pub const LAST_SEQ: &str = "last_seq";

/// The table a query on `index` walks.
pub fn for_index(index: Index) -> TableDefinition<'static, Bytes, Bytes> {
    match index {
        Index::Table => ITEMS,
        Index::Gsi1 => GSI1,
        Index::Gsi2 => GSI2,
    }
}

/// `expiry` key: sign-flipped big-endian time so negative times sort first.
pub fn expiry_key(expires_at: i64, table_key: &[u8]) -> Vec<u8> {
    let mut out = expiry_prefix(expires_at).to_vec();
    out.extend_from_slice(table_key);
    out
}

/// The 8-byte time prefix of an `expiry` key.
pub fn expiry_prefix(expires_at: i64) -> [u8; 8] {
    // Flipping the sign bit maps i64 order onto u64 order.
    (u64::from_ne_bytes(expires_at.to_ne_bytes()) ^ (1 << 63)).to_be_bytes()
}
