//! The features query synthesis draws, and how often: each has a base chance, multiplied by a
//! weight (1 by default, 0 to turn it off). `ibert data synth --spec FILE` reads weights and
//! the other settings from YAML; an unknown feature or setting is an error that lists the
//! known ones.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

macro_rules! features {
    ($($variant:ident => $name:literal, $percent:literal;)*) => {
        /// A part of a synthesized query.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Feature { $($variant),* }

        impl Feature {
            pub const ALL: &[Feature] = &[$(Feature::$variant),*];

            /// The name in weight files and in the records' `meta.features`.
            pub fn name(self) -> &'static str {
                match self { $(Feature::$variant => $name),* }
            }

            /// The chance in percent of drawing it at weight 1 and middle difficulty where it
            /// can be used. `array` and `struct` are used whenever a list or struct column is
            /// drawn; their weight only turns them off (0).
            pub fn base_percent(self) -> f64 {
                match self { $(Feature::$variant => $percent as f64),* }
            }
        }
    };
}

features! {
    Filter => "filter", 70;
    OrCondition => "or_condition", 20;
    InnerJoin => "inner_join", 45;
    LeftJoin => "left_join", 30;
    MultiJoin => "multi_join", 60;
    GroupBy => "group_by", 80;
    GlobalAggregate => "global_aggregate", 12;
    Having => "having", 35;
    CountDistinct => "count_distinct", 30;
    FilterClause => "filter_clause", 30;
    Window => "window", 75;
    WindowFrame => "window_frame", 50;
    TopPerGroup => "top_per_group", 40;
    Distinct => "distinct", 60;
    Case => "case", 30;
    InSubquery => "in_subquery", 12;
    ExistsSubquery => "exists_subquery", 12;
    ScalarSubquery => "scalar_subquery", 10;
    SetOperation => "set_operation", 8;
    Cte => "cte", 10;
    Date => "date", 50;
    StringFunction => "string_function", 30;
    Array => "array", 100;
    Struct => "struct", 100;
    OrderBy => "order_by", 45;
    Limit => "limit", 50;
    Arithmetic => "arithmetic", 35;
    NullHandling => "null_handling", 20;
    Cast => "cast", 20;
    InList => "in_list", 25;
    Between => "between", 20;
    Like => "like", 20;
}

impl Feature {
    pub fn from_name(name: &str) -> Option<Feature> {
        Feature::ALL.iter().copied().find(|feature| feature.name() == name)
    }
}

/// A weight per feature; features not named weigh 1.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Weights(BTreeMap<Feature, f64>);

impl Weights {
    pub fn get(&self, feature: Feature) -> f64 {
        self.0.get(&feature).copied().unwrap_or(1.0)
    }

    pub fn set(&mut self, feature: Feature, weight: f64) {
        self.0.insert(feature, weight);
    }

    /// The weights as `name=weight` settings, for completion markers.
    pub fn settings(&self) -> Vec<String> {
        self.0.iter().map(|(feature, weight)| format!("weight {}={weight}", feature.name())).collect()
    }
}

/// The most queries one schema serves (its shared fixtures are made from all of them).
pub const MOST_QUERIES_PER_SCHEMA: u64 = 10_000;

/// What `--spec FILE` may set.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthSpec {
    pub weights: Weights,
    /// 1-5, or `None` for a mix of every level.
    pub difficulty: Option<u8>,
    pub min_tables: usize,
    pub max_tables: usize,
    /// Queries drawn over one schema before the next schema.
    pub queries_per_schema: u64,
}

