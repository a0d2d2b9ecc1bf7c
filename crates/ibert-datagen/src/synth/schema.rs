//! Seeded schemas: a domain's tables linked by foreign keys, each column of a kind that says
//! what queries can do with it (group by a category, sum a measure, compare a date ...), with
//! every column type the verifier makes fixtures for.

use ibert_transpile::{Catalog, TableDef};
use ibert_verify::rng::Rng;

/// What a column holds, which decides the expressions and predicates drawn for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// `id`: the table's key (fixtures repeat some keys on purpose).
    Key,
    /// `<parent>_id`, referencing the `id` of table `parent`.
    ForeignKey {
        parent: usize,
    },
    /// A string with few values: what rows are grouped by.
    Category,
    /// A free string: names, codes.
    Text,
    /// An integer count or size.
    Count,
    /// A floating-point measure.
    Measure,
    /// A decimal amount of money.
    Money,
    Flag,
    Date,
    Timestamp,
    /// `array<string>`.
    StringList,
    /// `array<int64>`.
    IntList,
    /// A struct of two fields, the first a string.
    Struct,
}

impl ColumnKind {
    pub fn is_numeric(self) -> bool {
        matches!(self, ColumnKind::Count | ColumnKind::Measure | ColumnKind::Money)
    }

    pub fn is_string(self) -> bool {
        matches!(self, ColumnKind::Category | ColumnKind::Text)
    }

