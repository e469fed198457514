//! Alertmanager matcher syntax: `name = "value"`, `!=`, `=~`, `!~`. Regexes are fully anchored, as
//! in Alertmanager, so `severity =~ "warn"` does not match `warning`.

use crate::parse::LabelSet;
use regex::Regex;

/// The four matcher operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchOp {
    fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// One parsed matcher. A missing label matches as the empty string, as in Alertmanager.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

/// A matcher that does not parse, with the byte offset in the matcher text where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MatcherError {
    pub offset: usize,
    pub message: String,
}

fn err(offset: usize, message: impl Into<String>) -> MatcherError {
    MatcherError {
        offset,
        message: message.into(),
    }
}

impl Matcher {
    /// Parse one matcher such as `severity =~ "warning|critical"`.
    pub fn parse(text: &str) -> Result<Self, MatcherError> {
        let mut cursor = Cursor { text, pos: 0 };
        cursor.skip_spaces();
        let name = cursor.label_name()?;
        cursor.skip_spaces();
        let op = cursor.operator()?;
        cursor.skip_spaces();
        let value = cursor.value()?;
        cursor.skip_spaces();
        if cursor.pos != text.len() {
            return Err(err(cursor.pos, "unexpected text after the matcher value"));
        }
        Self::new(name, op, value).map_err(|message| err(0, message))
    }

