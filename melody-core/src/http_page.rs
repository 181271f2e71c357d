//! A page served to plain `GET`s at the paths it is configured for ([`Config::http_page`](crate::Config::http_page)).

use bytes::Bytes;

/// An HTML page and the paths it is served at, so that one port can serve a demo page
/// beside its sockets without an HTTP framework. Any other plain `GET` gets
/// `426 Upgrade Required`: the other paths are the sockets'.
///
/// A path is matched exactly against the request's path (the query is ignored); a
/// `*` segment matches any one non-empty segment: `/room/*` takes `/room/rust`, not
/// `/room/rust/ws` nor `/room/`.
///
/// ```
/// use melody_core::HttpPage;
///
/// let page = HttpPage::at("/", "<!doctype html><p>hello").also_at("/room/*");
/// assert!(page.serves("/") && page.serves("/room/rust"));
/// assert!(!page.serves("/echo") && !page.serves("/room/rust/ws"));
/// assert_eq!(page.html(), "<!doctype html><p>hello");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpPage {
    paths: Vec<String>,
    html: Bytes,
}

impl HttpPage {
    /// The page `html`, served at `path`.
    ///
    /// ```
    /// use melody_core::HttpPage;
    ///
    /// let page = HttpPage::at("/", "<!doctype html><p>hello");
    /// assert_eq!(page.paths(), ["/"]);
    /// ```
    pub fn at(path: impl Into<String>, html: impl Into<Bytes>) -> Self {
        HttpPage {
            paths: vec![path.into()],
            html: html.into(),
        }
    }

    /// The same page, served at `path` too.
    ///
    /// ```
    /// use melody_core::HttpPage;
    ///
    /// let page = HttpPage::at("/", "<p>hi").also_at("/index.html");
    /// assert_eq!(page.paths(), ["/", "/index.html"]);
    /// ```
    #[must_use]
    pub fn also_at(mut self, path: impl Into<String>) -> Self {
        self.paths.push(path.into());
        self
    }

    /// The paths it is served at, in the order given.
    ///
    /// ```
    /// use melody_core::HttpPage;
    ///
    /// assert_eq!(HttpPage::at("/chat", "<p>hi").paths(), ["/chat"]);
    /// ```
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// The page itself.
    ///
    /// ```
    /// use melody_core::HttpPage;
    ///
    /// assert_eq!(HttpPage::at("/", "<p>hi").html(), "<p>hi");
    /// ```
    pub fn html(&self) -> &Bytes {
        &self.html
    }

    /// Whether a request for `path` (without its query) gets the page.
    ///
    /// ```
    /// use melody_core::HttpPage;
    ///
    /// let page = HttpPage::at("/room/*", "<p>a room");
    /// assert!(page.serves("/room/go"));
    /// assert!(!page.serves("/room"));
    /// ```
    pub fn serves(&self, path: &str) -> bool {
        self.paths.iter().any(|pattern| matches(pattern, path))
    }

    /// Why a configured path could never match, if it could not.
    pub(crate) fn path_error(&self) -> Option<(&str, &'static str)> {
        self.paths.iter().find_map(|p| {
            if !p.starts_with('/') {
                Some((p.as_str(), "a path starts with `/`"))
            } else if p.contains(['?', '#']) {
                Some((p.as_str(), "a path has no query or fragment"))
            } else {
                None
            }
        })
    }
}

/// `pattern` and `path` have the same segments, `*` standing for any non-empty one.
fn matches(pattern: &str, path: &str) -> bool {
    let (mut want, mut got) = (pattern.split('/'), path.split('/'));
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some("*"), Some(segment)) if !segment.is_empty() => {}
            (Some(w), Some(g)) if w == g => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_paths_and_one_segment_wildcards() {
        let page = HttpPage::at("/", "x").also_at("/a/*/c");
        for (path, served) in [
            ("/", true),
            ("", false),
            ("/echo", false),
            ("/a/b/c", true),
            ("/a//c", false),
            ("/a/b/c/", false),
            ("/a/b", false),
        ] {
            assert_eq!(page.serves(path), served, "{path:?}");
        }
    }

    #[test]
    fn paths_that_could_never_match_are_reported() {
        assert!(HttpPage::at("/", "x").path_error().is_none());
        assert!(HttpPage::at("chat", "x").path_error().is_some());
        assert!(HttpPage::at("/chat?x=1", "x").path_error().is_some());
    }
}
