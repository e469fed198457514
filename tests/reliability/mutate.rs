//! Deterministic hostile payloads: byte-level and structural mutations of a valid webhook, plus
//! hand-built extremes (deep nesting, 1 MB strings, invalid UTF-8, duplicate keys, wrong types,
//! 10,000 labels, huge alert arrays). A seed makes every failure reproducible.

use serde_json::{json, Map, Value};

/// xorshift64*: tiny, deterministic, good enough to pick mutations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// One request to send: a body and the Content-Type it claims.
pub struct Case {
    pub what: String,
    pub body: Vec<u8>,
    pub content_type: &'static str,
}

impl Case {
    fn json(what: impl Into<String>, body: Vec<u8>) -> Self {
        Self {
            what: what.into(),
            body,
            content_type: "application/json",
        }
    }
}

/// Tokens that tend to break parsers when spliced in.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "null",
    "true",
    "-0",
    "1e999",
    "-1e999",
    "18446744073709551616",
    "\\u0000",
    "\\ud800",
    "\\",
    "\u{0}",
    "\u{feff}",
    "NaN",
    "Infinity",
    "\"service\":",
    "\"alerts\":",
    "\"labels\":{}",
    "\r\n",
    "$(reboot)",
    "../../etc/passwd",
];

/// The `n`th case of a run seeded with `seed`.
pub fn case(seed: &Value, n: usize, rng: &mut Rng) -> Case {
    match n % 10 {
        0 => extreme(n / 10, rng),
        1..=5 => bytes(seed, rng),
        _ => structural(seed, rng),
    }
}

/// Splice, flip, delete and duplicate bytes of the serialized seed.
fn bytes(seed: &Value, rng: &mut Rng) -> Case {
    let mut body = serde_json::to_vec(seed).unwrap();
    let edits = 1 + rng.below(4);
    for _ in 0..edits {
        let at = rng.below(body.len() + 1);
        match rng.below(5) {
            0 if at < body.len() => body[at] = rng.next() as u8,
            1 => {
                let end = (at + rng.below(32)).min(body.len());
                body.drain(at..end);
            }
            2 => {
                let token = rng.pick(TOKENS).as_bytes().to_vec();
                body.splice(at..at, token);
            }
            3 => {
                let end = (at + rng.below(64)).min(body.len());
                let copy = body[at..end].to_vec();
                body.splice(at..at, copy);
            }
            _ => body.truncate(at),
        }
    }
    Case::json("byte mutation", body)
}

/// Replace, delete or add a node of the parsed seed: wrong types in every position.
fn structural(seed: &Value, rng: &mut Rng) -> Case {
    let mut value = seed.clone();
    let mut pointers = Vec::new();
    collect_pointers(&value, String::new(), &mut pointers);
    let edits = 1 + rng.below(3);
    for _ in 0..edits {
        let pointer = pointers[rng.below(pointers.len())].clone();
        let replacement = odd_value(rng);
        match rng.below(3) {
            0 => {
                if let Some(slot) = value.pointer_mut(&pointer) {
                    *slot = replacement;
                }
            }
            1 => remove(&mut value, &pointer),
            _ => {
                if let Some(Value::Object(map)) = value.pointer_mut(&pointer) {
                    map.insert(format!("x{}", rng.below(100)), replacement);
                }
            }
        }
    }
    Case::json("structural mutation", serde_json::to_vec(&value).unwrap())
}

fn collect_pointers(value: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                collect_pointers(child, format!("{at}/{}", key.replace('~', "~0")), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                collect_pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn remove(value: &mut Value, pointer: &str) {
    let Some((parent, key)) = pointer.rsplit_once('/') else {
        return;
    };
    match value.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.remove(key);
        }
        Some(Value::Array(items)) => {
            if let Ok(i) = key.parse::<usize>() {
                if i < items.len() {
                    items.remove(i);
                }
            }
        }
        _ => {}
    }
}

fn odd_value(rng: &mut Rng) -> Value {
    match rng.below(10) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(-1),
        3 => json!(1.5e300),
        4 => json!(u64::MAX),
        5 => json!(""),
        6 => json!("x".repeat(rng.below(5000))),
        7 => json!([]),
        8 => json!({}),
        _ => json!([null, {"a": [1, "b"]}]),
    }
}

const TOP_LEVEL: &[&[u8]] = &[b"null", b"[]", b"42", b"\"alerts\"", b"true"];

