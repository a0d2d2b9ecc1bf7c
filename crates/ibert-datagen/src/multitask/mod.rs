//! Multi-task derivation: the five other tasks made from verified `sql_to_ibis` examples, each
//! checked against real Ibis rather than written by hand.
//!
//! * `ibis_to_sql`: the verified program compiled by real Ibis for DuckDB (the SQL that ran when
//!   it was verified) and for other dialects (compiled, not executed).
//! * `code_completion`: prefixes cut at syntactic boundaries ([`completion`]); the target is the
//!   verified program.
//! * `error_resolution`: the program broken by a [`mutation`] operator; the oracle confirms it
//!   fails the way the operator predicts and the error recorded is the one real Ibis raised. The
//!   fix is the verified program.
//! * `documentation`: the program as a function with Google and NumPy docstrings
//!   ([`documentation`]) whose sections match its parameters and real result columns.
//! * `qa`: questions about what the program does and how to write it; every snippet in an answer
//!   is the verified program.

pub mod completion;
pub mod documentation;
pub mod mutation;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use ibert_oracle::{CompileRequest, Compiled, OracleError, ProgramFailure, WorkerPool};
use ibert_records::{
    CodeCompletionInput, CodeCompletionTarget, DocStyle, DocumentationInput, DocumentationTarget, ErrorResolutionInput, ErrorResolutionTarget, Example,
    IbisToSqlInput, IbisToSqlTarget, Payload, QaInput, QaTarget, Task, Verification, VerificationLevel,
};

use crate::parallel::map_in_order;
use mutation::Program;

/// The dialects `ibis_to_sql` targets are compiled for unless told otherwise.
pub const DEFAULT_DIALECTS: [&str; 7] = ["duckdb", "postgres", "sqlite", "mysql", "snowflake", "bigquery", "trino"];

#[derive(Debug, Clone)]
pub struct MultitaskOptions {
    pub dialects: Vec<String>,
    pub threads: usize,
    /// Template name -> description, for docstrings and questions.
    pub descriptions: BTreeMap<String, String>,
}

/// What derivation made, and what it dropped and why.
#[derive(Debug, Default)]
pub struct MultitaskReport {
    pub examples: Vec<Example>,
    /// Reason -> count (`mutant_compiled`, `unexpected_error`, `dialect_unsupported`, ...).
    pub dropped: BTreeMap<String, usize>,
    /// Real error types recorded for error resolution -> count.
    pub error_types: BTreeMap<String, usize>,
    pub cancelled: bool,
}

/// The verified `sql_to_ibis` examples among `examples`: what derivation and augmentation use.
pub fn verified_pairs(examples: &[Example]) -> impl Iterator<Item = &Example> {
    examples.iter().filter(|e| e.task() == Task::SqlToIbis && e.verification.is_some())
}

/// Derives the other tasks from verified `sql_to_ibis` examples (others are passed over).
/// Output follows input order whatever the scheduling; `progress` is called per example.
pub fn derive(
    verified: &[Example],
    pool: &WorkerPool,
    options: &MultitaskOptions,
    progress: &(dyn Fn() + Sync),
    cancel: &AtomicBool,
) -> Result<MultitaskReport, OracleError> {
    let sources: Vec<&Example> = verified_pairs(verified).collect();
    // Questions about a template are asked once, about its first verified variation.
    let mut seen_templates = std::collections::HashSet::new();
    let asks: Vec<bool> = sources.iter().map(|e| seen_templates.insert(e.meta.template.clone().unwrap_or_else(|| e.id.clone()))).collect();
    let work = |index: usize, example: &&Example| {
        // Mutation sites are picked by the example's id, so they do not move when input changes.
        let seed = crate::stable_hash::fnv1a(example.id.as_bytes());
        let derived = derive_one(example, seed, asks[index], pool, options);
        progress();
        derived
    };
    let mut report = MultitaskReport::default();
    let Some(all) = map_in_order(&sources, options.threads, cancel, &work)? else {
        report.cancelled = true;
        return Ok(report);
    };
    for derived in all {
        report.examples.extend(derived.examples);
        for reason in derived.dropped {
            *report.dropped.entry(reason).or_default() += 1;
        }
        for error_type in derived.error_types {
            *report.error_types.entry(error_type).or_default() += 1;
        }
    }
    Ok(report)
}

#[derive(Default)]
struct Derived {
    examples: Vec<Example>,
    dropped: Vec<String>,
    error_types: Vec<String>,
}

