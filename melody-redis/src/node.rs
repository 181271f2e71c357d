//! What the publisher and subscriber tasks of one node share.

use std::sync::Arc;

use crate::channels::Channels;
use crate::config::RedisBackplaneConfig;
use crate::envelope::NodeId;
use crate::stats::Counters;

pub(crate) struct Node {
    pub(crate) id: NodeId,
    pub(crate) client: redis::Client,
    pub(crate) config: RedisBackplaneConfig,
    pub(crate) channels: Channels,
    pub(crate) counters: Arc<Counters>,
}
