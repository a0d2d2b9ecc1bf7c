//! Whole datasets: [`concat`] merges sources and removes duplicates, [`split`] assigns train,
//! validation and test by structure, [`stats`] counts what a dataset holds.

pub mod concat;
pub mod split;
pub mod stats;