fn derive_one(source: &Example, seed: u64, ask_questions: bool, pool: &WorkerPool, options: &MultitaskOptions) -> Result<Derived, OracleError> {
    let Payload::SqlToIbis { input, target } = &source.payload else { return Ok(Derived::default()) };
    let verification = source.verification.clone().expect("only verified examples are derived from");
    let schemas = source.context.schemas();
    let code = target.ibis.as_str();
    let compile = |code: &str, dialect: &str| -> Result<Result<Compiled, ProgramFailure>, OracleError> {
        pool.compile(&CompileRequest {
            code: code.to_string(),
            tables: schemas.clone(),
            dialect: dialect.to_string(),
            expr_name: Some(target.expr_name.clone()),
        })
    };
    let derive = |id: String, payload: Payload, verification: Verification| {
        let mut meta = source.meta.clone();
        meta.derived_from = Some(source.id.clone());
        Example { id, payload, meta, verification: Some(verification), ..source.clone() }
    };
    let mut out = Derived::default();

    // The program's DuckDB compilation: the SQL that ran when it was verified (when this is the
    // same Ibis), its result columns for the docstrings, and its SQL for the answers.
    let ibis_version = pool.hello().ibis.clone();
    let duckdb = compile(code, "duckdb")?.ok();
    let result_columns = duckdb.as_ref().and_then(|c| c.columns.clone()).unwrap_or_default();
    let duckdb_sql = duckdb.as_ref().map(|c| c.sql.clone());

    // Ibis -> SQL, per dialect.
    for dialect in &options.dialects {
        let compiled = if dialect == "duckdb" { duckdb.clone().ok_or(()) } else { compile(code, dialect)?.map_err(|_| ()) };
        let Ok(compiled) = compiled else {
            out.dropped.push(format!("ibis_to_sql: not compilable for {dialect}"));
            continue;
        };
        // Some compilers invent names (BigQuery's UNNEST aliases): such SQL is no fixed target.
        if compile(code, dialect)?.is_ok_and(|again| again.sql != compiled.sql) {
            out.dropped.push(format!("ibis_to_sql: {dialect} SQL differs between compilations (generated names)"));
            continue;
        }
        let executed = dialect == "duckdb" && verification.ibis_version == ibis_version;
        let level = if executed { verification.clone() } else { checked_by(VerificationLevel::Compiled, &ibis_version) };
        let payload =
            Payload::IbisToSql { input: IbisToSqlInput { ibis: code.to_string(), dialect: dialect.clone() }, target: IbisToSqlTarget { sql: compiled.sql } };
        let mut example = derive(format!("{}.ibis_to_sql.{dialect}", source.id), payload, level);
        example.dialect = dialect.clone();
        out.examples.push(example);
    }

    // Completion: prefixes of the verified program.
    for (k, cut) in completion::cut_points(code).into_iter().enumerate() {
        let payload = Payload::CodeCompletion {
            input: CodeCompletionInput { partial_code: completion::prefix(code, cut) },
            target: CodeCompletionTarget { completed_code: code.to_string() },
        };
        out.examples.push(derive(format!("{}.code_completion.{k}", source.id), payload, verification.clone()));
    }

    // Error resolution: mutants that real Ibis rejects the way the operator predicts.
    if let Some(program) = Program::new(code, &schemas, seed) {
        for mutant in program.mutants() {
            match compile(&mutant.code, "duckdb")? {
                Ok(_) => out.dropped.push(format!("error_resolution: {} still compiles", mutant.operator)),
                Err(failure) if !mutant.expect.is_met_by(&failure) => {
                    out.dropped.push(format!("error_resolution: {} failed otherwise ({} {})", mutant.operator, failure.kind, failure.error_type));
                }
                Err(failure) => {
                    out.error_types.push(failure.error_type.clone());
                    let payload = Payload::ErrorResolution {
                        input: ErrorResolutionInput { broken_code: mutant.code, error: error_text(&failure), context_info: None },
                        target: ErrorResolutionTarget { fixed_code: code.to_string(), explanation: Some(mutant.explanation) },
                    };
                    let mut example = derive(format!("{}.error_resolution.{}", source.id, mutant.operator), payload, verification.clone());
                    example.meta.features.push(format!("mutation:{}", mutant.operator));
                    out.examples.push(example);
                }
            }
        }
    }

    // Documentation in both styles. The function wrapping the program is checked to parse (the
    // sandbox runs no `def`); its body is the verified program.
    let description = source.meta.template.as_ref().and_then(|t| options.descriptions.get(t));
    let name = documentation::function_name(source.meta.template.as_deref().unwrap_or(&source.id));
    let summary = description
        .cloned()
        .unwrap_or_else(|| format!("Compute the result of this SQL query:\n\n    {}", input.sql.lines().collect::<Vec<_>>().join("\n    ")));
    for style in [DocStyle::Google, DocStyle::Numpy] {
        let documented = documentation::document(&name, &summary, code, &target.expr_name, &schemas, &result_columns, style);
        if pool.outline(&documented.function)?.is_err() {
            out.dropped.push("documentation: the function does not parse".to_string());
            continue;
        }
        let payload = Payload::Documentation {
            input: DocumentationInput { code: documented.function, style },
            target: DocumentationTarget { docstring: documented.docstring },
        };
        let style_name = if style == DocStyle::Google { "google" } else { "numpy" };
        out.examples.push(derive(format!("{}.documentation.{style_name}", source.id), payload, checked_by(VerificationLevel::Parsed, &ibis_version)));
    }

    // Questions and answers, once per template.
    if ask_questions {
        let tables = documentation::tables_used(code, &schemas);
        let table_list = tables.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(" and ");
        if let Some(description) = description {
            let question = format!("With Ibis and the {table_list} tables, how do I get this: {}?", lowercase_first(description.trim_end_matches('.')));
            let mut answer = format!("With the tables bound to the Ibis variables {table_list}:\n\n```python\n{code}\n```");
            if let Some(sql) = &duckdb_sql {
                answer.push_str(&format!("\n\nFor DuckDB this compiles to:\n\n```sql\n{}\n```", sql.trim_end()));
            }
            let payload = Payload::Qa { input: QaInput { question }, target: QaTarget { answer, code_example: Some(code.to_string()) } };
            out.examples.push(derive(format!("{}.qa.how", source.id), payload, verification.clone()));
            let question = format!("What does this Ibis code compute?\n\n```python\n{code}\n```");
            let answer = format!("{} It reads the {table_list} tables and leaves the result in `{}`.", documentation::sentence(description), target.expr_name);
            let payload = Payload::Qa { input: QaInput { question }, target: QaTarget { answer, code_example: Some(code.to_string()) } };
            out.examples.push(derive(format!("{}.qa.what", source.id), payload, verification.clone()));
        }
        let question = format!("Write this SQL query with Ibis:\n\n```sql\n{}\n```", input.sql.trim());
        let answer = format!("```python\n{code}\n```");
        let payload = Payload::Qa { input: QaInput { question }, target: QaTarget { answer, code_example: Some(code.to_string()) } };
        out.examples.push(derive(format!("{}.qa.sql", source.id), payload, verification));
    }
    Ok(out)
}

