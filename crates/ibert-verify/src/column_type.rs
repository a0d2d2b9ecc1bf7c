//! Ibis type strings (`int64`, `!string`, `decimal(10, 2)`, `array<struct<a: int64>>`) parsed into
//! [`ColumnType`], which fixtures generate values for and render as DuckDB column types.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    Int { bits: u8, unsigned: bool },
    Float { bits: u8 },
    Decimal { precision: u8, scale: u8 },
    String,
    Boolean,
    Date,
    Timestamp,
    Time,
    Uuid,
    Binary,
    Array(Box<ColumnType>),
    Struct(Vec<(String, ColumnType)>),
    Map(Box<ColumnType>, Box<ColumnType>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported or malformed column type `{text}`: {reason}")]
pub struct TypeError {
    pub text: String,
    pub reason: String,
}

impl ColumnType {
    /// Parses an Ibis type string. A leading `!` (non-nullable) is accepted and ignored.
    pub fn parse(text: &str) -> Result<ColumnType, TypeError> {
        let mut parser = Parser { text, rest: text };
        let parsed = parser.parse_type()?;
        if !parser.rest.trim().is_empty() {
            return Err(parser.error(format!("unexpected `{}` after the type", parser.rest.trim())));
        }
        Ok(parsed)
    }

    /// The DuckDB type of a column holding this type.
    pub fn duckdb_sql(&self) -> String {
        match self {
            ColumnType::Int { bits, unsigned } => {
                let base = match bits {
                    8 => "TINYINT",
                    16 => "SMALLINT",
                    32 => "INTEGER",
                    _ => "BIGINT",
                };
                if *unsigned { format!("U{base}") } else { base.to_string() }
            }
            ColumnType::Float { bits: 32 } => "FLOAT".into(),
            ColumnType::Float { .. } => "DOUBLE".into(),
            ColumnType::Decimal { precision, scale } => format!("DECIMAL({precision}, {scale})"),
            ColumnType::String => "VARCHAR".into(),
            ColumnType::Boolean => "BOOLEAN".into(),
            ColumnType::Date => "DATE".into(),
            ColumnType::Timestamp => "TIMESTAMP".into(),
            ColumnType::Time => "TIME".into(),
            ColumnType::Uuid => "UUID".into(),
            ColumnType::Binary => "BLOB".into(),
            ColumnType::Array(element) => format!("{}[]", element.duckdb_sql()),
            ColumnType::Struct(fields) => {
                let fields: Vec<String> = fields.iter().map(|(name, field)| format!("{} {}", quote_identifier(name), field.duckdb_sql())).collect();
                format!("STRUCT({})", fields.join(", "))
            }
            ColumnType::Map(key, value) => format!("MAP({}, {})", key.duckdb_sql(), value.duckdb_sql()),
        }
    }
}

/// `"name"`, with embedded quotes doubled.
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

struct Parser<'a> {
    text: &'a str,
    rest: &'a str,
}

