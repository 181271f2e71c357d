mod sim;

use sim::*;

#[test]
fn smoke_connect_echo() {
    let mut s = Sim::new(melody_core::Config::default()).with_app(echo_app);
    let id = s.connect();
    s.client_send(id, tungstenite::Message::text("hello"));
    s.pump();
    assert_eq!(s.peer(id).texts(), vec!["hello"]);
}
