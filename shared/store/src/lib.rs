//! # store — the item-store port and its embedded backend
//!
//! iisbulk keeps all of its state (messages, patients, immunizations, groups,
//! export jobs, tokens) as DynamoDB-style items: a partition key, a sort key,
//! opaque bytes and a version. Repositories are written once against
//! [`ItemStore`]; the composition root picks a backend:
//!
//! * `embedded::EmbeddedStore` (this crate, feature `embedded`): one redb
//!   file, for the local `iisbulk` binary and for tests. No AWS crate is
//!   compiled here, and no Lambda links redb (they leave the feature off).
//! * `store-dynamodb` (sibling crate): the production table.
//!
//! The port is deliberately narrow and honest to DynamoDB (same size, key and
//! transaction limits in [`limits`], expired items invisible, eventual GSIs
//! allowed) so that anything that works locally works in AWS. One contract
//! suite (`store::contract`, behind the `contract` feature) runs against both
//! backends.
//!
//! [`ChangeFeed`] is the event bus: every committed write is also a
//! [`Change`] with old and new images, the local equivalent of a DynamoDB
//! stream.

pub mod blob;
pub mod blob_dir;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod error;
pub mod limits;
pub mod model;
pub mod port;

#[cfg(feature = "contract")]
pub mod blob_contract;
#[cfg(feature = "contract")]
pub mod contract;
#[cfg(feature = "contract")]
pub mod faulty;

pub use blob::{presigned_urls, BlobReader, BlobStore, BlobUpload, NoUploads};
pub use blob_dir::DirBlobStore;
pub use error::{Result, StoreError};
pub use model::{
    Change, Condition, Cursor, Index, Item, Key, Page, QueryOpts, SkRange, Trim, Write,
};
pub use port::{ChangeFeed, ItemStore};
