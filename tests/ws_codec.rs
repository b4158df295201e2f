//! The WebSocket wire codec (src/sync/ws/codec.rs) against PROTOCOL.md 7 and 8.1: the recorded
//! vectors (tests/vectors/wire_payloads.json), round trips with multi-byte characters at the cut
//! points, every close condition, pieces out of order, expiry, the multiplex framing, and
//! TinyBase itself (tests/interop/ws_codec.mjs, when node and tests/interop/node_modules are there).

#[path = "support/rng.rs"]
mod rng;

use rng::Rng;
use serde_json::Value as Json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tinybase::sync::message::Message;
use tinybase::sync::ws::codec::*;
use tinybase::value::to_json_string;

const TIMEOUT: Duration = Duration::from_secs(1);

fn vectors() -> Json {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/wire_payloads.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn strings(v: &Json) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

/// A valid ContentDiff remainder whose cell holds `text`.
fn diff_remainder(text: &str) -> String {
    format!(r#"["tx",3,[[{{"t":[{{"r":[{{"c":[{},"NjEtLV-----7JQY8"]}}]}}]}}],[{{}}],1]]"#, serde_json::to_string(text).unwrap())
}

/// The part of a fragment frame after `clientId\nmessageId\n`: `i\nn\npiece`.
fn after_id(frame: &str) -> &str {
    let rest = frame.split_once('\n').unwrap().1;
    &rest[MESSAGE_ID_LEN + 1..]
}

/// Feeds frames in order; returns the payloads completed.
fn feed(r: &mut Reassembler, frames: &[String]) -> Vec<Payload> {
    let now = Instant::now();
    frames.iter().filter_map(|f| r.push(f, now).unwrap_or_else(|e| panic!("{f:?}: {e}"))).collect()
}

/// Asserts that `fragment` cuts `remainder` as `frames` were cut (message ids aside).
fn assert_same_cuts(frames: &[String], remainder: &str, fragment_size: usize) {
    let ours = fragment("", remainder, Some(fragment_size));
    if frames.len() == 1 {
        assert_eq!(ours, frames, "size {fragment_size}: one whole frame");
        return;
    }
    let theirs: Vec<&str> = frames.iter().map(|f| after_id(f)).collect();
    let ours: Vec<&str> = ours.iter().map(|f| after_id(f)).collect();
    assert_eq!(ours, theirs, "size {fragment_size}: the same pieces");
}

#[test]
fn vector_fragments_reassemble_in_order() {
    let v = vectors();
    let sent = strings(&v["fragmented"]["sent"]);
    let mut r = Reassembler::new(TIMEOUT);
    let got = feed(&mut r, &sent);
    assert_eq!(got.len(), 2, "ContentHashes whole, then the fragmented ContentDiff");
    assert_eq!(got[0].remainder, sent[0][1..]);
    assert!(got[0].fragments.is_empty());
    let whole: String = sent[1..].iter().map(|f| f.splitn(5, '\n').nth(4).unwrap()).collect();
    assert_eq!(got[1].remainder, whole);
    assert_eq!(got[1].client_id, "");
    assert_eq!(got[1].received.message, Message::ContentDiff);
    assert_eq!(got[1].fragments, sent[1..].iter().map(|f| f[1..].to_string()).collect::<Vec<_>>());
    assert_eq!((r.incomplete(), r.buffered_bytes()), (0, 0));
    assert_same_cuts(&sent[1..], &whole, 32);
}

#[test]
fn vector_fragments_reassemble_out_of_order() {
    let v = vectors();
    let case = &v["fragmented"]["reassembledOutOfOrder"];
    let fed = strings(&case["fedPayloads"]);
    let mut r = Reassembler::new(TIMEOUT);
    let now = Instant::now();
    for f in &fed[..fed.len() - 1] {
        assert_eq!(r.push(f, now), Ok(None));
    }
    let p = r.push(&fed[fed.len() - 1], now).unwrap().expect("complete");
    let call = &case["onReceiveCalls"][0];
    assert_eq!(p.client_id, call["from"].as_str().unwrap());
    assert_eq!(p.received.request_id.as_deref(), call["requestId"].as_str());
    assert_eq!(p.received.message as u8 as u64, call["message"].as_u64().unwrap());
    assert_eq!(to_json_string(&p.received.body), call["bodyJson"].as_str().unwrap());
    // Relayed as they came, in index order.
    let mut expected: Vec<String> = fed.iter().map(|f| f.split_once('\n').unwrap().1.to_string()).collect();
    expected.reverse();
    assert_eq!(p.fragments, expected);
}

#[test]
fn vector_legacy_payloads_are_whole() {
    let v = vectors();
    let sent = strings(&v["legacy"]["sent"]);
    let got = feed(&mut Reassembler::new(TIMEOUT), &sent);
    assert_eq!(got.len(), sent.len());
    for (p, f) in got.iter().zip(&sent) {
        assert_eq!(format!("{}\n{}", p.client_id, p.remainder), *f);
        assert!(p.fragments.is_empty());
        assert_eq!(fragment("", &p.remainder, None), vec![f.clone()]);
    }
}

#[test]
fn vector_multiplexed_frames_parse_and_rebuild() {
    let v = vectors();
    let sent = strings(&v["multiplexed"]["sent"]);
    let mut controls = Vec::new();
    let mut data = Vec::new();
    for f in &sent {
        match parse_mux(f).unwrap_or_else(|e| panic!("{f:?}: {e}")) {
            MuxFrame::Control { request_id, control, body } => {
                assert_eq!(control_frame(request_id.as_deref(), control, &body.to_string()), *f);
                controls.push((request_id.is_some(), control, body));
            }
            MuxFrame::Data { channel_id, payload } => {
                assert_eq!(data_frame(channel_id, payload), *f);
                assert!(Reassembler::new(TIMEOUT).push_channel(channel_id, payload, Instant::now()).unwrap().is_some());
                data.push(channel_id.to_string());
            }
        }
    }
    assert_eq!(
        controls,
        vec![
            (true, Control::Hello, Json::from(1)),
            (true, Control::Subscribe, Json::from("pets")),
            (false, Control::Unsubscribe, Json::from("pets"))
        ]
    );
    assert_eq!(data, vec!["pets"; 3]);
}

/// Texts with 1-, 2-, 3- and 4-byte characters in every position relative to the cuts.
fn tricky_texts() -> Vec<String> {
    let mut out = vec![String::new(), "a".into(), "😀".into()];
    for unit in ["é", "☃", "😀", "x😀", "xy☃", "é😀☃a", "\u{FFFC}", "\"\\\n"] {
        for n in [1, 2, 3, 7, 16, 33] {
            for prefix in ["", "a", "ab", "abc"] {
                out.push(format!("{prefix}{}", unit.repeat(n)));
            }
        }
    }
    out
}

#[test]
fn round_trips_never_split_a_code_point() {
    let mut rng = Rng(7);
    let mut fragmented = 0;
    for text in tricky_texts() {
        let remainder = diff_remainder(&text);
        for size in (1..=40).chain([64, 200, 1000]) {
            let frames = fragment("to", &remainder, Some(size));
            let max = size.max(remainder.len().div_ceil(1000) + 3);
            if frames.len() == 1 {
                assert_eq!(frames[0], format!("to\n{remainder}"));
                assert!(remainder.len() <= max);
                continue;
            }
            fragmented += 1;
            let n = frames.len();
            let mut pieces = Vec::new();
            for (i, f) in frames.iter().enumerate() {
                let (id, rest) = f.strip_prefix("to\n").unwrap().split_at(MESSAGE_ID_LEN);
                assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{id}");
                let piece = rest.strip_prefix(&format!("\n{i}\n{n}\n")).unwrap();
                assert!(!piece.is_empty());
                assert!(piece.len() <= max || piece.chars().count() == 1, "{piece:?} over {max}");
                pieces.push(piece);
            }
            // As large as possible: the next piece's first character would not have fitted.
            for w in pieces.windows(2) {
                assert!(w[0].len() + w[1].chars().next().unwrap().len_utf8() > max);
            }
            assert_eq!(pieces.concat(), remainder);
            let mut order: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                order.swap(i, rng.below(i as u64 + 1) as usize);
            }
            let mut r = Reassembler::new(TIMEOUT);
            let now = Instant::now();
            let mut done = None;
            for (k, &i) in order.iter().enumerate() {
                let got = r.push(&frames[i], now).unwrap();
                assert_eq!(got.is_some(), k == n - 1);
                done = done.or(got);
            }
            let p = done.unwrap();
            assert_eq!((p.client_id.as_str(), p.remainder.as_str()), ("to", remainder.as_str()));
            assert_eq!(p.fragments, frames.iter().map(|f| f[3..].to_string()).collect::<Vec<_>>());
            assert_eq!(p.received.message, Message::ContentDiff);
            assert_eq!((r.incomplete(), r.buffered_bytes()), (0, 0));
        }
    }
    assert!(fragmented > 1000);
}

#[test]
fn fragment_size_grows_to_keep_1000_pieces() {
    let remainder = diff_remainder(&"é😀☃".repeat(3000));
    let max = remainder.len().div_ceil(1000) + 3;
    for size in [1, 5, max - 1] {
        let frames = fragment("", &remainder, Some(size));
        assert!(frames.len() <= 1000 && frames.len() > 900, "{}", frames.len());
        assert!(frames.iter().all(|f| after_id(f).splitn(3, '\n').nth(2).unwrap().len() <= max));
        let p = feed(&mut Reassembler::new(TIMEOUT), &frames).pop().unwrap();
        assert_eq!(p.remainder, remainder);
    }
}

#[test]
fn unfragmented_when_off_or_one_piece() {
    let remainder = diff_remainder("dög");
    let whole = vec![format!("\n{remainder}")];
    assert_eq!(fragment("", &remainder, None), whole);
    assert_eq!(fragment("", &remainder, Some(0)), whole);
    assert_eq!(fragment("", &remainder, Some(remainder.len())), whole);
    assert_eq!(fragment("", &remainder, Some(remainder.len() - 1)).len(), 2);
    assert_eq!(fragment("peer", "", Some(1)), vec!["peer\n".to_string()]);
}

fn push(r: &mut Reassembler, frame: &str) -> Result<Option<Payload>, Close> {
    r.push(frame, Instant::now())
}

const ID: &str = "wAeM2pBjU8qNu6NC";

#[test]
fn malformed_frames_close_1007() {
    let bad = [
        "no newline",
        "",
        "\nnot json",
        "\n[\"x\",9,\"\"]",
        "\n[\"x\",1,\"\",4]",
        "\n[\"x\",1]",
        // Fragment syntax errors.
        "\nwAeM2pBjU8qNu6N\n0\n2\nab",
        "\nwAeM2pBjU8qNu6NC!\n0\n2\nab",
        "\nwAeM2pBjU8qNu6N.\n0\n2\nab",
        "\nwAeM2pBjU8qNu6NC\n0\n2",
        "\nwAeM2pBjU8qNu6NC\n0\n\nab",
        "\nwAeM2pBjU8qNu6NC\n\n2\nab",
        "\nwAeM2pBjU8qNu6NC\n-1\n2\nab",
        "\nwAeM2pBjU8qNu6NC\n0\n+2\nab",
        "\nwAeM2pBjU8qNu6NC\n0\n٢\nab",
        // n = 0, i >= n.
        "\nwAeM2pBjU8qNu6NC\n0\n0\nab",
        "\nwAeM2pBjU8qNu6NC\n2\n2\nab",
        "\nwAeM2pBjU8qNu6NC\n99999999999999999999999\n2\nab",
        // One piece that is not a message.
        "\nwAeM2pBjU8qNu6NC\n0\n1\n[\"x\",1,\"a\"]",
    ];
    for frame in bad {
        assert_eq!(push(&mut Reassembler::new(TIMEOUT), frame), Err(Close::malformed()), "{frame:?}");
    }
    let c = Close::malformed();
    assert_eq!((c.code, c.reason.as_str()), (1007, "tinybase:14"));
    // A one-piece fragment that is a message is accepted; so are leading zeros.
    let p = push(&mut Reassembler::new(TIMEOUT), &format!("\n{ID}\n00\n001\n[\"x\",1,\"\"]")).unwrap().unwrap();
    assert_eq!(p.remainder, "[\"x\",1,\"\"]");
    // Whitespace and escapes are fine: any valid JSON.
    assert!(push(&mut Reassembler::new(TIMEOUT), "\n[ \"\\u0078\" , 1 ,\n\"\" ]").unwrap().is_some());
}

#[test]
fn more_than_1000_fragments_overload() {
    let c = Close::overload("fragments");
    assert_eq!((c.code, c.reason.as_str()), (1013, "tinybase:15:fragments"));
    for frame in [format!("\n{ID}\n0\n1001\nab"), format!("\n{ID}\n5000\n1001\nab"), format!("\n{ID}\n0\n{}\nab", "9".repeat(400))] {
        assert_eq!(push(&mut Reassembler::new(TIMEOUT), &frame), Err(c.clone()), "{frame:?}");
    }
    assert_eq!(push(&mut Reassembler::new(TIMEOUT), &format!("\n{ID}\n999\n1000\nab")), Ok(None));
}

#[test]
fn duplicate_index_different_total_or_bad_whole_are_malformed() {
    let mut r = Reassembler::new(TIMEOUT);
    assert_eq!(push(&mut r, &format!("\n{ID}\n0\n3\n[\"x\"")), Ok(None));
    assert_eq!(push(&mut r, &format!("\n{ID}\n0\n3\n[\"x\"")), Err(Close::malformed()), "duplicate index");
    assert_eq!((r.incomplete(), r.buffered_bytes()), (0, 0), "dropped on error");
    let mut r = Reassembler::new(TIMEOUT);
    assert_eq!(push(&mut r, &format!("\n{ID}\n0\n3\n[\"x\"")), Ok(None));
    assert_eq!(push(&mut r, &format!("\n{ID}\n1\n4\n,1,")), Err(Close::malformed()), "different total");
    let mut r = Reassembler::new(TIMEOUT);
    assert_eq!(push(&mut r, &format!("\n{ID}\n1\n2\n,2,\"\"]")), Ok(None));
    assert_eq!(push(&mut r, &format!("\n{ID}\n0\n2\n[\"x\"")), Err(Close::malformed()), "joined whole is invalid");
}

#[test]
fn messages_are_keyed_by_sender_channel_and_id() {
    let mut r = Reassembler::new(TIMEOUT);
    let now = Instant::now();
    assert_eq!(r.push(&format!("a\n{ID}\n0\n2\n[\"x\","), now), Ok(None));
    assert_eq!(r.push(&format!("b\n{ID}\n0\n2\n[\"y\","), now), Ok(None));
    assert_eq!(r.push_channel("c2", &format!("a\n{ID}\n0\n2\n[\"z\","), now), Ok(None));
    assert_eq!(r.incomplete(), 3);
    let b = r.push(&format!("b\n{ID}\n1\n2\n1,\"\"]"), now).unwrap().unwrap();
    assert_eq!((b.client_id.as_str(), b.received.request_id.as_deref()), ("b", Some("y")));
    let z = r.push_channel("c2", &format!("a\n{ID}\n1\n2\n1,\"\"]"), now).unwrap().unwrap();
    assert_eq!(z.received.request_id.as_deref(), Some("z"));
    r.drop_channel("");
    assert_eq!((r.incomplete(), r.buffered_bytes()), (0, 0));
}

#[test]
fn more_than_100_incomplete_messages_overload() {
    let mut r = Reassembler::new(TIMEOUT);
    let now = Instant::now();
    // The limit is per socket: all channels count.
    for i in 0..100 {
        assert_eq!(r.push_channel(&format!("c{i}"), &format!("p\n{ID}\n0\n2\n["), now), Ok(None));
    }
    assert_eq!(r.push_channel("c100", &format!("p\n{ID}\n0\n2\n["), now), Err(Close::overload("fragments")));
    let mut r = Reassembler::new(TIMEOUT);
    for i in 0..100 {
        assert_eq!(r.push(&format!("p\n{:016}\n0\n3\n[", i), now), Ok(None));
    }
    assert_eq!(r.push(&format!("p\n{:016}\n1\n3\n\"", 5), now), Ok(None));
    assert_eq!(r.push(&format!("p\n{:016}\n0\n3\n[", 100), now), Err(Close::overload("fragments")));
    assert_eq!(r.incomplete(), 0);
}

#[test]
fn more_than_16_mib_buffered_overload() {
    let big = "a".repeat(9 << 20);
    let mut r = Reassembler::new(TIMEOUT);
    let now = Instant::now();
    assert_eq!(r.push(&format!("p\n{ID}\n0\n2\n{big}"), now), Ok(None));
    assert!(r.buffered_bytes() > big.len());
    assert_eq!(r.push(&format!("q\n{ID}\n0\n2\n{big}"), now), Err(Close::overload("fragments")));
    // Exactly at the limit is still fine: the remainder plus `clientId\nmessageId` counts.
    let mut r = Reassembler::new(TIMEOUT);
    let fill = MAX_PAYLOAD_BYTES - (ID.len() + 1 + 4) - (1 + ID.len() + 1);
    let frame = format!("p\n{ID}\n0\n2\n{}", "a".repeat(fill));
    assert_eq!(r.push(&frame, now), Ok(None));
    assert_eq!(r.buffered_bytes(), MAX_PAYLOAD_BYTES);
    assert_eq!(r.push(&format!("p\n{ID}\n1\n2\n]"), now), Err(Close::overload("fragments")));
}

#[test]
fn oversized_payloads_overload_socket_or_fragments() {
    let over = "a".repeat(MAX_PAYLOAD_BYTES);
    let whole = format!("\n[\"{over}\",1,\"\"]");
    assert_eq!(push(&mut Reassembler::new(TIMEOUT), &whole), Err(Close::overload("socket")));
    assert_eq!(push(&mut Reassembler::new(TIMEOUT), &format!("p\n{ID}\n0\n2\n{over}")), Err(Close::overload("fragments")));
    assert_eq!(parse_mux(&format!("M\nc\n{whole}")), Err(Close::overload("socket")));
    // Multi-byte characters count their UTF-8 bytes.
    let emoji = "😀".repeat(MAX_PAYLOAD_BYTES / 4 + 1);
    assert_eq!(push(&mut Reassembler::new(TIMEOUT), &format!("\n{emoji}")), Err(Close::overload("socket")));
}

#[test]
fn incomplete_messages_expire_after_the_timeout() {
    let t0 = Instant::now();
    let mut r = Reassembler::new(TIMEOUT);
    assert_eq!(r.push(&format!("p\n{ID}\n0\n2\n[\"x\","), t0), Ok(None));
    assert_eq!(r.next_expiry(), Some(t0 + TIMEOUT));
    r.expire(t0 + TIMEOUT - Duration::from_millis(1));
    assert_eq!(r.incomplete(), 1);
    r.expire(t0 + TIMEOUT);
    assert_eq!((r.incomplete(), r.buffered_bytes(), r.next_expiry()), (0, 0, None));
    // The late piece starts over and never completes the message.
    assert_eq!(r.push(&format!("p\n{ID}\n1\n2\n1,\"\"]"), t0 + TIMEOUT), Ok(None));
    assert_eq!(r.incomplete(), 1);
    // push expires too: a full buffer frees up once its messages are old.
    let mut r = Reassembler::new(TIMEOUT);
    for i in 0..100 {
        assert_eq!(r.push(&format!("p\n{:016}\n0\n2\n[", i), t0), Ok(None));
    }
    assert_eq!(r.push(&format!("p\n{ID}\n0\n2\n[\"x\","), t0 + TIMEOUT), Ok(None));
    assert_eq!(r.incomplete(), 1);
    // A message completes within its time whatever the order.
    assert!(r.push(&format!("p\n{ID}\n1\n2\n1,\"\"]"), t0 + TIMEOUT + TIMEOUT / 2).unwrap().is_some());
}

#[test]
fn control_frames() {
    let ok = [
        ("S\n[\"abc\",-1,[0,1]]", Some("abc"), Control::Hello, Json::from(1)),
        ("S\n[\"abc\",-1.0,[0,1e0]]", Some("abc"), Control::Hello, Json::from(1)),
        ("S\n[\"abc\",-1,[1,\"a/b\"]]", Some("abc"), Control::Subscribe, Json::from("a/b")),
        ("S\n[null,-1,[2,\"a/b\"]]", None, Control::Unsubscribe, Json::from("a/b")),
        ("S\n [ \"\" , -1 , [ 1 , \"\\u00e9\" ] ] ", Some(""), Control::Subscribe, Json::from("é")),
    ];
    for (frame, id, control, body) in ok {
        let expected = MuxFrame::Control { request_id: id.map(String::from), control, body };
        assert_eq!(parse_mux(frame), Ok(expected), "{frame:?}");
    }
    let bad = [
        "S\n[\"abc\",-1,[0,2]]",
        "S\n[\"abc\",-1,[0,\"1\"]]",
        "S\n[null,-1,[0,1]]",
        "S\n[\"abc\",-1,[3,\"x\"]]",
        "S\n[\"abc\",-1,[0,1,2]]",
        "S\n[\"abc\",-1,[0]]",
        "S\n[\"abc\",-1,{}]",
        "S\n[\"abc\",-2,[0,1]]",
        "S\n[\"abc\",-1,[0,1],4]",
        "S\n[5,-1,[0,1]]",
        "S\n[null,-1,[1,\"x\"]]",
        "S\n[\"abc\",-1,[2,\"x\"]]",
        "S\n[\"abc\",-1,[1,5]]",
        "S\n[\"abc\",-1,[1,\"\"]]",
        "S\n[\"abc\",-1,[1,\"a//b\"]]",
        "S\n[\"abc\",-1,[1,\"\u{FFFC}\"]]",
        "S\n[\"abc\",1,\"\"]",
        "S\nnot json",
        "S[\"abc\",-1,[0,1]]",
        "X\n[\"abc\",-1,[0,1]]",
        "\n[\"abc\",1,\"\"]",
        "",
    ];
    for frame in bad {
        assert_eq!(parse_mux(frame), Err(Close::malformed()), "{frame:?}");
    }
    // A too long channel id in a control frame is left to check_channel_id (the server only
    // acts on it after Hello).
    let long = "x".repeat(MAX_CHANNEL_ID_BYTES + 1);
    let frame = control_frame(Some("r"), Control::Subscribe, &serde_json::to_string(&long).unwrap());
    match parse_mux(&frame) {
        Ok(MuxFrame::Control { body, .. }) => assert_eq!(check_channel_id(body.as_str().unwrap()), Err(Close::overload("channels"))),
        other => panic!("{other:?}"),
    }
    assert_eq!(control_frame(None, Control::Unsubscribe, "\"pets\""), "S\n[null,-1,[2,\"pets\"]]");
    assert_eq!(control_frame(Some("a\"b"), Control::Hello, "1"), "S\n[\"a\\\"b\",-1,[0,1]]");
}

#[test]
fn data_frames() {
    assert_eq!(parse_mux("M\npets\n\n[1]"), Ok(MuxFrame::Data { channel_id: "pets", payload: "\n[1]" }));
    assert_eq!(parse_mux("M\na/b\nanything"), Ok(MuxFrame::Data { channel_id: "a/b", payload: "anything" }));
    assert_eq!(data_frame("a/b", "p\n[1]"), "M\na/b\np\n[1]");
    for bad in ["M\npets", "M\n\n\n[1]", "M\na/./b\n\n[1]", "M\na#\n\n[1]", "M\n/a\n\n[1]", "Mx\npets\n\n[1]"] {
        assert_eq!(parse_mux(bad), Err(Close::malformed()), "{bad:?}");
    }
    let long = "é".repeat(MAX_CHANNEL_ID_BYTES / 2 + 1);
    assert_eq!(parse_mux(&data_frame(&long, "\n[1]")), Err(Close::overload("channels")));
    let exact = "é".repeat(MAX_CHANNEL_ID_BYTES / 2);
    assert!(parse_mux(&data_frame(&exact, "\n[1]")).is_ok());
}

#[test]
fn channel_ids() {
    for ok in ["pets", "a/b", "a.b/..c/...", "é😀", " ", "a%20b", &"x".repeat(1024)] {
        assert_eq!(check_channel_id(ok), Ok(()), "{ok:?}");
    }
    for bad in ["", "a\nb", "a\rb", "a?b", "a#b", "/a", "a/", "a//b", ".", "..", "a/./b", "a/../b"] {
        assert_eq!(check_channel_id(bad), Err(Close::malformed()), "{bad:?}");
    }
    assert_eq!(check_channel_id(&"x".repeat(1025)), Err(Close::overload("channels")));
    assert_eq!(check_channel_id(&format!("{}?", "x".repeat(1024))), Err(Close::overload("channels")), "length first");
}

#[test]
fn room_paths() {
    assert_eq!(room_path("", "pets"), "pets");
    assert_eq!(room_path("shop", "pets"), "shop/pets");
    assert_eq!(room_path("a/b", "c/d"), "a/b/c/d");
    // A base path `/` gives the room "" and then the channel alone.
    assert_eq!(room_path(&path_of_request_uri("/"), "room"), "room");
    assert_eq!(room_path(&path_of_request_uri("/shop?x=1"), "pets"), path_of_request_uri("/shop/pets"));
}

#[test]
fn request_uri_paths() {
    for (uri, path) in [
        ("/room1?x=1", "room1"),
        ("/shop/pets", "shop/pets"),
        ("/a%20b/c?x=1", "a%20b/c"),
        ("/a/b/", "a/b/"),
        ("/", ""),
        ("/?token=a/b", ""),
        ("/a?b?c", "a"),
        ("", ""),
    ] {
        assert_eq!(path_of_request_uri(uri), path, "{uri:?}");
    }
}

/// Runs tests/interop/ws_codec.mjs, or None (with a message) when node or TinyBase is absent.
fn node(mode: &str, input: Option<&str>) -> Option<Json> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    if !dir.join("node_modules/tinybase").exists() {
        eprintln!("SKIPPED: tests/interop/node_modules is absent (cd tests/interop && npm ci)");
        return None;
    }
    let mut child = match Command::new("node")
        .arg("ws_codec.mjs")
        .arg(mode)
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("SKIPPED: cannot run node: {e}");
            return None;
        }
    };
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, input.unwrap_or("").as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "node ws_codec.mjs {mode} failed");
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn tinybase_fragments_reassemble_and_cut_the_same() {
    let Some(out) = node("send", None) else { return };
    let mut messages = 0;
    let mut fragmented = 0;
    for case in out["cases"].as_array().unwrap() {
        let size = case["fragmentSize"].as_u64().unwrap() as usize;
        let frames = strings(&case["frames"]);
        let mut r = Reassembler::new(TIMEOUT);
        let mut start = 0;
        for (i, f) in frames.iter().enumerate() {
            let Some(p) = r.push(f, Instant::now()).unwrap_or_else(|e| panic!("size {size}, {f:?}: {e}")) else { continue };
            let theirs = &frames[start..=i];
            assert_eq!(p.fragments.is_empty(), theirs.len() == 1);
            assert_same_cuts(theirs, &p.remainder, size);
            messages += 1;
            fragmented += usize::from(theirs.len() > 1);
            start = i + 1;
        }
        assert_eq!(start, frames.len(), "size {size}: every frame belongs to a whole message");
    }
    assert!(messages > 50 && fragmented > 40, "{messages} messages, {fragmented} fragmented");
}

