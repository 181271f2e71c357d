//! A node on smol and a node on tokio share one Redis: the backplane runs on each
//! instance's own runtime, and the `redis` crate's smol support serves the smol node.

use std::net::SocketAddr;

use melody_redis::{RedisBackplane, RedisHandle};
use melody_smol::{Config, Melody};

use crate::harness::{config, wait_until, wire_handlers, Client, Node, SharedRedis, SETTLE};

/// A smol node with the harness's handlers, served from a thread of its own.
struct SmolNode {
    melody: Melody,
    addr: SocketAddr,
    redis: RedisHandle,
}

impl SmolNode {
    fn start(backplane: RedisBackplane) -> SmolNode {
        let melody = Melody::with_config(Config::default()).expect("valid config");
        wire_handlers(&melody);
        let redis = backplane.handle();
        assert!(melody.attach_backplane(backplane).is_ok());
        let listener = smol::block_on(smol::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        let addr = listener.local_addr().expect("local address");
        let m = melody.clone();
        std::thread::spawn(move || smol::block_on(melody_smol::serve(&m, listener)));
        SmolNode {
            melody,
            addr,
            redis,
        }
    }
}

impl Drop for SmolNode {
    fn drop(&mut self) {
        self.melody.close();
    }
}

#[test]
fn a_smol_node_and_a_tokio_node_act_as_one() {
    let Some(redis) = SharedRedis::get() else {
        return;
    };
    let cfg = config(&redis.url, "runtimes");
    let on_tokio = Node::start(cfg.clone());
    let on_smol = SmolNode::start(RedisBackplane::new(cfg).expect("a valid Redis URL"));
    let mut tokio_client = on_tokio.connect("/t/news");
    let mut smol_client = Client::connect(on_smol.addr, "/t/news");
    on_tokio.wait_ready(&["news"], SETTLE);
    wait_until("the smol node ready", SETTLE, || {
        on_smol.redis.is_ready() && on_smol.redis.is_listening("news")
    });

    smol_client.send("from smol");
    assert_eq!(tokio_client.recv(), "from smol");
    tokio_client.send("from tokio");
    assert_eq!(
        smol_client.recv(),
        "from smol",
        "its own, delivered locally first"
    );
    assert_eq!(smol_client.recv(), "from tokio");
}
