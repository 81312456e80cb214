//! Hand-written policy modules (WAT) speaking the ABI by hand: fixed answers
//! for composition tests, and hostile behaviour for sandbox tests.

const VALID: &str = r#"{"ok":{"decision":"valid"}}"#;
const VALID_AT: u64 = 16;
const ANSWER_AT: u64 = 256;

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn packed(ptr: u64, len: usize) -> u64 {
    (ptr << 32) | len as u64
}

/// A module answering settings validation with "valid" and every other
/// decision by running `body` (instructions leaving an i64, or diverging).
pub(crate) fn module(
    abi_version: i32,
    memory: &str,
    imports: &str,
    answer: &str,
    body: &str,
) -> Vec<u8> {
    let text = format!(
        r#"(module
  {imports}
  (memory (export "memory") {memory})
  (global $heap (mut i32) (i32.const 4096))
  (func (export "policy_abi_version") (result i32) (i32.const {abi_version}))
  (func (export "policy_decisions") (result i32) (i32.const 15))
  (func (export "policy_alloc") (param $len i32) (result i32) (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $len)))
    (local.get $p))
  (func (export "policy_evaluate") (param $kind i32) (param $ptr i32) (param $len i32) (result i64)
    (if (result i64) (i32.eqz (local.get $kind))
      (then (i64.const {valid}))
      (else {body})))
  (data (i32.const {VALID_AT}) "{valid_text}")
  (data (i32.const {ANSWER_AT}) "{answer_text}"))"#,
        valid = packed(VALID_AT, VALID.len()),
        valid_text = escape(VALID),
        answer_text = escape(answer),
    );
    ::wat::parse_str(&text).expect("valid WAT")
}

/// Answers every decision with `answer` (an output document).
pub(crate) fn answer_module(answer: &str) -> Vec<u8> {
    let body = format!("(i64.const {})", packed(ANSWER_AT, answer.len()));
    module(1, "1", "", answer, &body)
}

/// Runs `body` for every decision (settings validation still passes).
pub(crate) fn hostile_module(body: &str) -> Vec<u8> {
    module(1, "1", "", "", body)
}

/// A well-formed module claiming another ABI version.
pub(crate) fn abi_version_module(version: i32) -> Vec<u8> {
    module(version, "1", "", "", "(i64.const 0)")
}
