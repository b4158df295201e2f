//! TinyBase's WebSocket framing (`clientId\n[requestId, message, body]`) over any medium that
//! carries one text frame at a time: a [`Transport`] adapter for the send side, and
//! [`super::Synchronizer::receive_framed`] for the receive side.

use super::message::frame;
use super::Transport;

/// A [`Transport`] that hands each payload, framed as TinyBase's WebSocket payloads are
/// (`toClientId\n[...]`, an empty client id meaning every other client), to `send_frame`.
/// Like [`Transport::send`], `send_frame` runs on the synchronizer's worker thread.
pub struct FramedTransport<F> {
    send_frame: F,
}

impl<F: Fn(&str) + Send + Sync + 'static> FramedTransport<F> {
    /// A transport sending frames through `send_frame`.
    pub fn new(send_frame: F) -> FramedTransport<F> {
        FramedTransport { send_frame }
    }
}

impl<F: Fn(&str) + Send + Sync + 'static> Transport for FramedTransport<F> {
    fn send(&self, to: Option<&str>, payload: &str) {
        (self.send_frame)(&frame(to, payload));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn frames_like_tinybase_websockets() {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let s = sent.clone();
        let t = FramedTransport::new(move |f: &str| s.lock().unwrap().push(f.to_string()));
        t.send(Some("abc"), "[\"x\",1,\"\"]");
        t.send(None, "[null,2,[1,2]]");
        assert_eq!(*sent.lock().unwrap(), vec!["abc\n[\"x\",1,\"\"]".to_string(), "\n[null,2,[1,2]]".to_string()]);
    }
}
