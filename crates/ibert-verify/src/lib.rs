//! Verification by execution: an (SQL, Ibis) pair is verified when the SQL and the SQL that real
//! Ibis compiles from the Ibis code return equal results on every fixture database.
//!
//! * [`column_type`] reads Ibis type strings and renders DuckDB column types.
//! * [`fixtures`] generates deterministic fixture data in embedded DuckDB, several seeds per
//!   schema, each with a twin holding the same rows in another physical order.
//! * [`result_set`] runs a query and normalizes its rows; [`compare`] decides equality. Both are
//!   described, with every normalization rule, in `docs/verification.md`.
//! * [`Verifier`] ties them to the oracle and returns a [`Verdict`]: verified with its evidence, or
//!   rejected with a reason.

pub mod column_type;
pub mod compare;
pub mod constraints;
pub mod fixtures;
mod literals;
pub mod result_set;
pub mod rng;
mod sql_text;
pub mod user_data;
mod verifier;
mod watchdog;

pub use fixtures::{
    DEFAULT_FIXTURES, DataRequest, FixtureConfig, FixtureError, FixtureSet, FixtureStore, Profile, ReferenceDatabase, TableSchemas, fixtures_for_seed,
};
pub use user_data::{UserDataError, UserDatabase, prepare_user_database};
pub use verifier::{Aligned, Evidence, ReferenceRun, Reject, RejectReason, SharedFixtures, Timings, Verdict, Verifier, duckdb_version};
