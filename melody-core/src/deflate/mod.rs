//! permessage-deflate (RFC 7692): the configured mode and what one session agreed to.

mod encoder;
mod offer;
mod shared;

pub(crate) use encoder::Deflater;
pub(crate) use offer::negotiate;
pub(crate) use shared::{DeflatedCopies, SharedDeflaters};

/// Whether and how the server compresses messages with permessage-deflate (RFC 7692).
///
/// Browsers offer the extension on every connection; whether a session uses it is
/// decided per session from the client's offer. Messages shorter than
/// [`Config::compression_threshold`](crate::Config::compression_threshold) go
/// uncompressed either way.
///
/// ```
/// use melody_core::{Compression, Config};
///
/// let config = Config::default().compression(Compression::Shared);
/// assert!(config.validate().is_ok());
/// assert_eq!(Config::default().compression, Compression::Off);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Never negotiated: every session sends and receives uncompressed frames.
    #[default]
    Off,
    /// One compressed copy per broadcast or publish, shared by every recipient, as the
    /// uncompressed frame is. Negotiated with `server_no_context_takeover`: each message
    /// is compressed on its own, so N recipients cost one compression.
    Shared,
    /// A compressor per session that keeps its context between messages (better ratio,
    /// unless the client asks for `server_no_context_takeover`): every recipient costs
    /// a compression, and the compressor's memory is counted per session.
    Dedicated,
}

/// The permessage-deflate parameters one WebSocket session agreed to in its handshake.
///
/// Present on a session only when the client offered the extension and the server's
/// configuration accepted the offer; a session without it never sees or sends a
/// compressed frame.
///
/// ```
/// use melody_core::DeflateParams;
///
/// let params = DeflateParams {
///     server_no_context_takeover: true,
///     client_no_context_takeover: false,
///     server_max_window_bits: 15,
///     client_max_window_bits: 15,
/// };
/// assert_eq!(params.response_header(), "permessage-deflate; server_no_context_takeover");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server starts every message with an empty compression context.
    pub server_no_context_takeover: bool,
    /// The client starts every message with an empty compression context, so the
    /// server's decompressor may reset between messages too.
    pub client_no_context_takeover: bool,
    /// Base-2 logarithm of the server compressor's LZ77 window, 9 to 15.
    pub server_max_window_bits: u8,
    /// Base-2 logarithm of the client compressor's LZ77 window, 8 to 15: the window the
    /// server's decompressor needs.
    pub client_max_window_bits: u8,
}

/// The largest LZ77 window RFC 7692 allows, and the default of both directions.
pub(crate) const MAX_WINDOW_BITS: u8 = 15;

impl DeflateParams {
    /// The value of the `Sec-WebSocket-Extensions` response header that accepts the
    /// offer: every parameter that differs from the RFC's default.
    pub fn response_header(&self) -> String {
        let mut header = String::from("permessage-deflate");
        if self.server_no_context_takeover {
            header.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            header.push_str("; client_no_context_takeover");
        }
        if self.server_max_window_bits < MAX_WINDOW_BITS {
            header.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_max_window_bits
            ));
        }
        if self.client_max_window_bits < MAX_WINDOW_BITS {
            header.push_str(&format!(
                "; client_max_window_bits={}",
                self.client_max_window_bits
            ));
        }
        header
    }
}
