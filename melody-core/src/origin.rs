//! Which `Origin` a browser request may come from: the request's own host, and the
//! entries of an allow-list, each an exact origin or a pattern with `*` for the leading
//! host labels (`https://*.example.com`) or for the port (`http://localhost:*`).

use crate::config::OriginPolicy;

/// Whether a request with `Origin: origin` and `Host: host` passes `policy`.
pub(crate) fn allowed(origin: &str, host: &str, policy: &OriginPolicy) -> bool {
    match policy {
        OriginPolicy::Any => true,
        OriginPolicy::SameOrigin => same_origin(origin, host),
        OriginPolicy::AllowList(list) => {
            same_origin(origin, host) || list.iter().any(|pattern| matches(pattern, origin))
        }
    }
}

/// The origin names the host the request was sent to.
fn same_origin(origin: &str, host: &str) -> bool {
    split(origin).is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host))
}

/// `scheme` and `host[:port]` of an origin (a trailing `/` is tolerated).
fn split(origin: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = origin.split_once("://")?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    (!scheme.is_empty() && !authority.is_empty() && !authority.contains('/'))
        .then_some((scheme, authority))
}

/// `host` and `port` of an authority (`[::1]:80` keeps its brackets).
fn host_port(authority: &str) -> (&str, Option<&str>) {
    match authority.rfind(':') {
        Some(at) if !authority[at..].contains(']') => {
            (&authority[..at], Some(&authority[at + 1..]))
        }
        _ => (authority, None),
    }
}

/// Whether `origin` matches an allow-list entry, case-insensitively.
pub(crate) fn matches(pattern: &str, origin: &str) -> bool {
    let (Some((p_scheme, p_authority)), Some((o_scheme, o_authority))) =
        (split(pattern), split(origin))
    else {
        return false;
    };
    if !p_scheme.eq_ignore_ascii_case(o_scheme) {
        return false;
    }
    let ((p_host, p_port), (o_host, o_port)) = (host_port(p_authority), host_port(o_authority));
    let port_ok = match p_port {
        Some("*") => true,
        _ => p_port.map(str::to_ascii_lowercase) == o_port.map(str::to_ascii_lowercase),
    };
    let host_ok = match p_host.strip_prefix("*.") {
        // At least one label in place of the star: `*.example.com` is not `example.com`.
        Some(suffix) => {
            o_host.len() > suffix.len() + 1 && {
                let (labels, rest) = o_host.split_at(o_host.len() - suffix.len());
                rest.eq_ignore_ascii_case(suffix) && labels.ends_with('.') && labels.len() > 1
            }
        }
        None => p_host.eq_ignore_ascii_case(o_host),
    };
    port_ok && host_ok
}

/// Why an allow-list entry can never match, if it cannot: the config refuses it.
pub(crate) fn pattern_error(pattern: &str) -> Option<&'static str> {
    let Some((_, authority)) = split(pattern) else {
        return Some("not of the form scheme://host[:port]");
    };
    let (host, port) = host_port(authority);
    let host_stars = host.strip_prefix("*.").unwrap_or(host);
    if host.is_empty() || host_stars.is_empty() || host_stars.contains('*') {
        return Some("`*` stands only for leading host labels, as in `https://*.example.com`");
    }
    match port {
        Some("*") | None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => None,
        Some(_) => Some("the port is digits or `*`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_entries_match_case_insensitively_with_or_without_a_slash() {
        assert!(matches("https://example.com", "https://EXAMPLE.com"));
        assert!(matches("https://example.com/", "https://example.com"));
        assert!(!matches("https://example.com", "http://example.com"));
        assert!(!matches("https://example.com", "https://example.com:8443"));
        assert!(!matches(
            "https://example.com",
            "https://example.com.evil.test"
        ));
    }

    #[test]
    fn a_star_stands_for_leading_labels_only() {
        let p = "https://*.example.com";
        assert!(matches(p, "https://app.example.com"));
        assert!(matches(p, "https://a.b.example.com"));
        assert!(!matches(p, "https://example.com"), "one label at least");
        assert!(!matches(p, "https://evilexample.com"), "a whole label");
        assert!(!matches(p, "https://app.example.com.evil.test"));
        assert!(!matches(p, "http://app.example.com"), "the scheme counts");
        assert!(
            !matches(p, "https://app.example.com:8443"),
            "so does the port"
        );
    }

    #[test]
    fn a_star_port_takes_any_port() {
        let p = "http://localhost:*";
        assert!(matches(p, "http://localhost:3000"));
        assert!(matches(p, "http://localhost"));
        assert!(!matches(p, "http://localhost.evil.test:3000"));
        assert!(matches("http://[::1]:*", "http://[::1]:5173"));
        assert!(!matches("http://[::1]:*", "http://[::2]:5173"));
    }

    #[test]
    fn the_requests_own_host_is_always_allowed() {
        let list = OriginPolicy::AllowList(vec!["https://*.example.com".into()]);
        assert!(allowed("http://localhost:5000", "localhost:5000", &list));
        assert!(allowed("https://app.example.com", "localhost:5000", &list));
        assert!(!allowed("https://evil.test", "localhost:5000", &list));
        assert!(!allowed("null", "localhost:5000", &list));
    }

    #[test]
    fn patterns_that_can_never_match_are_named() {
        for ok in [
            "https://example.com",
            "https://*.example.com",
            "http://localhost:*",
            "http://h:80",
        ] {
            assert_eq!(pattern_error(ok), None, "{ok}");
        }
        for bad in [
            "example.com",
            "https://*",
            "https://a.*.com",
            "https://*example.com",
            "http://h:x",
        ] {
            assert!(pattern_error(bad).is_some(), "{bad}");
        }
    }
}
