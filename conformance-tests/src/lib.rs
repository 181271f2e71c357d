//! The behavioural suite every melody adapter must pass.
//!
//! An adapter (tokio, smol, async-std, or yours) implements [`Backend`] — start a
//! melody instance on its runtime, accepting on a given listener; hand out the
//! [`Melody`](melody_driver::Melody); run a future; stop — and
//! [`conformance_suite!`] expands to one `#[test]` per case for it. The cases are
//! written once, here, in [`cases`].
//!
//! The client side shares no code with any adapter: blocking `tungstenite` clients,
//! raw `std::net::TcpStream`s (for input no client library will send) and an
//! event-stream client (HTTP/1.1 chunks, the WHATWG parser) on plain threads. Every read has a 5 s timeout and every case a time limit, so a misbehaving
//! adapter fails a case instead of hanging the run. Each case binds its own
//! `127.0.0.1:0` listener, so cases run in parallel. Timing cases use short periods
//! (100 ms ping, 300 ms pong and write waits) and tolerant windows; exact timing is
//! tested by melody-core under a simulated clock.
//!
//! What is covered: the handshake (101 with the right accept key and subprotocol; 4xx,
//! 426, 400, 403 refusals; origin policy; handshake timeout; session cap 503; keys
//! attached at upgrade; the request hook's refusals, keys, state, topics, limits, awaits
//! and panics), echo of text and binary across every frame-length encoding up
//! to 1 MiB, fragments, ping/pong and ordering; bad input (1009, 1007, 1002) while the
//! server keeps serving; hostile peers (slowloris handshakes, endless headers, endless
//! fragments, ping floods, a thousand silent connections), each bounded in time and
//! memory and holding no one else up; every handler's arguments and order, panicking and
//! re-entrant handlers; every broadcast and topic flavour, ordering and concurrent
//! broadcasts; slow consumers under each drop policy, where what a client misses must
//! equal what the API reports dropped; keepalive (pings, pong timeout, write timeout);
//! closing and graceful shutdown, including in the middle of a stream (what was
//! reported queued arrives, what the deadline cut off is counted); event-stream
//! (Server-Sent Events) sessions beside WebSockets (one publication to both kinds, the
//! request hook's refusals, keys, topics and outbox bound, binary writes, binary
//! messages skipped and counted, keepalive comments, disconnect, shutdown's last chunk
//! and cut-off); 2000 connections at once.
//!
//! # Running it for your adapter
//!
//! Add the crate as a dev-dependency, implement [`Backend`] in a test file, and call
//! the macro. Here is melody-tokio's (the crate's own `tests/tokio.rs`):
//!
//! ```no_run
//! use std::future::Future;
//! use std::io;
//! use std::time::Duration;
//!
//! use conformance_tests::{conformance_suite, Backend, Upgrade};
//! use melody_tokio::axum::ConnectionAddrs;
//! use melody_tokio::{Config, Melody, TokioRuntime};
//!
//! pub struct TokioBackend {
//!     runtime: Option<tokio::runtime::Runtime>,
//!     melody: Melody,
//! }
//!
//! impl Backend for TokioBackend {
//!     type Runtime = TokioRuntime;
//!
//!     fn start(
//!         config: Config,
//!         listener: std::net::TcpListener,
//!         upgrade: Upgrade,
//!         setup: impl FnOnce(&Melody),
//!     ) -> io::Result<Self> {
//!         let runtime = tokio::runtime::Builder::new_multi_thread()
//!             .worker_threads(2)
//!             .enable_all()
//!             .build()?;
//!         let melody = Melody::with_runtime(TokioRuntime, config)
//!             .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
//!         setup(&melody); // handlers first, then accept
//!         listener.set_nonblocking(true)?;
//!         let listener = {
//!             let _entered = runtime.enter();
//!             tokio::net::TcpListener::from_std(listener)?
//!         };
//!         let m = melody.clone();
//!         match upgrade {
//!             // The adapter's own accept loop; melody-core answers the upgrade.
//!             Upgrade::Serve => {
//!                 runtime.spawn(async move {
//!                     let _ = melody_tokio::serve(&m, listener).await;
//!                 });
//!             }
//!             // The adapter's HandleRequestWithKeys: here, its axum integration.
//!             Upgrade::WithKeys(keys) => {
//!                 let handler = move |request: axum::extract::Request| {
//!                     let (m, keys) = (m.clone(), keys.clone());
//!                     async move {
//!                         let mut head = melody_core::Request::new(());
//!                         *head.uri_mut() = request.uri().clone();
//!                         *head.headers_mut() = request.headers().clone();
//!                         let keys = keys(&head);
//!                         melody_tokio::axum::handle_request_with_keys(&m, request, keys).await
//!                     }
//!                 };
//!                 let app = axum::Router::new().fallback(handler);
//!                 let closed = melody.closed();
//!                 runtime.spawn(async move {
//!                     let service = app.into_make_service_with_connect_info::<ConnectionAddrs>();
//!                     let _ = axum::serve(listener, service)
//!                         .with_graceful_shutdown(closed)
//!                         .await;
//!                 });
//!             }
//!         }
//!         Ok(TokioBackend { runtime: Some(runtime), melody })
//!     }
//!
//!     fn melody(&self) -> &Melody {
//!         &self.melody
//!     }
//!
//!     fn block_on<F: Future>(&self, future: F) -> F::Output {
//!         self.runtime.as_ref().expect("running").block_on(future)
//!     }
//!
//!     fn stop(mut self) {
//!         if let Some(rt) = self.runtime.take() {
//!             rt.shutdown_timeout(Duration::from_secs(1));
//!         }
//!     }
//! }
//!
//! conformance_suite!(TokioBackend);
//! # fn main() {}
//! ```
//!
//! Then `cargo test --test <that file>`. An adapter without an HTTP integration (smol,
//! async-std) implements [`Upgrade::WithKeys`] with [`upgrade_with_keys`]: in its
//! accept loop, wrap each stream in its `Transport` and spawn
//! `upgrade_with_keys(melody.clone(), transport, info, keys.clone())`.
//!
//! Cases are public functions too: `conformance_tests::cases::echo_text_sizes::<B>()`
//! runs one on its own.

