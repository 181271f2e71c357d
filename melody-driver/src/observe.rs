//! What the driver tells `tracing` and `metrics` (the features of those names): a span
//! per session entered around its handlers, events for refusals, errors, timeouts and
//! drops, and counters, gauges and histograms of sessions, messages and bytes. With both
//! features off, [`Observer`] holds nothing and every call here is empty.
//!
//! Everything is reported from the connection task, outside every lock.

use melody_core::{Event, SessionKind};

#[cfg(any(feature = "tracing", feature = "metrics"))]
use melody_core::{MessageKind, SessionError};

/// The tracing target of every span and event: `RUST_LOG=melody=debug` shows them all.
#[cfg(feature = "tracing")]
const TARGET: &str = "melody";

/// What a connection knows of its session, for reports.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) struct Facts<'a> {
    pub(crate) key: Option<&'a crate::slot::SessionKey>,
    pub(crate) peer: Option<std::net::SocketAddr>,
    pub(crate) path: Option<&'a str>,
    pub(crate) kind: SessionKind,
    /// The instance's drop policy, the label of the drop counter.
    pub(crate) policy: melody_core::DropPolicy,
}

/// One connection's reporting state.
#[derive(Default)]
pub(crate) struct Observer {
    /// Kept only when the subscriber records it (boxed: every connection carries the
    /// field, and with the usual filters it stays empty).
    #[cfg(feature = "tracing")]
    span: Option<Box<tracing::Span>>,
    /// Why the session ended, from its last error ("normal" without one).
    #[cfg(any(feature = "tracing", feature = "metrics"))]
    cause: Option<Cause>,
    #[cfg(any(feature = "tracing", feature = "metrics"))]
    kind: Option<SessionKind>,
    /// Data messages known written, for the `messages out` counter.
    #[cfg(feature = "metrics")]
    sent: u64,
}

/// The session's span, entered while its handlers run (nothing without `tracing`).
pub(crate) struct Scope {
    #[cfg(feature = "tracing")]
    _entered: Option<tracing::span::EnteredSpan>,
}

impl Observer {
    /// Enters the session's span, if it has one yet.
    pub(crate) fn scope(&self) -> Scope {
        Scope {
            #[cfg(feature = "tracing")]
            _entered: self.span.as_deref().cloned().map(tracing::Span::entered),
        }
    }