/// The extremes the issue names, cycled with variations.
fn extreme(n: usize, rng: &mut Rng) -> Case {
    match n % 16 {
        0 => Case::json("deep array nesting", nested(b'[', b']', 10_000 + rng.below(90_000))),
        1 => Case::json("deep object nesting", deep_objects(5_000 + rng.below(20_000))),
        2 => Case::json("1 MB label value", alert_with_label_value(1 << 20)),
        3 => Case::json("200 KB label value", alert_with_label_value(200 << 10)),
        4 => Case::json("invalid UTF-8 in a string", invalid_utf8(rng)),
        5 => Case::json(
            "duplicate keys",
            br#"{"version":"4","status":"firing","alerts":[],"alerts":[{"labels":{"alertname":"TestHighCPU","service":"a","service":"b"},"status":"firing","status":"resolved"}]}"#.to_vec(),
        ),
        6 => Case::json("10,000 labels", many_labels(10_000)),
        7 => Case::json("1,500 alerts", many_alerts(1_500)),
        8 => Case::json("20,000 alerts (over the body limit)", many_alerts(20_000)),
        9 => Case::json("empty body", Vec::new()),
        10 => Case::json("wrong top-level type", rng.pick(TOP_LEVEL).to_vec()),
        11 => Case::json("alerts of wrong types", br#"{"alerts":[1,"x",null,[],{"labels":[]},{"labels":{"alertname":7}}]}"#.to_vec()),
        12 => Case {
            what: "not JSON content type".into(),
            body: b"alertname=TestHighCPU".to_vec(),
            content_type: "application/x-www-form-urlencoded",
        },
        13 => Case::json("NUL and control bytes", b"{\"alerts\":[{\"labels\":{\"service\":\"a\x00b\x01\"}}]}".to_vec()),
        14 => Case::json("huge numbers", br#"{"truncatedAlerts":1e99999,"alerts":[{"startsAt":123456789012345678901234567890}]}"#.to_vec()),
        _ => Case::json("lone surrogate escapes", br#"{"alerts":[{"labels":{"alertname":"\ud800","service":"\udfff\u0000"}}]}"#.to_vec()),
    }
}

fn nested(open: u8, close: u8, depth: usize) -> Vec<u8> {
    let mut body = vec![open; depth];
    body.extend(std::iter::repeat_n(close, depth));
    body
}

fn deep_objects(depth: usize) -> Vec<u8> {
    let mut body = b"{\"alerts\":".to_vec();
    body.extend(std::iter::repeat_n(b"{\"a\":".as_slice(), depth).flatten());
    body.extend_from_slice(b"1");
    body.extend(std::iter::repeat_n(b'}', depth + 1));
    body
}

fn alert(service: &str, labels: Map<String, Value>) -> Value {
    let mut all = labels;
    all.insert("alertname".into(), json!("TestHighCPU"));
    all.insert("service".into(), json!(service));
    json!({"status": "firing", "labels": all, "startsAt": "2026-11-30T09:00:00Z",
           "fingerprint": "f00df00df00df00d"})
}

fn alert_with_label_value(len: usize) -> Vec<u8> {
    let service = "s".repeat(len);
    serde_json::to_vec(&json!({"version": "4", "alerts": [alert(&service, Map::new())]})).unwrap()
}

fn invalid_utf8(rng: &mut Rng) -> Vec<u8> {
    let mut body =
        br#"{"version":"4","alerts":[{"labels":{"alertname":"TestHighCPU","service":"fuzz-"#
            .to_vec();
    const INVALID: &[&[u8]] = &[
        &[0xff, 0xfe],
        &[0xc3, 0x28],
        &[0xed, 0xa0, 0x80],
        &[0xf8, 0x88, 0x80, 0x80],
    ];
    body.extend_from_slice(rng.pick(INVALID));
    body.extend_from_slice(br#""},"status":"firing"}]}"#);
    body
}

fn many_labels(count: usize) -> Vec<u8> {
    let labels: Map<String, Value> = (0..count).map(|i| (format!("l{i}"), json!("v"))).collect();
    serde_json::to_vec(&json!({"version": "4", "alerts": [alert("fuzz-absent-labels", labels)]}))
        .unwrap()
}

fn many_alerts(count: usize) -> Vec<u8> {
    let alerts: Vec<Value> = (0..count)
        .map(|i| alert(&format!("fuzz-absent-{}", i % 50), Map::new()))
        .collect();
    serde_json::to_vec(&json!({"version": "4", "alerts": alerts})).unwrap()
}