impl Default for SynthSpec {
    fn default() -> Self {
        SynthSpec { weights: Weights::default(), difficulty: None, min_tables: 2, max_tables: 12, queries_per_schema: 40 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("reading the synthesis spec {path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: std::path::PathBuf, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    #[serde(default)]
    weights: BTreeMap<String, f64>,
    difficulty: Option<u8>,
    tables: Option<(usize, usize)>,
    queries_per_schema: Option<u64>,
}

impl SynthSpec {
    /// Reads a spec such as
    ///
    /// ```yaml
    /// weights: {window: 2, set_operation: 0}
    /// difficulty: 3          # 1-5; leave out for a mix
    /// tables: [2, 6]         # tables per schema
    /// queries_per_schema: 40
    /// ```
    pub fn load(path: &Path) -> Result<SynthSpec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Io { path: path.to_path_buf(), source })?;
        SynthSpec::parse(&text).map_err(|message| SpecError::Invalid { path: path.to_path_buf(), message })
    }

    pub fn parse(text: &str) -> Result<SynthSpec, String> {
        let file: SpecFile = serde_yaml_ng::from_str(text).map_err(|e| format!("{e} (the keys are weights, difficulty, tables, queries_per_schema)"))?;
        let mut spec = SynthSpec::default();
        for (name, weight) in file.weights {
            let feature = Feature::from_name(&name).ok_or_else(|| {
                format!("unknown feature `{name}` in weights; the features are {}", Feature::ALL.iter().map(|f| f.name()).collect::<Vec<_>>().join(", "))
            })?;
            if !weight.is_finite() || weight < 0.0 {
                return Err(format!("the weight of `{name}` must be a number 0 or more, found {weight}"));
            }
            spec.weights.set(feature, weight);
        }
        if let Some(difficulty) = file.difficulty {
            if !(1..=5).contains(&difficulty) {
                return Err(format!("difficulty must be 1 to 5, found {difficulty}"));
            }
            spec.difficulty = Some(difficulty);
        }
        if let Some((low, high)) = file.tables {
            let fewest = super::schema::fewest_entities();
            if low < 2 || high < low || high > super::schema::most_entities() || low > fewest {
                return Err(format!(
                    "tables must be [low, high] with 2 <= low <= {fewest} and low <= high <= {} (the smallest domain has {fewest} tables), found [{low}, {high}]",
                    super::schema::most_entities()
                ));
            }
            (spec.min_tables, spec.max_tables) = (low, high);
        }
        if let Some(count) = file.queries_per_schema {
            if !(1..=MOST_QUERIES_PER_SCHEMA).contains(&count) {
                return Err(format!("queries_per_schema must be 1 to {MOST_QUERIES_PER_SCHEMA}, found {count}"));
            }
            spec.queries_per_schema = count;
        }
        Ok(spec)
    }

    /// Everything the synthesized queries depend on besides the seed, one setting a line.
    pub fn settings(&self) -> Vec<String> {
        let mut settings = vec![
            format!("difficulty {}", self.difficulty.map_or("mixed".to_string(), |d| d.to_string())),
            format!("tables {}-{}", self.min_tables, self.max_tables),
            format!("queries per schema {}", self.queries_per_schema),
        ];
        settings.extend(self.weights.settings());
        settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_sets_weights_and_ranges() {
        let spec = SynthSpec::parse("weights: {window: 2, cte: 0}\ndifficulty: 4\ntables: [3, 5]\n").unwrap();
        assert_eq!(spec.weights.get(Feature::Window), 2.0);
        assert_eq!(spec.weights.get(Feature::Cte), 0.0);
        assert_eq!(spec.weights.get(Feature::Filter), 1.0, "unnamed features weigh 1");
        assert_eq!((spec.difficulty, spec.min_tables, spec.max_tables), (Some(4), 3, 5));
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let unknown = SynthSpec::parse("weights: {windows: 2}").unwrap_err();
        assert!(unknown.contains("unknown feature `windows`") && unknown.contains("window,"), "{unknown}");
        assert!(SynthSpec::parse("weights: {window: -1}").unwrap_err().contains("0 or more"));
        assert!(SynthSpec::parse("difficulty: 9").unwrap_err().contains("1 to 5"));
        assert!(SynthSpec::parse("tables: [5, 3]").unwrap_err().contains("low <= high"));
        assert!(SynthSpec::parse("colour: red").unwrap_err().contains("the keys are"));
        assert!(SynthSpec::parse("weights: [1, 2]").is_err());
    }

    #[test]
    fn names_round_trip() {
        for feature in Feature::ALL {
            assert_eq!(Feature::from_name(feature.name()), Some(*feature));
        }
    }
}