/// What a receiver made of a sequence of frames: (from, request id, message, body JSON) per
/// message, and the close (code, reason) that stopped it, if any.
type Outcome = (Vec<(String, Option<String>, u64, String)>, Option<(u64, String)>);

fn our_outcome(frames: &[String]) -> Outcome {
    let mut r = Reassembler::new(TIMEOUT);
    let mut got = Vec::new();
    for f in frames {
        match r.push(f, Instant::now()) {
            Ok(Some(p)) => got.push((p.client_id, p.received.request_id, p.received.message as u64, to_json_string(&p.received.body))),
            Ok(None) => {}
            Err(c) => return (got, Some((u64::from(c.code), c.reason))),
        }
    }
    (got, None)
}

fn tinybase_outcome(result: &Json) -> Outcome {
    let got = result["received"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c[0].as_str().unwrap().to_string(), c[1].as_str().map(String::from), c[2].as_u64().unwrap(), c[3].as_str().unwrap().to_string()))
        .collect();
    let closed = result["closed"].as_array().map(|c| (c[0].as_u64().unwrap(), c[1].as_str().unwrap().to_string()));
    (got, closed)
}

/// A random sequence of frames: whole payloads valid and not, fragmented messages in and out
/// of order and interleaved, and every way a fragment can be wrong.
fn random_frames(rng: &mut Rng, texts: &[String]) -> Vec<String> {
    let clients = ["", "peer", "p2"];
    let mut frames = Vec::new();
    for _ in 0..1 + rng.below(6) {
        let client = clients[rng.below(3) as usize];
        let valid = diff_remainder(&texts[rng.below(texts.len() as u64) as usize]).replacen("\"tx\"", &format!("\"tx{}\"", rng.below(100)), 1);
        let invalid = ["not json", "[\"x\",1,\"a\"]", "[1,2]", "[\"x\",3,[[{}],[{}],2]]", ""][rng.below(5) as usize];
        let remainder = if rng.chance(85) { valid.as_str() } else { invalid };
        let mut mine = fragment(client, remainder, Some(1 + rng.below(40) as usize));
        match rng.below(12) {
            0 => mine = vec![client.to_string() + remainder.replace('\n', "").as_str()],
            1 if mine.len() > 1 => mine.reverse(),
            2 if mine.len() > 2 => {
                let i = rng.below(mine.len() as u64) as usize;
                mine.remove(i);
            }
            3 if mine.len() > 1 => {
                let i = rng.below(mine.len() as u64) as usize;
                let dup = mine[i].clone();
                mine.insert(rng.below(mine.len() as u64) as usize, dup);
            }
            4 if mine.len() > 1 => {
                let i = rng.below(mine.len() as u64) as usize;
                let n = mine.len();
                let bad = match rng.below(6) {
                    0 => mine[i].replacen(&format!("\n{n}\n"), &format!("\n{}\n", n + 1), 1),
                    1 => mine[i].replacen(&format!("\n{i}\n{n}\n"), &format!("\n{n}\n{n}\n"), 1),
                    2 => mine[i].replacen(&format!("\n{n}\n"), "\n0\n", 1),
                    3 => mine[i].replacen(&format!("\n{n}\n"), "\n1001\n", 1),
                    4 => mine[i].replacen('\n', "\nx", 1),
                    _ => mine[i].replacen(&format!("\n{i}\n"), &format!("\n0{i}\n"), 1),
                };
                mine[i] = bad;
            }
            5 if mine.len() > 1 => {
                // Corrupt one piece's text: the joined whole is no message.
                let i = rng.below(mine.len() as u64) as usize;
                mine[i].push('}');
            }
            6 => {
                // Many incomplete messages at once.
                for k in 0..95 + rng.below(10) {
                    frames.push(format!("{client}\n{:016}\n0\n2\n[", k));
                }
            }
            _ => {}
        }
        // Interleave with what came before.
        let at = if frames.is_empty() || rng.chance(70) { frames.len() } else { rng.below(frames.len() as u64) as usize };
        for (k, f) in mine.into_iter().enumerate() {
            frames.insert((at + k).min(frames.len()), f);
        }
    }
    frames
}

