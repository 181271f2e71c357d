//! What a hub keeps to make a message's bytes once for all its recipients.

use crate::deflate::SharedDeflaters;
use crate::frame_log::FrameLogs;

/// The hub's compressors for shared compressed copies, and its logs of frames queued
/// by many outboxes.
#[derive(Default)]
pub(crate) struct SharedCopies {
    pub(crate) deflaters: SharedDeflaters,
    pub(crate) frames: FrameLogs,
}