    /// Reports one of the session's events, in order.
    #[cfg_attr(
        not(any(feature = "tracing", feature = "metrics")),
        allow(unused_variables, clippy::unused_self)
    )]
    pub(crate) fn event(&mut self, event: &Event, facts: &Facts<'_>) {
        // Inside the session's span, once it has one.
        #[cfg(feature = "tracing")]
        let span = self.span.as_deref().cloned();
        #[cfg(feature = "tracing")]
        let _entered = span.as_ref().map(tracing::Span::enter);
        #[cfg(any(feature = "tracing", feature = "metrics"))]
        match event {
            Event::Connect => self.connected(facts),
            Event::Text(text) => message_in(MessageKind::Text, text.len()),
            Event::Binary(data) => message_in(MessageKind::Binary, data.len()),
            Event::Dropped { count } => dropped(*count, facts.policy),
            Event::Error(err) => self.error(err, facts),
            Event::Disconnect { undelivered } => self.disconnected(*undelivered),
            _ => {}
        }
    }

    #[cfg(any(feature = "tracing", feature = "metrics"))]
    fn connected(&mut self, facts: &Facts<'_>) {
        self.kind = Some(facts.kind);
        #[cfg(feature = "tracing")]
        {
            let span = tracing::info_span!(
                target: TARGET,
                "session",
                id = %facts.key.map(ToString::to_string).unwrap_or_default(),
                peer = ?facts.peer,
                path = facts.path.unwrap_or(""),
                kind = kind_label(facts.kind),
            );
            span.in_scope(|| tracing::debug!(target: TARGET, "session connected"));
            if !span.is_disabled() {
                self.span = Some(Box::new(span));
            }
        }
        #[cfg(feature = "metrics")]
        {
            let status = match facts.kind {
                SessionKind::WebSocket => "101",
                SessionKind::EventStream => "200",
            };
            metrics::counter!("melody_upgrades_total", "outcome" => "accepted", "status" => status)
                .increment(1);
            metrics::gauge!("melody_sessions_open", "kind" => kind_label(facts.kind))
                .increment(1.0);
        }
    }

    #[cfg(any(feature = "tracing", feature = "metrics"))]
    fn error(&mut self, err: &SessionError, facts: &Facts<'_>) {
        let _ = facts;
        let kind = cause_of(err);
        #[cfg(feature = "tracing")]
        let cause = kind.label();
        if let Some(status) = refused_status(err) {
            #[cfg(feature = "tracing")]
            tracing::info!(
                target: TARGET,
                status,
                reason = %refusal_reason(err),
                peer = ?facts.peer,
                path = facts.path.unwrap_or(""),
                "request refused"
            );
            #[cfg(feature = "metrics")]
            metrics::counter!(
                "melody_upgrades_total",
                "outcome" => "refused",
                "status" => status.to_string()
            )
            .increment(1);
            return;
        }
        self.cause = Some(kind);
        #[cfg(feature = "tracing")]
        {
            match (err, err.close_code()) {
                (SessionError::PongTimeout, _) => {
                    tracing::info!(target: TARGET, cause, "keepalive timeout: no pong within pong_wait")
                }
                (SessionError::SlowConsumer, Some(code)) => tracing::info!(
                    target: TARGET,
                    cause,
                    close_code = u16::from(code),
                    "slow consumer disconnected: outbox full"
                ),
                (_, Some(code)) => tracing::info!(
                    target: TARGET,
                    cause,
                    close_code = u16::from(code),
                    error = %err,
                    "protocol error"
                ),
                (_, None) => tracing::debug!(target: TARGET, cause, error = %err, "session error"),
            }
        }
    }

    #[cfg(any(feature = "tracing", feature = "metrics"))]
    fn disconnected(&mut self, undelivered: usize) {
        let Some(kind) = self.kind else {
            // Never connected (refused, or gone during the handshake): not a session.
            return;
        };
        let cause = self.cause.unwrap_or(Cause::Normal).label();
        #[cfg(feature = "tracing")]
        {
            let _entered = self.span.as_deref().map(tracing::Span::enter);
            tracing::debug!(target: TARGET, cause, undelivered, "session disconnected");
        }
        #[cfg(feature = "metrics")]
        {
            metrics::gauge!("melody_sessions_open", "kind" => kind_label(kind)).decrement(1.0);
            metrics::counter!("melody_disconnects_total", "cause" => cause).increment(1);
        }
        let _ = (kind, undelivered);
    }

    /// A handler panicked; the session closes with 1011.
    #[cfg_attr(
        not(any(feature = "tracing", feature = "metrics")),
        allow(unused_variables)
    )]
    pub(crate) fn handler_panicked(&mut self, message: &str) {
        #[cfg(any(feature = "tracing", feature = "metrics"))]
        {
            self.cause = Some(Cause::HandlerPanicked);
        }
        #[cfg(feature = "tracing")]
        tracing::warn!(target: TARGET, message, "handler panicked: closing with 1011");
        let _ = message;
    }

    /// The session's counters, sampled by the connection task each turn it found work
    /// (only with `metrics`, which needs them for messages out and outbox occupancy).
    #[cfg(feature = "metrics")]
    pub(crate) fn sample(&mut self, stats: melody_core::SessionStats) {
        if stats.sent > self.sent {
            metrics::counter!("melody_messages_out_total").increment(stats.sent - self.sent);
            self.sent = stats.sent;
        }
        metrics::histogram!("melody_outbox_queued_messages").record(stats.queued as f64);
        metrics::histogram!("melody_outbox_queued_bytes").record(stats.queued_bytes as f64);
    }
}

/// Bytes the transport read.
#[inline]
pub(crate) fn bytes_in(n: usize) {
    #[cfg(feature = "metrics")]
    metrics::counter!("melody_bytes_in_total").increment(n as u64);
    let _ = n;
}

/// Bytes the transport wrote.
#[inline]
pub(crate) fn bytes_out(n: usize) {
    #[cfg(feature = "metrics")]
    metrics::counter!("melody_bytes_out_total").increment(n as u64);
    let _ = n;
}

#[cfg(any(feature = "tracing", feature = "metrics"))]
fn message_in(kind: MessageKind, len: usize) {
    #[cfg(feature = "metrics")]
    {
        let kind = match kind {
            MessageKind::Text => "text",
            MessageKind::Binary => "binary",
        };
        metrics::counter!("melody_messages_in_total", "kind" => kind).increment(1);
    }
    let _ = (kind, len);
}