#![deny(missing_docs)]

mod backend;
pub mod cases;
mod client;
mod flood;
mod harness;
mod sse_client;
mod upgrade;

pub use backend::{Backend, KeysFn, Upgrade};
#[doc(hidden)]
pub use harness::run_case;
pub use upgrade::upgrade_with_keys;

/// The longest a case may run before it fails as hanging.
pub const CASE_LIMIT: std::time::Duration = std::time::Duration::from_secs(90);

/// Expands to one `#[test]` per conformance case for a [`Backend`] type.
///
/// ```text
/// conformance_tests::conformance_suite!(MyBackend);
/// ```
///
/// (The [crate documentation](crate) shows it with a complete `Backend`.)
///
/// Each test runs its case on its own thread and fails it after [`CASE_LIMIT`]. The
/// cases are those [`CASES`] names.
#[macro_export]
macro_rules! conformance_suite {
    ($backend:ty) => {
        $crate::__with_every_case!(__conformance_cases!($backend));
    };
}

/// The name of every case [`conformance_suite!`] runs, in its order: the list the macro
/// expands, so counts of cases can be checked instead of typed.
pub const CASES: &[&str] = crate::__with_every_case!(__case_names!());

/// The one list of cases: calls `$crate::$then!(ARGS; case, case, …)`.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_every_case {
    ($then:ident!($($args:tt)*)) => {
        // Braces: the call stands as items (the tests) or as an expression (`CASES`).
        $crate::$then! {
            $($args)*;
            // handshake
            handshake_accepts_with_subprotocol,
            handshake_refuses_plain_get,
            handshake_refuses_wrong_version,
            handshake_refuses_missing_key,
            handshake_refuses_non_get,
            handshake_refuses_oversized_request,
            handshake_keeps_pipelined_frames,
            handshake_refuses_cross_origin_by_default,
            handshake_accepts_configured_origin,
            handshake_times_out_incomplete,
            session_cap_refuses_with_503,
            keys_visible_in_on_connect,
            // request hook
            request_hook_refuses_401_with_header,
            request_hook_attaches_keys_and_state,
            request_hook_subscribes_before_the_101,
            request_hook_overrides_max_message_size,
            request_hook_may_await,
            request_hook_timeout_gives_503,
            panicking_request_hook_gives_500,
            // echo
            echo_text_sizes,
            echo_binary_sizes,
            echo_fragmented_messages,
            ping_answered_with_same_payload,
            echo_200_messages_in_order,
            // bad input
            oversized_message_closed_1009,
            invalid_utf8_closed_1007,
            protocol_violations_closed_1002,
            invalid_close_frames_closed_1002,
            // hostile peers
            slowloris_handshakes_cut_at_timeout,
            header_flood_refused_431_and_cut,
            silent_crowd_evicted_by_keepalive,
            endless_fragments_closed_1009,
            ping_flood_pongs_coalesced,
            // memory a hostile client cannot grow, answers it cannot miss
            oversize_close_reaches_a_client_still_writing,
            plain_get_gets_426_and_the_page_only_its_path,
            slow_readers_stay_inside_the_memory_budget,
            // handlers
            handlers_fire_in_order,
            panicking_handler_closes_its_session_only,
            reentrant_broadcast_does_not_deadlock,
            // async handlers
            async_handlers_keep_order_per_session,
            async_handlers_run_concurrently_up_to_the_bound,
            async_overflow_drop_counts_dropped_messages,
            async_overflow_close_closes_1013_and_disconnects_last,
            panicking_async_handler_closes_its_session_only,
            // broadcast
            broadcast_reaches_all,
            broadcast_others_skips_sender,
            broadcast_filter_on_keys,
            broadcast_filter_on_peer_and_request,
            broadcast_multiple_reaches_list,
            publish_reaches_subscribers,
            publish_others_skips_publisher,
            broadcast_keeps_per_session_order,
            concurrent_broadcasts_all_delivered,
            // slow consumers
            slow_consumer_does_not_slow_fast_clients,
            drop_newest_drops_are_counted,
            drop_oldest_drops_are_counted,
            disconnect_policy_closes_1008,
            // keepalive
            pings_sent_every_period,
            silent_client_cut_after_pong_wait,
            answering_client_stays_connected,
            answered_client_quiet_past_write_wait_stays_connected,
            stalled_reader_cut_after_write_wait,
            // quiet sessions without a task
            quiet_sessions_park_and_wake_for_every_kind_of_wakeup,
            parked_sessions_keep_their_keepalive,
            a_session_parking_after_each_answer_is_woken_by_each_next_input,
            // close
            client_close_answered_1000,
            server_close_after_queued_data,
            shutdown_flushes_and_sends_1001,
            shutdown_cuts_off_at_deadline,
            shutdown_with_sends_its_code_and_reason,
            shutdown_after_close_with_counts_the_closing_sessions,
            shutdown_mid_stream_delivers_what_was_queued,
            len_sessions_is_closed_track_state,
            upgrade_racing_close_gets_no_session,
            // history and resume
            event_stream_resumes_from_last_event_id,
            websocket_resumes_through_the_request_hook,
            resume_past_the_history_is_signalled,
            resume_racing_publishes_has_no_duplicate_and_no_gap,
            // permessage-deflate
            deflate_broadcasts_reach_compressing_clients,
            dedicated_compression_keeps_context_across_messages,
            // event streams (Server-Sent Events)
            publish_event_reaches_both_kinds_and_no_one_else,
            request_hook_refuses_event_stream_401_with_header,
            request_hook_keys_and_topics_apply_to_event_streams,
            binary_writes_turn_text_into_binary_frames,
            request_hook_bounds_an_event_stream_outbox,
            event_stream_disconnect_fires_once,
            shutdown_ends_event_streams,
            binary_messages_skip_event_streams,
            hub_stats_count_skipped_binary_messages,
            event_stream_keepalive_comments_and_no_pong_timeout,
            // load
            load_2000_connections,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __case_names {
    (; $($case:ident),* $(,)?) => {
        &[$(stringify!($case)),*]
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($backend:ty; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::run_case(
                    stringify!($case),
                    $crate::CASE_LIMIT,
                    $crate::cases::$case::<$backend>,
                );
            }
        )*
    };
}
