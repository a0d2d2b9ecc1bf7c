//! The SQL front end on arbitrary input: parsing, name resolution and emission must refuse what
//! they cannot translate with an error, never panic or hang. The first byte of an input picks the
//! catalog (one of the project corpus's), the rest is the SQL, translated in every dialect.

#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use ibert_transpile::corpus::Corpus;
use ibert_transpile::{SqlDialect, transpile};
use libfuzzer_sys::fuzz_target;

static CORPORA: LazyLock<Vec<Corpus>> = LazyLock::new(|| {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus/sql");
    Corpus::load_dir(&dir).unwrap_or_else(|error| panic!("the fuzz target reads the catalogs of {}: {error}", dir.display()))
});

fuzz_target!(|data: &[u8]| {
    let Some((&pick, sql)) = data.split_first() else { return };
    let Ok(sql) = std::str::from_utf8(sql) else { return };
    let corpus = &CORPORA[usize::from(pick) % CORPORA.len()];
    for name in SqlDialect::NAMES {
        let dialect = SqlDialect::from_name(name).unwrap_or_default();
        if let Err(error) = transpile(sql, &corpus.catalog, dialect) {
            assert!(!error.to_string().is_empty(), "an error says what it refuses");
        }
    }
});
