//! Method chains (`orders.filter(...).group_by(...)`) and how they are laid out.

/// Lines longer than this are broken into one call per line.
const LINE_WIDTH: usize = 100;

/// A relation expression: a receiver followed by method calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    base: String,
    calls: Vec<String>,
}

impl Chain {
    pub fn new(base: impl Into<String>) -> Chain {
        Chain { base: base.into(), calls: Vec::new() }
    }

    /// Whether the chain is its receiver alone (a table or variable name).
    pub fn is_plain(&self) -> bool {
        self.calls.is_empty()
    }

    pub fn call(&mut self, method: &str, args: &[String]) {
        self.calls.push(format!("{method}({})", args.join(", ")));
    }

    /// The whole chain on one line; a primary expression in Python, so it needs no parentheses.
    pub fn inline(&self) -> String {
        let mut out = self.base.clone();
        for call in &self.calls {
            out.push('.');
            out.push_str(call);
        }
        out
    }

    /// `name = chain`, broken into a parenthesized call per line when long.
    pub fn assignment(&self, name: &str) -> String {
        let inline = self.inline();
        if name.len() + 3 + inline.len() <= LINE_WIDTH || self.calls.len() < 2 {
            return format!("{name} = {inline}");
        }
        let mut out = format!("{name} = (\n    {}", self.base);
        for call in &self.calls {
            out.push_str("\n    .");
            out.push_str(call);
        }
        out.push_str("\n)");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_chains_stay_on_one_line_and_long_ones_break_per_call() {
        let mut chain = Chain::new("orders");
        chain.call("filter", &["orders.amount > 10".into()]);
        assert_eq!(chain.assignment("expr"), "expr = orders.filter(orders.amount > 10)");
        chain.call("group_by", &["orders.status".into()]);
        chain.call("aggregate", &["total_amount_for_the_status=orders.amount.sum()".into(), "n=_.count()".into()]);
        assert_eq!(
            chain.assignment("expr"),
            "expr = (\n    orders\n    .filter(orders.amount > 10)\n    .group_by(orders.status)\n    .aggregate(total_amount_for_the_status=orders.amount.sum(), n=_.count())\n)"
        );
    }
}
