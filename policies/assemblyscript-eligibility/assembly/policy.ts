// The rules: only pods carrying a label may receive a public IP.
//
// Settings:
//   {"podLabel": "example.com/public-ip", "podLabelValue": "true"}
// podLabelValue is optional (any value then). Private IP targets are denied:
// this policy vouches for labelled pods only (the Rust example
// pod-label-eligibility can also allow listed CIDRs).

import { JsonKind, JsonParser, JsonValue, quote } from "./json";

class Settings {
  podLabel: string = "";
  podLabelValue: string | null = null;
  // Why the settings are unusable; empty when they are fine.
  problem: string = "";
}

function readSettings(value: JsonValue | null): Settings {
  const s = new Settings();
  if (value == null || value.kind != JsonKind.Object) {
    s.problem = 'settings must be an object such as {"podLabel":"example.com/public-ip"}';
    return s;
  }
  let podLabel: string | null = null;
  for (let i = 0; i < value.keys.length; i++) {
    const key = value.keys[i];
    const item = value.items[i];
    if (key == "podLabel") {
      podLabel = item.asString();
      if (podLabel == null) {
        s.problem = "podLabel must be a string";
        return s;
      }
    } else if (key == "podLabelValue") {
      // null means "any value", as an absent field does.
      if (item.kind == JsonKind.Null) continue;
      const want = item.asString();
      if (want == null) {
        s.problem = "podLabelValue must be a string";
        return s;
      }
      s.podLabelValue = want;
    } else {
      // A misspelt field would otherwise be ignored silently.
      s.problem = "unknown field " + quote(key) + ", expected podLabel or podLabelValue";
      return s;
    }
  }
  if (podLabel == null) {
    s.problem = "podLabel is required";
  } else if (podLabel.length == 0) {
    s.problem = "podLabel must not be empty";
  } else {
    s.podLabel = podLabel;
  }
  return s;
}

// Decision codes (ABI.md) and the mask policy_decisions returns: bit 0
// settings validation, bit 3 eligibility.
export const VALIDATE_SETTINGS = 0;
export const ELIGIBILITY = 3;
export const DECISIONS = (1 << VALIDATE_SETTINGS) | (1 << ELIGIBILITY);

// The output document for decision `kind` on the request document `input`.
export function decide(kind: i32, input: string): string {
  // The host never asks a decision whose bit is clear; should one come
  // anyway, the ABI's answer is an error, not a guess.
  if (kind != VALIDATE_SETTINGS && kind != ELIGIBILITY) {
    return error("this policy does not answer decision " + kind.toString());
  }
  const parser = new JsonParser(input);
  const request = parser.parse();
  if (request == null) return error("malformed input: " + parser.error);
  if (request.kind != JsonKind.Object) return error("malformed input: not an object");
  const settings = readSettings(request.get("settings"));
  if (kind == VALIDATE_SETTINGS) {
    if (settings.problem.length == 0) return ok('{"decision":"valid"}');
    return ok('{"decision":"invalid","message":' + quote(clip(settings.problem)) + "}");
  }
  // Checked at load already; a request is still answered on its own terms.
  if (settings.problem.length > 0) return error("invalid settings: " + settings.problem);
  return eligibility(settings, request.get("target"));
}

function eligibility(settings: Settings, target: JsonValue | null): string {
  if (target == null || target.kind != JsonKind.Object) return error("the request has no target object");
  const kind = stringField(target, "kind");
  if (kind == "privateIP") {
    const address = stringField(target, "address");
    return deny(
      "private IP " + (address == null ? "(address unknown)" : address) +
        " is not a pod; this policy gives public IPs only to pods labelled " + settings.podLabel,
    );
  }
  if (kind != "pod") return error("unknown target kind " + (kind == null ? "(none)" : quote(kind)));
  const name = stringField(target, "name");
  if (name == null) return error("the pod target has no name");
  // `labels` may be absent: no labels.
  const labels = target.get("labels");
  if (labels != null && labels.kind != JsonKind.Object) return error("the pod's labels are not an object");
  const got: string | null = labels == null ? null : stringField(labels, settings.podLabel);
  if (got == null) return deny("pod " + name + " has no label " + settings.podLabel);
  const want = settings.podLabelValue;
  if (want != null && want != got) {
    return deny("pod " + name + " has " + settings.podLabel + "=" + got + ", not " + want);
  }
  return ok('{"decision":"allow"}');
}

// The string value of `key` in `object`, or null when absent or not a string.
function stringField(object: JsonValue, key: string): string | null {
  const value = object.get(key);
  return value == null ? null : value.asString();
}

// The output envelopes: an answer, or an error (the policy's failure mode
// then applies).
function ok(answer: string): string {
  return '{"ok":' + answer + "}";
}

function error(message: string): string {
  return '{"error":' + quote(clip(message)) + "}";
}

function deny(reason: string): string {
  return ok('{"decision":"deny","reason":' + quote(clip(reason)) + "}");
}

// The host refuses reasons over 1024 bytes of UTF-8. A UTF-16 code unit takes
// at most 3 bytes, so 340 units and an ellipsis always fit.
function clip(message: string): string {
  if (String.UTF8.byteLength(message) <= 1024) return message;
  return message.substring(0, 340) + "…";
}