    /// Build a matcher, compiling (and anchoring) its regex.
    pub fn new(name: String, op: MatchOp, value: String) -> Result<Self, String> {
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("invalid regex {value:?}: {}", last_line(&e)))?,
            ),
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Self {
            name,
            op,
            value,
            regex,
        })
    }

    /// Whether the labels satisfy this matcher.
    pub fn matches(&self, labels: &LabelSet) -> bool {
        let actual = labels.get(&self.name).map_or("", String::as_str);
        match (&self.op, &self.regex) {
            (MatchOp::Equal, _) => actual == self.value,
            (MatchOp::NotEqual, _) => actual != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(actual),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(actual),
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }

    /// The equality value when this matcher pins a label to one value (used to index rules).
    pub fn equality(&self) -> Option<&str> {
        (self.op == MatchOp::Equal).then_some(self.value.as_str())
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

/// The last non-empty line of a regex error: the regex crate ends with the line that says what
/// is wrong ("error: unclosed group"), after a drawing of the pattern.
fn last_line(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Prometheus' label names: `[a-zA-Z_][a-zA-Z0-9_]*`; `i` is the character's position.
pub(crate) fn is_label_char(i: usize, c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())
}

/// Whether `name` is a whole Prometheus label name.
pub(crate) fn is_label_name(name: &str) -> bool {
    !name.is_empty() && name.chars().enumerate().all(|(i, c)| is_label_char(i, c))
}

struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl Cursor<'_> {
    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn skip_spaces(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.text.len() - trimmed.len();
    }

    fn label_name(&mut self) -> Result<String, MatcherError> {
        if self.rest().starts_with('"') {
            return self.quoted();
        }
        let len = self
            .rest()
            .char_indices()
            .find(|&(i, c)| !is_label_char(i, c))
            .map_or(self.rest().len(), |(i, _)| i);
        if len == 0 {
            return Err(err(self.pos, "expected a label name"));
        }
        let name = self.rest()[..len].to_string();
        self.pos += len;
        Ok(name)
    }

    fn operator(&mut self) -> Result<MatchOp, MatcherError> {
        let op = [
            ("=~", MatchOp::Regex),
            ("!~", MatchOp::NotRegex),
            ("!=", MatchOp::NotEqual),
            ("=", MatchOp::Equal),
        ]
        .into_iter()
        .find(|(token, _)| self.rest().starts_with(token));
        match op {
            Some((token, op)) => {
                self.pos += token.len();
                Ok(op)
            }
            None => Err(err(self.pos, "expected one of = != =~ !~")),
        }
    }

    fn value(&mut self) -> Result<String, MatcherError> {
        if self.rest().starts_with('"') {
            return self.quoted();
        }
        let value = self.rest().trim_end().to_string();
        if value.contains(['"', ',', '{', '}']) {
            return Err(err(
                self.pos,
                "quote values that contain \", ',', '{' or '}'",
            ));
        }
        self.pos += value.len();
        Ok(value)
    }

    /// A double-quoted string with Go-style escapes `\"`, `\\`, `\n`, `\t`.
    fn quoted(&mut self) -> Result<String, MatcherError> {
        let start = self.pos;
        let mut out = String::new();
        let mut chars = self.rest().char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, e @ ('"' | '\\'))) => out.push(e),
                    Some((j, other)) => {
                        return Err(err(start + j, format!("unknown escape \\{other}")));
                    }
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err(err(start, "unterminated quoted string"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn labels(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[rstest]
    #[case::eq_hit(r#"alertname = "HighCPU""#, &[("alertname", "HighCPU")], true)]
    #[case::eq_miss(r#"alertname="HighCPU""#, &[("alertname", "HighCPU2")], false)]
    #[case::eq_unquoted("alertname=HighCPU", &[("alertname", "HighCPU")], true)]
    #[case::eq_missing_label_is_empty(r#"team="""#, &[], true)]
    #[case::ne_hit(r#"env != "dev""#, &[("env", "prod")], true)]
    #[case::ne_missing(r#"env != "dev""#, &[], true)]
    #[case::ne_miss(r#"env!="dev""#, &[("env", "dev")], false)]
    #[case::re_alternation(r#"severity =~ "warning|critical""#, &[("severity", "critical")], true)]
    #[case::re_is_anchored(r#"severity =~ "warn""#, &[("severity", "warning")], false)]
    #[case::re_anchored_alternation(r#"s =~ "a|b""#, &[("s", "ab")], false)]
    #[case::re_dot_star(r#"service =~ "demo_.*""#, &[("service", "demo_web")], true)]
    #[case::nre_hit(r#"env !~ "dev|test""#, &[("env", "prod")], true)]
    #[case::nre_miss(r#"env !~ "dev|test""#, &[("env", "test")], false)]
    #[case::nre_missing_label(r#"env !~ ".+""#, &[], true)]
    #[case::escaped_quote(r#"msg = "say \"hi\"""#, &[("msg", "say \"hi\"")], true)]
    #[case::quoted_name(r#""alertname" = "X""#, &[("alertname", "X")], true)]
    fn matches(#[case] text: &str, #[case] labels_: &[(&str, &str)], #[case] expected: bool) {
        let m = Matcher::parse(text).expect("parses");
        assert_eq!(m.matches(&labels(labels_)), expected, "{text}");
    }

    #[rstest]
    #[case::no_name(r#"= "x""#, 0, "expected a label name")]
    #[case::no_op(r#"alertname "x""#, 10, "expected one of = != =~ !~")]
    #[case::unterminated(r#"a = "x"#, 4, "unterminated quoted string")]
    #[case::trailing(r#"a = "x" b"#, 8, "unexpected text after the matcher value")]
    #[case::bad_escape(r#"a = "\q""#, 6, "unknown escape \\q")]
    #[case::digit_first("1a = x", 0, "expected a label name")]
    fn rejects(#[case] text: &str, #[case] offset: usize, #[case] message: &str) {
        assert_eq!(Matcher::parse(text).unwrap_err(), err(offset, message));
    }

    #[test]
    fn rejects_bad_regex_with_its_reason() {
        let e = Matcher::parse(r#"a =~ "(unclosed""#).unwrap_err();
        assert!(e.message.starts_with("invalid regex \"(unclosed\""), "{e}");
    }

    #[test]
    fn equality_is_only_for_equal() {
        assert_eq!(Matcher::parse("a=b").unwrap().equality(), Some("b"));
        assert_eq!(Matcher::parse("a=~b").unwrap().equality(), None);
    }
}
