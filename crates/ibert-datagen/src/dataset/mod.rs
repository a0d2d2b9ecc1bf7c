//! Whole datasets: [`concat`] merges sources and removes duplicates, [`split`] assigns train,
//! validation and test by structure, [`stats`] counts what a dataset holds, [`export`] writes the
//! splits in the formats trainers read.

pub mod concat;
pub mod export;
pub mod merge;
pub mod minhash;
pub mod split;
pub mod stats;
