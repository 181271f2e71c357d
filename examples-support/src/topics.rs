//! Chat rooms as topics: the room is the socket's path.

use melody_driver::{Melody, Runtime};

/// The room of a socket path: `NAME` for `/room/NAME/ws`, else `lobby`.
pub fn room_of(path: &str) -> &str {
    path.strip_prefix("/room/")
        .and_then(|rest| rest.strip_suffix("/ws"))
        .filter(|name| !name.is_empty() && !name.contains('/'))
        .unwrap_or("lobby")
}

/// Chat rooms as topics: a session joins the room its socket path names
/// ([`room_of`]), and each message it sends is published to that room.
pub fn topics<R: Runtime>(melody: &Melody<R>) {
    let m = melody.clone();
    melody.on_connect(move |session| {
        let room = room_of(session.request().uri().path()).to_owned();
        session.subscribe(&room);
        let here = m.subscriber_count(&room);
        session.write(&format!("welcome to {room}: {here} here"));
        m.publish_others(&room, "someone joined", session);
        session.set("room", room);
    });

    let m = melody.clone();
    melody.on_message(move |session, text| {
        if let Some(room) = session.get::<String>("room") {
            m.publish(&room, text);
        }
    });

    let m = melody.clone();
    melody.on_disconnect(move |session| {
        if let Some(room) = session.get::<String>("room") {
            m.publish_others(&room, "someone left", session);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::room_of;

    #[test]
    fn the_room_is_the_path_between_room_and_ws() {
        assert_eq!(room_of("/room/rust/ws"), "rust");
        for other in ["/ws", "/room//ws", "/room/a/b/ws", "/room/rust", "/"] {
            assert_eq!(room_of(other), "lobby", "{other:?}");
        }
    }
}
