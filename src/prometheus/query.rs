//! The PromQL a `scale_to_target` rule evaluates for the value (`query:`). The rule names the
//! service it is about with the placeholder `"$service"` as a label matcher's value, e.g.
//!
//! ```text
//! avg(rate(container_cpu_usage_seconds_total{container_label_com_docker_swarm_service_name="$service"}[1m]))
//! ```
//!
//! At load the text is parsed with Prometheus' grammar: it must return an instant vector or a
//! scalar, and `"$service"` must stand only as the value of `=` matchers — then each occurrence of
//! that token in the text is such a value and nothing else (not part of another string, a
//! comment or a regex). At decision time each is replaced by the service name as a PromQL string
//! literal (escaped), so a name can never end the string and write PromQL of its own.

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{self, Expr};
use promql_parser::util::{walk_expr, ExprVisitor};
use serde::{Deserialize, Serialize};

/// What a rule writes where the service name goes, as a label matcher's value.
pub const SERVICE_PLACEHOLDER: &str = "$service";
/// The placeholder as it stands in the text: a double-quoted PromQL string.
const TOKEN: &str = "\"$service\"";
/// A query is configuration, not data: anything longer is not meant.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;

/// A checked query: PromQL returning one value per service, with the service as `"$service"`.
/// Journaled with an intent as its text; a query read back from the journal is only ever
/// substituted (escaping does not depend on the check).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ServiceQuery(String);

impl ServiceQuery {
    /// The query, or why it cannot be one (a message for `check`, naming what to write).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.len() > MAX_QUERY_BYTES {
            return Err(format!(
                "query is {} bytes long: at most {MAX_QUERY_BYTES}",
                text.len()
            ));
        }
        let expr = parser::parse(text).map_err(|e| format!("query is not PromQL: {e}"))?;
        match expr.value_type() {
            ValueType::Vector | ValueType::Scalar => {}
            other => {
                return Err(format!(
                    "query must return an instant vector or a scalar (one value for the service), not a {other}"
                ))
            }
        }
        let mut places = Placeholders::default();
        // The visitor never fails: its error type is uninhabited in practice.
        let _ = walk_expr(&mut places, &expr);
        let tokens = text.matches(TOKEN).count();
        let mentions = text.matches(SERVICE_PLACEHOLDER).count();
        if places.as_value == 0 {
            return Err(format!(
                "query must select the service with a label matcher whose value is {TOKEN}, e.g. {{container_label_com_docker_swarm_service_name={TOKEN}}}"
            ));
        }
        if places.elsewhere > 0 || tokens != places.as_value || mentions != tokens {
            return Err(format!(
                "{SERVICE_PLACEHOLDER} may stand only as a whole label value after =, written {TOKEN} (not in another string, a regex, != or a comment)"
            ));
        }
        Ok(Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The query about `service`: each `"$service"` replaced by the name as a PromQL string.
    pub fn for_service(&self, service: &str) -> String {
        self.0.replace(TOKEN, &promql_string(service))
    }
}

impl std::fmt::Display for ServiceQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where the placeholder is, counted over every selector of the query.
#[derive(Default)]
struct Placeholders {
    /// As the whole value of an `=` matcher.
    as_value: usize,
    /// Anywhere else a value is parsed: another operator's value or a string argument.
    elsewhere: usize,
}

impl Placeholders {
    fn matchers<'a>(&mut self, matchers: impl Iterator<Item = &'a Matcher>) {
        for m in matchers {
            if m.value == SERVICE_PLACEHOLDER && m.op == MatchOp::Equal {
                self.as_value += 1;
            } else if m.value.contains(SERVICE_PLACEHOLDER) {
                self.elsewhere += 1;
            }
        }
    }

    fn selector(&mut self, vs: &parser::VectorSelector) {
        let all = vs.matchers.matchers.iter();
        let or = vs.matchers.or_matchers.iter().flatten();
        self.matchers(all.chain(or));
    }
}

impl ExprVisitor for Placeholders {
    type Error = std::convert::Infallible;

    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, Self::Error> {
        match expr {
            Expr::VectorSelector(vs) => self.selector(vs),
            Expr::MatrixSelector(ms) => self.selector(&ms.vs),
            Expr::StringLiteral(s) if s.val.contains(SERVICE_PLACEHOLDER) => self.elsewhere += 1,
            _ => {}
        }
        Ok(true)
    }
}

/// A PromQL double-quoted string: `\` and `"` escaped, and the control characters a name could
/// smuggle in written as escapes (PromQL strings follow Go's escapes).
pub fn promql_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests;