    /// Whether values order (MIN, MAX, ORDER BY, comparisons).
    pub fn is_orderable(self) -> bool {
        self.is_numeric() || self.is_string() || matches!(self, ColumnKind::Date | ColumnKind::Timestamp | ColumnKind::Key)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthColumn {
    pub name: String,
    /// The Ibis type string.
    pub ty: String,
    pub kind: ColumnKind,
    /// The fields of a struct column (name, Ibis type).
    pub fields: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthTable {
    pub name: String,
    pub columns: Vec<SynthColumn>,
}

impl SynthTable {
    pub fn columns_of(&self, keep: impl Fn(ColumnKind) -> bool) -> Vec<&SynthColumn> {
        self.columns.iter().filter(|column| keep(column.kind)).collect()
    }

    /// The foreign keys: (column, referenced table).
    pub fn foreign_keys(&self) -> impl Iterator<Item = (&SynthColumn, usize)> {
        self.columns.iter().filter_map(|column| match column.kind {
            ColumnKind::ForeignKey { parent } => Some((column, parent)),
            _ => None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthSchema {
    /// `<domain>_<number>`: names the examples' template.
    pub name: String,
    pub domain: &'static str,
    pub tables: Vec<SynthTable>,
}

impl SynthSchema {
    pub fn catalog(&self) -> Catalog {
        Catalog::new(
            self.tables
                .iter()
                .map(|table| TableDef { name: table.name.clone(), columns: table.columns.iter().map(|c| (c.name.clone(), c.ty.clone())).collect() })
                .collect(),
        )
    }
}

/// A domain: its entities (plural table name, singular for foreign keys) and the words its
/// columns are named with, by kind.
struct Domain {
    name: &'static str,
    entities: &'static [(&'static str, &'static str)],
    categories: &'static [&'static str],
    texts: &'static [&'static str],
    counts: &'static [&'static str],
    measures: &'static [&'static str],
    money: &'static [&'static str],
}

const DOMAINS: &[Domain] = &[
    Domain {
        name: "retail",
        entities: &[
            ("customers", "customer"),
            ("stores", "store"),
            ("products", "product"),
            ("orders", "order"),
            ("order_lines", "order_line"),
            ("suppliers", "supplier"),
            ("shipments", "shipment"),
            ("returns", "return"),
            ("promotions", "promotion"),
            ("carts", "cart"),
            ("reviews", "review"),
            ("warehouses", "warehouse"),
        ],
        categories: &["status", "channel", "category", "region", "segment", "brand", "payment_method"],
        texts: &["name", "sku", "email", "city", "coupon_code", "title"],
        counts: &["quantity", "units", "items", "stock_level", "rating"],
        measures: &["weight_kg", "discount_rate", "score", "distance_km"],
        money: &["price", "amount", "unit_cost", "shipping_fee", "total"],
    },
    Domain {
        name: "health",
        entities: &[
            ("patients", "patient"),
            ("doctors", "doctor"),
            ("clinics", "clinic"),
            ("visits", "visit"),
            ("prescriptions", "prescription"),
            ("lab_results", "lab_result"),
            ("wards", "ward"),
            ("admissions", "admission"),
            ("insurers", "insurer"),
            ("claims", "claim"),
        ],
        categories: &["specialty", "severity", "department", "blood_type", "outcome", "plan"],
        texts: &["full_name", "diagnosis_code", "drug_name", "notes", "city"],
        counts: &["age", "dose_mg", "length_of_stay", "beds", "visits_count"],
        measures: &["temperature_c", "bmi", "heart_rate", "result_value"],
        money: &["fee", "billed_amount", "copay", "claim_amount"],
    },
    Domain {
        name: "finance",
        entities: &[
            ("clients", "client"),
            ("accounts", "account"),
            ("transactions", "transaction"),
            ("branches", "branch"),
            ("loans", "loan"),
            ("cards", "card"),
            ("merchants", "merchant"),
            ("transfers", "transfer"),
            ("advisors", "advisor"),
        ],
        categories: &["currency", "account_type", "risk_band", "country", "merchant_category", "state"],
        texts: &["holder_name", "iban", "reference", "description", "city"],
        counts: &["term_months", "credit_score", "installments", "failed_logins"],
        measures: &["interest_rate", "fraud_score", "utilization"],
        money: &["balance", "amount", "principal", "credit_limit", "fee"],
    },
    Domain {
        name: "education",
        entities: &[
            ("students", "student"),
            ("teachers", "teacher"),
            ("courses", "course"),
            ("enrollments", "enrollment"),
            ("assignments", "assignment"),
            ("submissions", "submission"),
            ("schools", "school"),
            ("exams", "exam"),
            ("classrooms", "classroom"),
        ],
        categories: &["grade_level", "subject", "term", "track", "campus", "language"],
        texts: &["student_name", "title", "email", "room_code", "feedback"],
        counts: &["credits", "seats", "attempts", "points", "year_of_study"],
        measures: &["gpa", "score_pct", "hours_spent"],
        money: &["tuition", "scholarship", "lab_fee"],
    },
    Domain {
        name: "logistics",
        entities: &[
            ("depots", "depot"),
            ("vehicles", "vehicle"),
            ("drivers", "driver"),
            ("routes", "route"),
            ("deliveries", "delivery"),
            ("parcels", "parcel"),
            ("stops", "stop"),
            ("incidents", "incident"),
            ("fuel_logs", "fuel_log"),
            ("contracts", "contract"),
        ],
        categories: &["vehicle_type", "zone", "priority", "carrier", "delivery_status", "shift"],
        texts: &["plate", "driver_name", "postcode", "label", "city"],
        counts: &["stops_count", "capacity", "parcels_count", "delay_minutes", "axles"],
        measures: &["distance_km", "load_kg", "fuel_liters", "speed_kmh"],
        money: &["toll_cost", "fuel_cost", "contract_value", "penalty"],
    },
    Domain {
        name: "media",
        entities: &[
            ("users", "user"),
            ("artists", "artist"),
            ("albums", "album"),
            ("tracks", "track"),
            ("plays", "play"),
            ("playlists", "playlist"),
            ("subscriptions", "subscription"),
            ("podcasts", "podcast"),
            ("episodes", "episode"),
            ("follows", "follow"),
            ("comments", "comment"),
        ],
        categories: &["genre", "device", "plan", "country", "mood", "label"],
        texts: &["title", "handle", "artist_name", "comment_text", "isrc"],
        counts: &["duration_sec", "play_count", "track_number", "likes", "followers"],
        measures: &["popularity", "completion_rate", "loudness_db"],
        money: &["monthly_price", "royalty", "revenue"],
    },
    Domain {
        name: "iot",
        entities: &[
            ("sites", "site"),
            ("devices", "device"),
            ("sensors", "sensor"),
            ("readings", "reading"),
            ("alerts", "alert"),
            ("firmware_releases", "firmware_release"),
            ("maintenance_jobs", "maintenance_job"),
            ("gateways", "gateway"),
            ("technicians", "technician"),
        ],
        categories: &["sensor_type", "unit", "alert_level", "vendor", "site_type", "protocol"],
        texts: &["serial_no", "hostname", "message", "version_tag", "city"],
        counts: &["battery_pct", "signal_strength", "retries", "uptime_hours", "channel"],
        measures: &["value", "voltage", "humidity", "latitude", "longitude"],
        money: &["unit_price", "repair_cost", "energy_cost"],
    },
    Domain {
        name: "hr",
        entities: &[
            ("employees", "employee"),
            ("departments", "department"),
            ("positions", "position"),
            ("salaries", "salary"),
            ("reviews", "review"),
            ("trainings", "training"),
            ("leaves", "leave"),
            ("projects", "project"),
            ("timesheets", "timesheet"),
            ("offices", "office"),
        ],
        categories: &["job_family", "level", "location", "employment_type", "rating_band", "team"],
        texts: &["first_name", "last_name", "email", "title", "manager_note"],
        counts: &["hours", "days_taken", "headcount", "years_of_service", "grade"],
        measures: &["performance_score", "utilization", "fte"],
        money: &["base_salary", "bonus", "budget", "hourly_rate"],
    },
];

/// The tables of the smallest and of the largest domain: the bounds of a spec's table range.
pub fn fewest_entities() -> usize {
    DOMAINS.iter().map(|domain| domain.entities.len()).min().unwrap_or(2)
}

pub fn most_entities() -> usize {
    DOMAINS.iter().map(|domain| domain.entities.len()).max().unwrap_or(2)
}

const DECIMALS: &[&str] = &["decimal(10,2)", "decimal(12,2)", "decimal(18,2)", "decimal(9,3)"];
const INTEGERS: &[&str] = &["int32", "int64", "int16", "int32"];
const FLAGS: &[&str] = &["is_active", "is_verified", "is_archived", "is_premium", "is_flagged"];
const DATES: &[&str] = &["created_on", "start_date", "due_date", "signup_date", "event_date"];
const TIMESTAMPS: &[&str] = &["created_at", "updated_at", "logged_at", "started_at", "closed_at"];
const STRING_LISTS: &[&str] = &["tags", "labels", "keywords"];
const INT_LISTS: &[&str] = &["scores", "slot_ids"];
/// A struct column's name, first (string) field and second field with its type.
const STRUCTS: &[(&str, &str, (&str, &str))] = &[
    ("address", "city", ("zip", "string")),
    ("contact", "email", ("phone", "string")),
    ("origin", "country", ("year", "int32")),
    ("owner", "name", ("level", "int32")),
];

/// The schema `number` of a run seeded `seed`, with between `min_tables` and `max_tables`
/// tables (at least 2, at most the domain's entities).
pub fn synth_schema(seed: u64, number: u64, min_tables: usize, max_tables: usize) -> SynthSchema {
    let mut rng = Rng::for_stream(seed, &format!("schema {number}"));
    let domain = rng.pick(DOMAINS);
    let most = max_tables.min(domain.entities.len()).max(2);
    let count = rng.range(min_tables.clamp(2, most) as i64, most as i64) as usize;
    // The entities, in a random order: each table after the first references an earlier one.
    let mut entities: Vec<(&str, &str)> = domain.entities.to_vec();
    shuffle(&mut entities, &mut rng);
    entities.truncate(count);
    let mut tables = Vec::with_capacity(count);
    for (index, (name, _)) in entities.iter().enumerate() {
        let mut columns = vec![column("id", "int64", ColumnKind::Key)];
        if index > 0 {
            let parent = rng.range(0, index as i64 - 1) as usize;
            columns.push(column(&format!("{}_id", entities[parent].1), "int64", ColumnKind::ForeignKey { parent }));
            if index > 1 && rng.chance(30) {
                let other = rng.range(0, index as i64 - 1) as usize;
                if other != parent {
                    columns.push(column(&format!("{}_id", entities[other].1), "int64", ColumnKind::ForeignKey { parent: other }));
                }
            }
        }
        add_columns(&mut columns, domain, &mut rng);
        tables.push(SynthTable { name: name.to_string(), columns });
    }
    SynthSchema { name: format!("{}_{number}", domain.name), domain: domain.name, tables }
}

/// The attribute columns of one table: at least one category, one number and one text, then
/// a few of every other kind, each kind's name drawn once.
fn add_columns(columns: &mut Vec<SynthColumn>, domain: &Domain, rng: &mut Rng) {
    let add = |columns: &mut Vec<SynthColumn>, names: &[&str], ty: &str, kind: ColumnKind, rng: &mut Rng| {
        let name = rng.pick(names);
        if !columns.iter().any(|c| c.name == *name) {
            columns.push(column(name, ty, kind));
        }
    };
    for _ in 0..rng.range(1, 2) {
        add(columns, domain.categories, "string", ColumnKind::Category, rng);
    }
    add(columns, domain.texts, "string", ColumnKind::Text, rng);
    let count_type = *rng.pick(INTEGERS);
    add(columns, domain.counts, count_type, ColumnKind::Count, rng);
    if rng.chance(60) {
        let decimal = *rng.pick(DECIMALS);
        add(columns, domain.money, decimal, ColumnKind::Money, rng);
    }
    if rng.chance(50) {
        add(columns, domain.measures, "float64", ColumnKind::Measure, rng);
    }
    if rng.chance(40) {
        add(columns, FLAGS, "boolean", ColumnKind::Flag, rng);
    }
    if rng.chance(55) {
        add(columns, DATES, "date", ColumnKind::Date, rng);
    }
    if rng.chance(40) {
        add(columns, TIMESTAMPS, "timestamp", ColumnKind::Timestamp, rng);
    }
    if rng.chance(15) {
        add(columns, STRING_LISTS, "array<string>", ColumnKind::StringList, rng);
    }
    if rng.chance(8) {
        add(columns, INT_LISTS, "array<int64>", ColumnKind::IntList, rng);
    }
    if rng.chance(12) {
        let (name, first, (second, second_type)) = *rng.pick(STRUCTS);
        if !columns.iter().any(|c| c.name == name) {
            let fields = vec![(first.to_string(), "string".to_string()), (second.to_string(), second_type.to_string())];
            let ty = format!("struct<{first}: string, {second}: {second_type}>");
            columns.push(SynthColumn { name: name.to_string(), ty, kind: ColumnKind::Struct, fields });
        }
    }
}

fn column(name: &str, ty: &str, kind: ColumnKind) -> SynthColumn {
    SynthColumn { name: name.to_string(), ty: ty.to_string(), kind, fields: Vec::new() }
}

/// Fisher-Yates with the seeded generator.
pub fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for index in (1..items.len()).rev() {
        let other = rng.range(0, index as i64) as usize;
        items.swap(index, other);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_are_fixed_by_seed_and_number_and_link_every_table() {
        assert_eq!(synth_schema(7, 3, 2, 12), synth_schema(7, 3, 2, 12));
        assert_ne!(synth_schema(7, 3, 2, 12), synth_schema(7, 4, 2, 12));
        for number in 0..200 {
            let schema = synth_schema(1, number, 2, 12);
            assert!((2..=12).contains(&schema.tables.len()), "{} tables", schema.tables.len());
            for (index, table) in schema.tables.iter().enumerate() {
                assert_eq!(table.columns[0].name, "id");
                let parents: Vec<usize> = table.foreign_keys().map(|(_, parent)| parent).collect();
                assert_eq!(parents.is_empty(), index == 0, "every table but the first references an earlier one");
                assert!(parents.iter().all(|&parent| parent < index));
                let mut names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
                names.sort_unstable();
                names.dedup();
                assert_eq!(names.len(), table.columns.len(), "{}: a column name twice", table.name);
            }
        }
    }

    #[test]
    fn the_table_count_stays_in_the_asked_range() {
        for number in 0..50 {
            let tables = synth_schema(2, number, 3, 4).tables.len();
            assert!((3..=4).contains(&tables), "{tables}");
        }
    }

    #[test]
    fn every_column_kind_appears_over_many_schemas() {
        let kinds: Vec<ColumnKind> = (0..300).flat_map(|n| synth_schema(5, n, 2, 12).tables).flat_map(|t| t.columns).map(|c| c.kind).collect();
        for wanted in [
            ColumnKind::Money,
            ColumnKind::Measure,
            ColumnKind::Flag,
            ColumnKind::Date,
            ColumnKind::Timestamp,
            ColumnKind::StringList,
            ColumnKind::IntList,
            ColumnKind::Struct,
        ] {
            assert!(kinds.contains(&wanted), "{wanted:?} never drawn");
        }
    }
}
