//! Opening one Redis connection: RESP3 (so that pub/sub messages arrive as pushes on
//! an ordinary multiplexed connection), timeouts, a watch for its end, and the pub/sub
//! mode the server supports.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ErrorKind, PushInfo, PushKind, RedisResult};

use crate::config::{PubSubMode, RedisBackplaneConfig};

/// Set when the connection is gone (the `redis` crate's disconnection push).
#[derive(Default)]
pub(crate) struct Watch {
    down: AtomicBool,
    waker: AtomicWaker,
}

impl Watch {
    fn signal(&self) {
        self.down.store(true, Ordering::Release);
        self.waker.wake();
    }

    pub(crate) fn poll_down(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.down.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // Registered before the second look: a signal in between is not lost.
        if self.down.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

pub(crate) struct Connection {
    pub(crate) conn: MultiplexedConnection,
    pub(crate) watch: Arc<Watch>,
    pub(crate) sharded: bool,
}

/// Connects to Redis. `on_message` receives every pub/sub push but the disconnection
/// (which sets the returned watch).
pub(crate) async fn open(
    client: &redis::Client,
    config: &RedisBackplaneConfig,
    on_message: impl Fn(PushInfo) + Send + Sync + 'static,
) -> RedisResult<Connection> {
    let watch = Arc::new(Watch::default());
    let signal = watch.clone();
    let pushes = move |info: PushInfo| -> Result<(), Infallible> {
        if info.kind == PushKind::Disconnection {
            signal.signal();
        } else {
            on_message(info);
        }
        Ok(())
    };
    let connection_config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(Some(config.response_timeout))
        .set_push_sender(pushes);
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&connection_config)
        .await?;
    let sharded = match config.mode {
        PubSubMode::Sharded => true,
        PubSubMode::Classic => false,
        PubSubMode::Auto => knows_sharded(&mut conn, config).await?,
    };
    Ok(Connection {
        conn,
        watch,
        sharded,
    })
}

/// Asks the server for `SPUBLISH` on a channel no node listens to: an answer means
/// sharded pub/sub (Redis 7+), a server error (unknown command) means classic.
async fn knows_sharded(
    conn: &mut MultiplexedConnection,
    config: &RedisBackplaneConfig,
) -> RedisResult<bool> {
    let probe = format!("{}:probe", config.channel_prefix);
    let answer: RedisResult<i64> = redis::cmd("SPUBLISH")
        .arg(probe)
        .arg(&b""[..])
        .query_async(conn)
        .await;
    match answer {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.kind(), ErrorKind::Server(_)) => Ok(false),
        Err(e) => Err(e),
    }
}
