//! Python expressions as the translator builds them: code, and how tightly it binds, so that
//! parentheses are written only where Python needs them.

// Python operator precedence, loosest first.
pub(super) const COMPARISON: u8 = 5;
pub(super) const OR: u8 = 6;
pub(super) const AND: u8 = 8;
pub(super) const ADDITIVE: u8 = 10;
pub(super) const MULTIPLICATIVE: u8 = 11;
pub(super) const UNARY: u8 = 12;
pub(super) const POWER: u8 = 13;
pub(super) const ATOM: u8 = 20;

/// A Python expression and how tightly it binds.
#[derive(Clone, Debug)]
pub(crate) struct Py {
    pub code: String,
    pub(super) prec: u8,
    /// A bare Python literal, which needs `ibis.literal(...)` to receive a method or stand alone.
    pub(super) literal: bool,
}

impl Py {
    pub(super) fn atom(code: String) -> Py {
        Py { code, prec: ATOM, literal: false }
    }

    pub(super) fn literal(code: String) -> Py {
        Py { code, prec: ATOM, literal: true }
    }

    pub(super) fn op(code: String, prec: u8) -> Py {
        Py { code, prec, literal: false }
    }

    /// The expression as an Ibis value.
    pub fn value(&self) -> String {
        if self.literal { format!("ibis.literal({})", self.code) } else { self.code.clone() }
    }

    /// The expression as the receiver of a method call.
    pub(crate) fn receiver(&self) -> String {
        if self.literal { format!("ibis.literal({})", self.code) } else { self.operand(ATOM) }
    }

    /// The expression as an operand that binds at least as tightly as `min_prec`.
    pub(super) fn operand(&self, min_prec: u8) -> String {
        if self.prec < min_prec { format!("({})", self.code) } else { self.code.clone() }
    }

    pub(super) fn method(&self, name: &str, args: &[String]) -> Py {
        Py::atom(format!("{}.{name}({})", self.receiver(), args.join(", ")))
    }
}

/// `~x`.
pub(super) fn not(py: Py) -> Py {
    Py::op(format!("~{}", py.operand(UNARY)), UNARY)
}

/// One item as itself, several as a list.
pub(super) fn list_or_single(mut items: Vec<String>) -> String {
    if items.len() == 1 { items.remove(0) } else { format!("[{}]", items.join(", ")) }
}
