//! Reading a client's `Sec-WebSocket-Extensions` offers and choosing the first
//! permessage-deflate offer we can honour (RFC 7692 §5 and §7.1).
//!
//! An offer we cannot honour is declined, never failed: the session then runs without
//! the extension, which every client must accept.

use tungstenite::http::HeaderMap;

use super::{Compression, DeflateParams, MAX_WINDOW_BITS};

/// The parameters to agree on, or `None` to answer without the extension.
pub(crate) fn negotiate(headers: &HeaderMap, mode: Compression) -> Option<DeflateParams> {
    if mode == Compression::Off {
        return None;
    }
    headers
        .get_all("sec-websocket-extensions")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(split_outside_quotes::<','>)
        .find_map(|offer| accept_offer(offer, mode))
}

/// One offer, if it is permessage-deflate and every parameter is one we can honour.
fn accept_offer(offer: &str, mode: Compression) -> Option<DeflateParams> {
    let mut parts = split_outside_quotes::<';'>(offer);
    if !parts
        .next()?
        .trim()
        .eq_ignore_ascii_case("permessage-deflate")
    {
        return None;
    }
    let mut seen = Seen::default();
    let mut params = DeflateParams {
        server_no_context_takeover: mode == Compression::Shared,
        client_no_context_takeover: false,
        server_max_window_bits: MAX_WINDOW_BITS,
        client_max_window_bits: MAX_WINDOW_BITS,
    };
    for param in parts {
        let (name, value) = match param.split_once('=') {
            Some((name, value)) => (name.trim(), Some(unquote(value.trim())?)),
            None => (param.trim(), None),
        };
        match (name.to_ascii_lowercase().as_str(), value) {
            ("server_no_context_takeover", None) if seen.first(0) => {
                params.server_no_context_takeover = true;
            }
            ("client_no_context_takeover", None) if seen.first(1) => {
                params.client_no_context_takeover = true;
            }
            ("server_max_window_bits", Some(bits)) if seen.first(2) => {
                // zlib cannot compress raw deflate with a 256-byte window (it uses
                // 512), so an offer that demands one is declined.
                params.server_max_window_bits = window_bits(bits).filter(|b| *b >= 9)?;
            }
            // Without a value the client only says it understands the parameter in our
            // answer; we never limit its window (our decompressor takes any), so the
            // answer leaves it out and the client may use up to 15 bits.
            ("client_max_window_bits", None) if seen.first(3) => {}
            ("client_max_window_bits", Some(bits)) if seen.first(3) => {
                window_bits(bits)?;
            }
            // Unknown, duplicated, or with a value where none is allowed (or none where
            // one is required): RFC 7692 §7.1 says decline the offer.
            _ => return None,
        }
    }
    Some(params)
}

/// Which of the four parameters an offer named already.
#[derive(Default)]
struct Seen([bool; 4]);

impl Seen {
    /// True the first time parameter `index` is named.
    fn first(&mut self, index: usize) -> bool {
        !std::mem::replace(&mut self.0[index], true)
    }
}

/// A window size: 8 to 15, written without leading zeros.
fn window_bits(value: &str) -> Option<u8> {
    if value.starts_with('0') || value.len() > 2 {
        return None;
    }
    let bits: u8 = value.parse().ok()?;
    (8..=MAX_WINDOW_BITS).contains(&bits).then_some(bits)
}

/// A token, or a quoted string's content (RFC 7692 §7.1 allows either form).
fn unquote(value: &str) -> Option<&str> {
    match value.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"').filter(|inner| !inner.contains('"')),
        None => Some(value),
    }
}

