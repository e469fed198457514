//! Alert labels come from anywhere; only strings that can be Swarm service names are looked up.

/// Swarm service names: 1–63 characters, a letter or digit first, then letters, digits, `_`, `-`,
/// `.` (stack services are `stack_service`). Anything else is never sent to Docker.
pub fn is_valid_service_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    first_ok
        && name.len() <= 63
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("web", true)]
    #[case("sophia_backend", true)]
    #[case("a.b-c_d9", true)]
    #[case("", false)]
    #[case("-web", false)]
    #[case("web;rm -rf /", false)]
    #[case("$(reboot)", false)]
    #[case("../etc/passwd", false)]
    #[case("web\nother", false)]
    #[case("web\0", false)]
    #[case(&"a".repeat(64), false)]
    #[case(&"a".repeat(63), true)]
    fn validates(#[case] name: &str, #[case] ok: bool) {
        assert_eq!(is_valid_service_name(name), ok, "{name:?}");
    }
}