#[test]
fn tinybase_decodes_random_frames_as_we_do() {
    let texts = tricky_texts();
    let mut rng = Rng(2024);
    let scenarios: Vec<Vec<String>> = (0..400).map(|_| random_frames(&mut rng, &texts)).collect();
    let Some(out) = node("receive", Some(&serde_json::to_string(&scenarios).unwrap())) else { return };
    let results = out["results"].as_array().unwrap();
    let mut closes = std::collections::BTreeMap::new();
    let mut messages = 0;
    for (frames, result) in scenarios.iter().zip(results) {
        let ours = our_outcome(frames);
        assert_eq!(ours, tinybase_outcome(result), "frames: {frames:?}");
        messages += ours.0.len();
        *closes.entry(ours.1.map(|c| c.1)).or_insert(0) += 1;
    }
    // The scenarios reach every outcome.
    for reason in [None, Some("tinybase:14"), Some("tinybase:15:fragments")] {
        assert!(closes.get(&reason.map(String::from)).is_some_and(|&n| n >= 10), "{closes:?}");
    }
    assert!(messages > 300, "{messages}");
}

#[test]
fn tinybase_reassembles_our_fragments() {
    let mut frames = Vec::new();
    let mut expected = Vec::new();
    let mut rng = Rng(11);
    for (k, text) in tricky_texts().iter().enumerate().step_by(5) {
        let remainder = diff_remainder(text).replacen("\"tx\"", &format!("\"tx{k}\""), 1);
        let mut mine = fragment("peer", &remainder, Some(1 + k % 9));
        // Shuffled within the message: TinyBase takes pieces in any order too.
        for i in (1..mine.len()).rev() {
            mine.swap(i, rng.below(i as u64 + 1) as usize);
        }
        frames.extend(mine);
        let body: Json = serde_json::from_str(&remainder).unwrap();
        expected.push(body[2].clone());
    }
    let bad = vec![format!("p\n{ID}\n0\n1001\nab")];
    let Some(out) = node("receive", Some(&serde_json::to_string(&[&frames, &bad]).unwrap())) else { return };
    let results = out["results"].as_array().unwrap();
    assert_eq!(results[0]["closed"], Json::Null, "TinyBase closed the socket");
    let got: Vec<Json> = results[0]["received"].as_array().unwrap().iter().map(|c| serde_json::from_str(c[3].as_str().unwrap()).unwrap()).collect();
    assert_eq!(got, expected);
    // And it closes on a bad one as we do.
    assert_eq!(results[1]["closed"], serde_json::json!([1013, "tinybase:15:fragments"]));
    assert_eq!(our_outcome(&bad).1, Some((1013, "tinybase:15:fragments".to_string())));
}