/// A verification record for what real Ibis (`ibis_version`) checked without executing it.
pub fn checked_by(level: VerificationLevel, ibis_version: &str) -> Verification {
    Verification {
        level,
        ibis_version: ibis_version.to_string(),
        duckdb_version: String::new(),
        fixture_seeds: Vec::new(),
        fixture_rows: Vec::new(),
        comparison: None,
        result_fingerprint: None,
        executed_with_ibis: Vec::new(),
        fixture_profile: None,
    }
}

/// `Type: message` as real Ibis raised it, with object addresses (which change from run to run)
/// blanked, so the same input gives the same dataset.
pub fn error_text(failure: &ProgramFailure) -> String {
    let mut message = String::with_capacity(failure.message.len());
    let mut rest = failure.message.as_str();
    while let Some(at) = rest.find("0x") {
        message.push_str(&rest[..at]);
        let digits = rest[at + 2..].chars().take_while(char::is_ascii_hexdigit).count();
        if digits >= 6 {
            message.push_str("0x...");
        } else {
            message.push_str(&rest[at..at + 2 + digits]);
        }
        rest = &rest[at + 2 + digits..];
    }
    message.push_str(rest);
    format!("{}: {}", failure.error_type, message)
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if !text.chars().nth(1).is_some_and(char::is_uppercase) => first.to_lowercase().collect::<String>() + chars.as_str(),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ibert_oracle::FailureKind;

    #[test]
    fn object_addresses_are_blanked_in_recorded_errors() {
        let failure = ProgramFailure {
            kind: FailureKind::Ibis,
            error_type: "IntegrityError".into(),
            message: "Cannot add <Greater object at 0x7fc4e4150970> to filter; 0x1f stays".into(),
            line: None,
        };
        assert_eq!(error_text(&failure), "IntegrityError: Cannot add <Greater object at 0x...> to filter; 0x1f stays");
    }

    #[test]
    fn questions_keep_acronyms() {
        assert_eq!(lowercase_first("Filter rows"), "filter rows");
        assert_eq!(lowercase_first("SQL rows"), "SQL rows");
    }
}
