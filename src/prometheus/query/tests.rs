use super::*;
use rstest::rstest;

const CPU: &str = r#"avg(rate(container_cpu_usage_seconds_total{container_label_com_docker_swarm_service_name="$service"}[1m]))"#;

#[rstest]
#[case::one_selector(CPU)]
#[case::two_selectors(r#"sum(rate(x{service="$service"}[1m])) / count(up{service="$service"})"#)]
#[case::scalar(r#"scalar(avg(x{service="$service"}))"#)]
#[case::with_other_matchers(r#"avg(x{job="app", service="$service", env=~"prod|staging"})"#)]
#[case::bare_selector(r#"x{service="$service"}"#)]
fn queries_that_name_the_service_by_matcher_load(#[case] text: &str) {
    let query = ServiceQuery::parse(text).unwrap();
    assert_eq!(query.as_str(), text);
}

#[rstest]
#[case::not_promql(r#"avg(x{service="$service"}"#, "not PromQL")]
#[case::range_vector(r#"x{service="$service"}[5m]"#, "not a matrix")]
#[case::string(r#""$service""#, "not a string")]
#[case::no_placeholder("avg(x)", "select the service")]
#[case::single_quotes(r#"avg(x{service='$service'})"#, "written \"$service\"")]
#[case::regex(r#"avg(x{service=~"$service"})"#, "select the service")]
#[case::regex_beside(r#"avg(x{service="$service", t=~"$service.+"})"#, "whole label value")]
#[case::not_equal(r#"avg(x{service="$service", b!="$service"})"#, "whole label value")]
#[case::in_a_string(
    r#"label_replace(avg(x{service="$service"}), "a", "$service", "", "")"#,
    "whole label value"
)]
#[case::part_of_a_value(r#"avg(x{service="$service", b="pre-$service"})"#, "whole label value")]
#[case::in_a_comment("avg(x{service=\"$service\"}) # \"$service\"", "whole label value")]
fn queries_that_could_misplace_the_name_are_refused(#[case] text: &str, #[case] says: &str) {
    let error = ServiceQuery::parse(text).unwrap_err();
    assert!(error.contains(says), "{error}");
}

#[test]
fn an_overlong_query_is_refused_before_it_is_parsed() {
    let text = format!(r#"avg(x{{service="$service"}}) + {}"#, "1 + ".repeat(3000));
    assert!(ServiceQuery::parse(&text)
        .unwrap_err()
        .contains("bytes long"));
}

#[test]
fn the_service_is_put_in_every_placeholder() {
    let query = ServiceQuery::parse(r#"sum(a{s="$service"}) / count(b{s="$service"})"#).unwrap();
    assert_eq!(
        query.for_service("app_web"),
        r#"sum(a{s="app_web"}) / count(b{s="app_web"})"#
    );
}

/// Whatever the name, the substituted query parses to matchers whose value is exactly that
/// name: it never ends the string early or adds PromQL of its own.
#[rstest]
#[case::quote(r#"web"} or vector(1) or x{a=""#)]
#[case::backslash(r"web\")]
#[case::newline("web\n# comment")]
#[case::control("web\u{7}\u{0}")]
#[case::unicode("wéb‽")]
fn a_name_stays_a_label_value(#[case] name: &str) {
    let query = ServiceQuery::parse(CPU).unwrap();
    let concrete = query.for_service(name);
    let expr = parser::parse(&concrete).unwrap_or_else(|e| panic!("{concrete}: {e}"));
    let mut values = Vec::new();
    let mut collect = Collect(&mut values);
    let _ = walk_expr(&mut collect, &expr);
    assert_eq!(values, [name.to_string()], "{concrete}");
}

struct Collect<'a>(&'a mut Vec<String>);

impl ExprVisitor for Collect<'_> {
    type Error = std::convert::Infallible;

    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, Self::Error> {
        if let Expr::MatrixSelector(ms) = expr {
            self.0
                .extend(ms.vs.matchers.matchers.iter().map(|m| m.value.clone()));
        }
        Ok(true)
    }
}

#[rstest]
#[case::plain("app_web", r#""app_web""#)]
#[case::quote(r#"a"b"#, r#""a\"b""#)]
#[case::backslash(r"a\b", r#""a\\b""#)]
#[case::newline("a\nb", r#""a\nb""#)]
#[case::bell("a\u{7}", r#""a\u0007""#)]
fn names_are_quoted_for_promql(#[case] name: &str, #[case] quoted: &str) {
    assert_eq!(promql_string(name), quoted);
}
