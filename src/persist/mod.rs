//! Persistence: keeping a MergeableStore's content outside the process.
//!
//! [`file`](mod@file) reads and writes TinyBase's file format (what `createFilePersister` writes). Loading
//! merges into the store and verifies the content hashes; a file that could not be loaded is
//! never written over (PROTOCOL.md 12.8): callers keep the data and report the error.

pub mod file;
