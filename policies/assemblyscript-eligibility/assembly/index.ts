// The policy ABI's exports (sdk/ABI.md, version 1); the rules are in
// policy.ts. Memory handed to the host is never freed: the host runs every
// decision in a fresh instance and drops it afterwards.

import { DECISIONS, decide } from "./policy";

export function policy_abi_version(): i32 {
  return 1;
}

export function policy_decisions(): i32 {
  return DECISIONS;
}

export function policy_alloc(len: i32): i32 {
  if (len < 0) return 0;
  return <i32>heap.alloc(<usize>len);
}

export function policy_evaluate(kind: i32, ptr: i32, len: i32): i64 {
  const input = String.UTF8.decodeUnsafe(<usize>ptr, <usize>len);
  // REPLACE: a lone surrogate (from a \u escape) becomes U+FFFD instead of
  // bytes that are not UTF-8, which the host would refuse.
  const out = String.UTF8.encode(decide(kind, input), false, String.UTF8.ErrorMode.REPLACE);
  // (address << 32) | length, both unsigned 32-bit.
  return (<i64>changetype<usize>(out) << 32) | <i64>out.byteLength;
}
