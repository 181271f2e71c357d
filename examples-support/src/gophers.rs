//! olahol/melody's gophers: everyone's mouse pointer, live.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use melody_driver::{Melody, Runtime};

/// What each gophers session keeps under the key `"gopher"`.
#[derive(Clone, Copy)]
struct Gopher {
    id: u64,
    /// `None` until the page has reported a first position.
    at: Option<(i32, i32)>,
}

/// olahol/melody's gophers: everyone's mouse pointer, live. The protocol is three
/// text lines: the server tells a new connection `iam ID` after the positions of the
/// gophers already there; then each `X Y` a page sends goes to everyone else as
/// `set ID X Y`, and a departure as `dis ID`.
pub fn gophers<R: Runtime>(melody: &Melody<R>) {
    let next_id = Arc::new(AtomicU64::new(1));
    let m = melody.clone();
    melody.on_connect(move |session| {
        let me = Gopher {
            id: next_id.fetch_add(1, Ordering::Relaxed),
            at: None,
        };
        // Show the newcomer where everyone already is, then who it is.
        for other in m.sessions() {
            if let Some(Gopher {
                id,
                at: Some((x, y)),
            }) = other.get::<Gopher>("gopher")
            {
                session.write(&format!("set {id} {x} {y}"));
            }
        }
        session.set("gopher", me);
        session.write(&format!("iam {}", me.id));
    });

    let m = melody.clone();
    melody.on_message(move |session, text| {
        let Some(mut me) = session.get::<Gopher>("gopher") else {
            return;
        };
        let Some((x, y)) = position(text) else {
            return; // not "X Y": ignore it
        };
        me.at = Some((x, y));
        session.set("gopher", me);
        m.broadcast_others(&format!("set {} {x} {y}", me.id), session);
    });

    let m = melody.clone();
    melody.on_disconnect(move |session| {
        if let Some(me) = session.get::<Gopher>("gopher") {
            m.broadcast_others(&format!("dis {}", me.id), session);
        }
    });
}

/// The position in a page's `X Y` line; `None` for anything else.
fn position(text: &str) -> Option<(i32, i32)> {
    let mut parts = text.split_whitespace().map(str::parse::<i32>);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(x)), Some(Ok(y)), None) => Some((x, y)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::position;

    #[test]
    fn a_position_is_two_integers() {
        assert_eq!(position("12 -3"), Some((12, -3)));
        assert_eq!(position(" 1   2 "), Some((1, 2)));
        for bad in ["", "1", "1 2 3", "x 2", "1.5 2"] {
            assert_eq!(position(bad), None, "{bad:?}");
        }
    }
}
