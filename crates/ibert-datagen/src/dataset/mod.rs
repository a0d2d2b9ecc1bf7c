//! Whole datasets: [`concat`] merges sources and removes duplicates, [`stats`] counts what a
//! dataset holds.

pub mod concat;
pub mod stats;
