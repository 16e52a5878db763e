//! A loopback HTTP server for the tests of the HTTP source and the webhook sink.

use axum::response::{IntoResponse, Response};

/// Serves `handler` (an axum handler that answers every request) on a free loopback port
/// for as long as `rt` lives; returns the port.
pub fn serve<H, T>(rt: &tokio::runtime::Runtime, handler: H) -> u16
where
    H: axum::handler::Handler<T, ()>,
    T: 'static,
{
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(handler);
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

/// A 200 answer with the JSON `body`.
pub fn json(body: impl Into<String>) -> Response {
    ([("content-type", "application/json")], body.into()).into_response()
}