#[cfg(any(feature = "tracing", feature = "metrics"))]
fn dropped(count: u64, policy: melody_core::DropPolicy) {
    #[cfg(feature = "tracing")]
    tracing::info!(target: TARGET, count, "messages dropped: outbox full");
    #[cfg(feature = "metrics")]
    {
        let policy = match policy {
            melody_core::DropPolicy::DropNewest => "newest",
            melody_core::DropPolicy::DropOldest => "oldest",
            melody_core::DropPolicy::Disconnect => "disconnect",
            #[allow(unreachable_patterns)]
            _ => "other",
        };
        metrics::counter!("melody_dropped_total", "policy" => policy).increment(count);
    }
    let _ = policy;
}

#[cfg(any(feature = "tracing", feature = "metrics"))]
fn kind_label(kind: SessionKind) -> &'static str {
    match kind {
        SessionKind::WebSocket => "websocket",
        SessionKind::EventStream => "event_stream",
        #[allow(unreachable_patterns)]
        _ => "other",
    }
}

/// The HTTP status a refused request got, for the errors that are refusals.
#[cfg(any(feature = "tracing", feature = "metrics"))]
fn refused_status(err: &SessionError) -> Option<u16> {
    match err {
        SessionError::Handshake(rejection) => Some(rejection.status.as_u16()),
        SessionError::Refused { status, .. } => Some(*status),
        SessionError::HandshakeTimeout => Some(503),
        _ => None,
    }
}

#[cfg(feature = "tracing")]
fn refusal_reason(err: &SessionError) -> String {
    match err {
        SessionError::Handshake(rejection) => rejection.reason.to_owned(),
        SessionError::Refused { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// Why a session ended: one byte in every connection's observer (a parked connection
/// carries its observer; a `&str` would be sixteen). [`Cause::label`] is its `cause`.
#[cfg(any(feature = "tracing", feature = "metrics"))]
#[derive(Debug, Clone, Copy)]
enum Cause {
    Normal,
    Refused,
    HandshakeTimeout,
    MessageTooBig,
    InvalidUtf8,
    InvalidCompressedData,
    MessageTimeout,
    OverBudget,
    Protocol,
    PongTimeout,
    WriteTimeout,
    CloseTimeout,
    SlowConsumer,
    PeerGone,
    Io,
    HandlerPanicked,
    Other,
}

#[cfg(any(feature = "tracing", feature = "metrics"))]
impl Cause {
    /// The short label reports carry.
    fn label(self) -> &'static str {
        match self {
            Cause::Normal => "normal",
            Cause::Refused => "refused",
            Cause::HandshakeTimeout => "handshake_timeout",
            Cause::MessageTooBig => "message_too_big",
            Cause::InvalidUtf8 => "invalid_utf8",
            Cause::InvalidCompressedData => "invalid_compressed_data",
            Cause::MessageTimeout => "message_timeout",
            Cause::OverBudget => "over_budget",
            Cause::Protocol => "protocol",
            Cause::PongTimeout => "pong_timeout",
            Cause::WriteTimeout => "write_timeout",
            Cause::CloseTimeout => "close_timeout",
            Cause::SlowConsumer => "slow_consumer",
            Cause::PeerGone => "peer_gone",
            Cause::Io => "io",
            Cause::HandlerPanicked => "handler_panicked",
            Cause::Other => "other",
        }
    }
}

/// Why a session ended with `err`.
#[cfg(any(feature = "tracing", feature = "metrics"))]
fn cause_of(err: &SessionError) -> Cause {
    match err {
        SessionError::Handshake(_) | SessionError::Refused { .. } => Cause::Refused,
        SessionError::HandshakeTimeout => Cause::HandshakeTimeout,
        SessionError::MessageTooBig { .. } => Cause::MessageTooBig,
        SessionError::InvalidUtf8 => Cause::InvalidUtf8,
        SessionError::Compression(_) => Cause::InvalidCompressedData,
        SessionError::MessageTimeout => Cause::MessageTimeout,
        SessionError::OverBudget => Cause::OverBudget,
        SessionError::Protocol(_) => Cause::Protocol,
        SessionError::PongTimeout => Cause::PongTimeout,
        SessionError::WriteTimeout => Cause::WriteTimeout,
        SessionError::CloseTimeout => Cause::CloseTimeout,
        SessionError::SlowConsumer => Cause::SlowConsumer,
        SessionError::PeerGone => Cause::PeerGone,
        SessionError::Io { .. } => Cause::Io,
        _ => Cause::Other,
    }
}
