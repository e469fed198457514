//! Loopback ports for servers a test starts itself (Prometheus, Alertmanager, the binary).

/// A port free on loopback when asked (the OS picks it; it is released at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
