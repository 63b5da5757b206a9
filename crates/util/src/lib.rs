//! Foundations shared by every Hangar layer: identifiers ([`Uuid`], [`Hash`], [`NodeId`]),
//! the hybrid logical [`clock::Clock`], CRDT primitives ([`crdt`]), the versioned
//! binary [`encoding`] used for everything stored on disk, and the format
//! [`fixtures`] that pin stored and wire encodings in tests.
//!
//! This crate imports no other Hangar crate and knows nothing of networks, disks,
//! tables or S3.
//!
//! ```
//! use hangar_util::{Hash, crdt::{Crdt, Lww}};
//! let h = Hash::of(b"hello");
//! assert_eq!(h, Hash::of(b"hello"));
//! let mut a = Lww::new(1, "old");
//! a.merge(&Lww::new(2, "new"));
//! assert_eq!(*a.get(), "new");
//! ```

pub mod clock;
pub mod crdt;
pub mod encoding;
pub mod fixtures;
mod ids;
pub mod rng;
pub mod worker;

pub use ids::{Hash, NodeId, Uuid};
