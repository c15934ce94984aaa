//! `Hello` over wasi:http, for `wasmtime serve`: the peer figure of the
//! Cloister HTTP throughput benchmark.

use std::io::Write as _;
use wasip2::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

wasip2::http::proxy::export!(Hello);

struct Hello;

impl wasip2::exports::http::incoming_handler::Guest for Hello {
    fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
        let resp = OutgoingResponse::new(Fields::new());
        let Ok(body) = resp.body() else { return };
        ResponseOutparam::set(response_out, Ok(resp));
        if let Ok(mut out) = body.write() {
            let _ = out.write_all(b"{\"text\":\"hello\"}");
            let _ = out.flush();
        }
        let _ = OutgoingBody::finish(body, None);
    }
}