/// Splits on `SEP` outside double quotes, dropping empty elements (HTTP lists allow
/// them).
fn split_outside_quotes<const SEP: char>(s: &str) -> impl Iterator<Item = &str> {
    let mut quoted = false;
    let mut start = 0;
    let mut pieces = Vec::new();
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == SEP && !quoted => {
                pieces.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push(&s[start..]);
    pieces.into_iter().filter(|p| !p.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::http::HeaderValue;

    fn offer(values: &[&str], mode: Compression) -> Option<DeflateParams> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(
                "sec-websocket-extensions",
                HeaderValue::from_str(v).unwrap(),
            );
        }
        negotiate(&headers, mode)
    }

    fn header(values: &[&str], mode: Compression) -> Option<String> {
        offer(values, mode).map(|p| p.response_header())
    }

    #[test]
    fn off_never_negotiates() {
        assert_eq!(offer(&["permessage-deflate"], Compression::Off), None);
    }

    #[test]
    fn no_offer_no_extension() {
        assert_eq!(offer(&[], Compression::Shared), None);
        assert_eq!(
            offer(&["x-webkit-deflate-frame"], Compression::Shared),
            None
        );
    }

    #[test]
    fn shared_always_resets_its_context() {
        assert_eq!(
            header(&["permessage-deflate"], Compression::Shared).as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
    }

    #[test]
    fn dedicated_keeps_its_context_unless_asked() {
        assert_eq!(
            header(&["permessage-deflate"], Compression::Dedicated).as_deref(),
            Some("permessage-deflate")
        );
        assert_eq!(
            header(
                &["permessage-deflate; server_no_context_takeover"],
                Compression::Dedicated
            )
            .as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
    }

    #[test]
    fn browser_offer() {
        // What Chromium and Firefox send.
        let params = offer(
            &["permessage-deflate; client_max_window_bits"],
            Compression::Dedicated,
        )
        .unwrap();
        assert_eq!(params.client_max_window_bits, 15);
        assert_eq!(params.response_header(), "permessage-deflate");
    }

    #[test]
    fn client_no_context_takeover_is_echoed() {
        let params = offer(
            &["permessage-deflate; client_no_context_takeover"],
            Compression::Shared,
        )
        .unwrap();
        assert!(params.client_no_context_takeover);
        assert_eq!(
            params.response_header(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
    }

    #[test]
    fn server_window_is_echoed() {
        let params = offer(
            &["permessage-deflate; server_max_window_bits=10"],
            Compression::Dedicated,
        )
        .unwrap();
        assert_eq!(params.server_max_window_bits, 10);
        assert_eq!(
            params.response_header(),
            "permessage-deflate; server_max_window_bits=10"
        );
        let quoted = offer(
            &["permessage-deflate; server_max_window_bits=\"12\""],
            Compression::Dedicated,
        );
        assert_eq!(quoted.map(|p| p.server_max_window_bits), Some(12));
    }

    #[test]
    fn a_256_byte_server_window_is_declined() {
        assert_eq!(
            offer(
                &["permessage-deflate; server_max_window_bits=8"],
                Compression::Shared
            ),
            None
        );
    }

    #[test]
    fn the_first_acceptable_offer_wins() {
        let params = offer(
            &["permessage-deflate; server_max_window_bits=8, \
                 permessage-deflate; client_no_context_takeover, permessage-deflate"],
            Compression::Dedicated,
        )
        .unwrap();
        assert!(params.client_no_context_takeover);
        // Offers may also come in several header lines.
        let split = offer(
            &[
                "foo; bar=\"a,b\"",
                "permessage-deflate; server_max_window_bits=9",
            ],
            Compression::Dedicated,
        );
        assert_eq!(split.map(|p| p.server_max_window_bits), Some(9));
    }

    #[test]
    fn malformed_offers_are_declined() {
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; server_max_window_bits=abc",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=\"9",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            "permessage-deflate; mystery",
        ] {
            assert_eq!(offer(&[bad], Compression::Shared), None, "{bad}");
        }
    }

    #[test]
    fn names_are_case_insensitive() {
        let params = offer(
            &["Permessage-Deflate; Client_No_Context_Takeover"],
            Compression::Dedicated,
        );
        assert!(params.unwrap().client_no_context_takeover);
    }
}
