//! olahol/melody's chat.

use melody_driver::{Melody, Runtime};

/// olahol/melody's chat: every message goes to everyone (with a backplane attached,
/// on every node too).
pub fn chat<R: Runtime>(melody: &Melody<R>) {
    let room = melody.clone();
    melody.on_message(move |_session, text| {
        room.broadcast(text);
    });
}
