//! The `Melody` and `Session` aliases every adapter declares, with their method index:
//! rustdoc shows no methods on an alias of another crate's type, so the alias's own
//! documentation lists them, each linked to its documentation here.
//! `tests/alias_docs.rs` checks that every public method is listed.

/// Declares `pub type Melody` and `pub type Session` for an adapter's runtime, with the
/// method index in their documentation. For adapters: `melody_driver::adapter_aliases!(TokioRuntime, "tokio");`.
#[macro_export]
macro_rules! adapter_aliases {
    ($runtime:ty, $name:literal) => {
        #[doc = concat!("A melody instance on ", $name, ": handlers, broadcast, topics, shutdown.")]
        #[doc = ""]
        #[doc = concat!("An alias of [`melody_driver::Melody`] on this crate's runtime; cheap to clone, and clones share everything. Its methods, each documented on `melody_driver::Melody`:")]
        #[doc = ""]
        #[doc = "- **Making one**: [`new`](melody_driver::Melody::new), [`with_config`](melody_driver::Melody::with_config), [`with_runtime`](melody_driver::Melody::with_runtime), [`with_shards`](melody_driver::Melody::with_shards), [`config`](melody_driver::Melody::config), [`runtime`](melody_driver::Melody::runtime)."]
        #[doc = "- **Handlers**: [`on_connect`](melody_driver::Melody::on_connect), [`on_disconnect`](melody_driver::Melody::on_disconnect), [`on_message`](melody_driver::Melody::on_message), [`on_message_binary`](melody_driver::Melody::on_message_binary), [`on_pong`](melody_driver::Melody::on_pong), [`on_error`](melody_driver::Melody::on_error), [`on_dropped`](melody_driver::Melody::on_dropped), [`on_close`](melody_driver::Melody::on_close), [`on_sent`](melody_driver::Melody::on_sent), [`on_sent_binary`](melody_driver::Melody::on_sent_binary)."]
        #[doc = "- **Async message handlers**: [`on_message_async`](melody_driver::Melody::on_message_async), [`on_message_binary_async`](melody_driver::Melody::on_message_binary_async), [`set_async_handling`](melody_driver::Melody::set_async_handling), [`async_handling`](melody_driver::Melody::async_handling), [`on_overflow`](melody_driver::Melody::on_overflow), [`async_stats`](melody_driver::Melody::async_stats)."]
        #[doc = "- **Who connects**: [`on_request`](melody_driver::Melody::on_request) (the request hook), [`hook_panics`](melody_driver::Melody::hook_panics)."]
        #[doc = "- **Broadcast**: [`broadcast`](melody_driver::Melody::broadcast), [`broadcast_binary`](melody_driver::Melody::broadcast_binary), [`broadcast_prepared`](melody_driver::Melody::broadcast_prepared), [`broadcast_event`](melody_driver::Melody::broadcast_event), [`broadcast_others`](melody_driver::Melody::broadcast_others), [`broadcast_binary_others`](melody_driver::Melody::broadcast_binary_others), [`broadcast_multiple`](melody_driver::Melody::broadcast_multiple), [`broadcast_binary_multiple`](melody_driver::Melody::broadcast_binary_multiple), [`broadcast_filter`](melody_driver::Melody::broadcast_filter), [`broadcast_binary_filter`](melody_driver::Melody::broadcast_binary_filter)."]
        #[doc = "- **Topics**: [`publish`](melody_driver::Melody::publish), [`publish_binary`](melody_driver::Melody::publish_binary), [`publish_prepared`](melody_driver::Melody::publish_prepared), [`publish_event`](melody_driver::Melody::publish_event), [`publish_others`](melody_driver::Melody::publish_others), [`publish_binary_others`](melody_driver::Melody::publish_binary_others), [`subscriber_count`](melody_driver::Melody::subscriber_count)."]
        #[doc = "- **Inspection**: [`sessions`](melody_driver::Melody::sessions), [`len`](melody_driver::Melody::len), [`is_empty`](melody_driver::Melody::is_empty), [`stats`](melody_driver::Melody::stats), [`connection_tasks`](melody_driver::Melody::connection_tasks), [`parked_connections`](melody_driver::Melody::parked_connections), [`parked_outside_reactor`](melody_driver::Melody::parked_outside_reactor), [`timer_entries`](melody_driver::Melody::timer_entries), [`shard_lock_acquisitions`](melody_driver::Melody::shard_lock_acquisitions) (feature `lock-stats`)."]
        #[doc = "- **Closing**: [`close`](melody_driver::Melody::close), [`close_with`](melody_driver::Melody::close_with), [`shutdown`](melody_driver::Melody::shutdown), [`shutdown_with`](melody_driver::Melody::shutdown_with), [`is_closed`](melody_driver::Melody::is_closed), [`closed`](melody_driver::Melody::closed)."]
        #[doc = "- **Connections and HTTP integrations**: [`connection`](melody_driver::Melody::connection), [`spawn_connection`](melody_driver::Melody::spawn_connection), [`check_upgrade`](melody_driver::Melody::check_upgrade), [`upgraded_connection`](melody_driver::Melody::upgraded_connection), [`judge`](melody_driver::Melody::judge), [`judged_upgrade`](melody_driver::Melody::judged_upgrade), [`check_event_stream`](melody_driver::Melody::check_event_stream), [`event_stream_connection`](melody_driver::Melody::event_stream_connection)."]
        #[doc = "- **Several nodes**: [`attach_backplane`](melody_driver::Melody::attach_backplane), [`has_backplane`](melody_driver::Melody::has_backplane)."]
        pub type Melody = $crate::Melody<$runtime>;

        #[doc = concat!("A session handle on ", $name, ": a WebSocket or an event stream.")]
        #[doc = ""]
        #[doc = "An alias of [`melody_driver::Session`] on this crate's runtime; cheap to clone, every clone names the same session. Its methods, each documented on `melody_driver::Session`:"]
        #[doc = ""]
        #[doc = "- **Writing**: [`write`](melody_driver::Session::write), [`write_binary`](melody_driver::Session::write_binary), [`write_prepared`](melody_driver::Session::write_prepared), [`write_event`](melody_driver::Session::write_event)."]
        #[doc = "- **Closing**: [`close`](melody_driver::Session::close), [`close_with`](melody_driver::Session::close_with), [`is_closed`](melody_driver::Session::is_closed)."]
        #[doc = "- **Keys** (olahol/melody style): [`set`](melody_driver::Session::set), [`get`](melody_driver::Session::get), [`must_get`](melody_driver::Session::must_get), [`unset`](melody_driver::Session::unset), [`with_keys`](melody_driver::Session::with_keys)."]
        #[doc = "- **Typed state**: [`insert_state`](melody_driver::Session::insert_state), [`state`](melody_driver::Session::state), [`with_state`](melody_driver::Session::with_state), [`remove_state`](melody_driver::Session::remove_state)."]
        #[doc = "- **Topics**: [`subscribe`](melody_driver::Session::subscribe), [`unsubscribe`](melody_driver::Session::unsubscribe), [`topics`](melody_driver::Session::topics)."]
        #[doc = "- **About it**: [`key`](melody_driver::Session::key), [`kind`](melody_driver::Session::kind), [`request`](melody_driver::Session::request), [`remote_addr`](melody_driver::Session::remote_addr), [`local_addr`](melody_driver::Session::local_addr), [`protocol`](melody_driver::Session::protocol), [`compression`](melody_driver::Session::compression), [`deflate`](melody_driver::Session::deflate), [`stats`](melody_driver::Session::stats)."]
        pub type Session = $crate::Session<$runtime>;
    };
}