impl Parser<'_> {
    fn error(&self, reason: String) -> TypeError {
        TypeError { text: self.text.to_string(), reason }
    }

    fn skip_space(&mut self) {
        self.rest = self.rest.trim_start();
    }

    fn eat(&mut self, token: char) -> bool {
        self.skip_space();
        if let Some(rest) = self.rest.strip_prefix(token) {
            self.rest = rest;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: char) -> Result<(), TypeError> {
        if self.eat(token) { Ok(()) } else { Err(self.error(format!("expected `{token}`, found `{}`", self.rest.trim()))) }
    }

    fn word(&mut self) -> &str {
        self.skip_space();
        let end = self.rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(self.rest.len());
        let (word, rest) = self.rest.split_at(end);
        self.rest = rest;
        word
    }

    fn number(&mut self) -> Result<u8, TypeError> {
        let word = self.word().to_string();
        word.parse().map_err(|_| self.error(format!("expected a number, found `{word}`")))
    }

    /// Skips a parenthesized argument list we do not model (`timestamp('UTC', 6)`).
    fn skip_arguments(&mut self) {
        if self.eat('(') {
            let mut depth = 1;
            while depth > 0 && !self.rest.is_empty() {
                let c = self.rest.chars().next().unwrap();
                self.rest = &self.rest[c.len_utf8()..];
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
            }
        }
    }

    fn parse_type(&mut self) -> Result<ColumnType, TypeError> {
        self.eat('!');
        let name = self.word().to_ascii_lowercase();
        let parsed = match name.as_str() {
            "int8" => ColumnType::Int { bits: 8, unsigned: false },
            "int16" => ColumnType::Int { bits: 16, unsigned: false },
            "int32" => ColumnType::Int { bits: 32, unsigned: false },
            "int64" | "int" => ColumnType::Int { bits: 64, unsigned: false },
            "uint8" => ColumnType::Int { bits: 8, unsigned: true },
            "uint16" => ColumnType::Int { bits: 16, unsigned: true },
            "uint32" => ColumnType::Int { bits: 32, unsigned: true },
            "uint64" => ColumnType::Int { bits: 64, unsigned: true },
            "float32" => ColumnType::Float { bits: 32 },
            "float64" | "float" | "double" => ColumnType::Float { bits: 64 },
            "string" | "str" => ColumnType::String,
            "boolean" | "bool" => ColumnType::Boolean,
            "date" => ColumnType::Date,
            "time" => ColumnType::Time,
            "uuid" => ColumnType::Uuid,
            "binary" | "bytes" => ColumnType::Binary,
            "timestamp" => {
                self.skip_arguments();
                ColumnType::Timestamp
            }
            "decimal" => {
                if self.eat('(') {
                    let precision = self.number()?;
                    self.expect(',')?;
                    let scale = self.number()?;
                    self.expect(')')?;
                    if precision == 0 || precision > 38 || scale > precision {
                        return Err(self.error(format!("decimal({precision}, {scale}) is out of range")));
                    }
                    ColumnType::Decimal { precision, scale }
                } else {
                    ColumnType::Decimal { precision: 18, scale: 3 }
                }
            }
            "array" => {
                self.expect('<')?;
                let element = self.parse_type()?;
                self.expect('>')?;
                ColumnType::Array(Box::new(element))
            }
            "map" => {
                self.expect('<')?;
                let key = self.parse_type()?;
                self.expect(',')?;
                let value = self.parse_type()?;
                self.expect('>')?;
                ColumnType::Map(Box::new(key), Box::new(value))
            }
            "struct" => {
                self.expect('<')?;
                let mut fields = Vec::new();
                loop {
                    let field = self.word().to_string();
                    if field.is_empty() {
                        return Err(self.error("expected a struct field name".into()));
                    }
                    self.expect(':')?;
                    fields.push((field, self.parse_type()?));
                    if self.eat('>') {
                        break;
                    }
                    self.expect(',')?;
                }
                ColumnType::Struct(fields)
            }
            "" => return Err(self.error("expected a type name".into())),
            other => return Err(self.error(format!("iBERT cannot generate fixture data for `{other}`"))),
        };
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scalars_and_renders_duckdb_types() {
        let cases = [
            ("int64", "BIGINT"),
            ("!int32", "INTEGER"),
            ("uint8", "UTINYINT"),
            ("float32", "FLOAT"),
            ("float64", "DOUBLE"),
            ("decimal(10, 2)", "DECIMAL(10, 2)"),
            ("string", "VARCHAR"),
            ("timestamp('UTC')", "TIMESTAMP"),
            ("array<string>", "VARCHAR[]"),
            ("struct<lat: float64, site: string>", "STRUCT(\"lat\" DOUBLE, \"site\" VARCHAR)"),
            ("map<string, array<int64>>", "MAP(VARCHAR, BIGINT[])"),
        ];
        for (text, expected) in cases {
            assert_eq!(ColumnType::parse(text).unwrap().duckdb_sql(), expected, "{text}");
        }
    }

    #[test]
    fn malformed_types_say_what_is_wrong() {
        let error = ColumnType::parse("array<int64").unwrap_err();
        assert!(error.to_string().contains("expected `>`"), "{error}");
        let error = ColumnType::parse("geometry").unwrap_err();
        assert!(error.to_string().contains("`geometry`"), "{error}");
        let error = ColumnType::parse("decimal(5, 9)").unwrap_err();
        assert!(error.to_string().contains("out of range"), "{error}");
    }
}
