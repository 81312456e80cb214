// A small JSON reader and string quoting for the ABI's documents.
//
// Hand-written rather than a package: AssemblyScript's standard library has
// no JSON, the JSON packages for it rely on compiler transforms tied to
// particular compiler versions, and this policy reads a handful of fields.
// It accepts exactly RFC 8259 JSON, so a document is never half-read; numbers
// are checked but kept as text (no field this policy reads is a number).

export const enum JsonKind {
  Null,
  Bool,
  Number,
  String,
  Array,
  Object,
}

export class JsonValue {
  // String: the unescaped text; Number and Bool: the literal.
  text: string = "";
  // Array elements, or object values (parallel to `keys`).
  items: JsonValue[] = [];
  keys: string[] = [];

  constructor(public kind: JsonKind) {}

  // The value of `key` in an object; the last one when repeated, as the
  // operator's own parser does.
  get(key: string): JsonValue | null {
    for (let i = this.keys.length - 1; i >= 0; i--) {
      if (this.keys[i] == key) return this.items[i];
    }
    return null;
  }

  // The text of a string value, or null for any other kind.
  asString(): string | null {
    return this.kind == JsonKind.String ? this.text : null;
  }
}

// Deep enough for any request; bounds recursion on hostile input.
const MAX_DEPTH = 64;

export class JsonParser {
  private pos: i32 = 0;
  // Why parse() returned null.
  error: string = "";

  constructor(private input: string) {}

  parse(): JsonValue | null {
    const value = this.value(0);
    if (value == null) return null;
    this.skipSpace();
    if (this.pos < this.input.length) return this.fail("unexpected text after the document");
    return value;
  }

  private fail(what: string): JsonValue | null {
    if (this.error.length == 0) this.error = what + " at character " + this.pos.toString();
    return null;
  }

  private peek(): i32 {
    return this.pos < this.input.length ? this.input.charCodeAt(this.pos) : -1;
  }

  private skipSpace(): void {
    let c = this.peek();
    while (c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d) {
      this.pos++;
      c = this.peek();
    }
  }

  private value(depth: i32): JsonValue | null {
    if (depth > MAX_DEPTH) return this.fail("nested deeper than " + MAX_DEPTH.toString());
    this.skipSpace();
    const c = this.peek();
    if (c == 0x7b) return this.object(depth); // {
    if (c == 0x5b) return this.array(depth); // [
    if (c == 0x22) {
      const text = this.string();
      if (text == null) return null;
      const v = new JsonValue(JsonKind.String);
      v.text = text;
      return v;
    }
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    if (this.literal("true") || this.literal("false")) {
      const v = new JsonValue(JsonKind.Bool);
      v.text = c == 0x74 ? "true" : "false";
      return v;
    }
    if (this.literal("null")) return new JsonValue(JsonKind.Null);
    return this.fail(c < 0 ? "unexpected end of the document" : "unexpected character");
  }

  private literal(word: string): bool {
    if (this.input.substring(this.pos, this.pos + word.length) != word) return false;
    this.pos += word.length;
    return true;
  }

  private object(depth: i32): JsonValue | null {
    this.pos++; // {
    const v = new JsonValue(JsonKind.Object);
    this.skipSpace();
    if (this.peek() == 0x7d) {
      this.pos++;
      return v;
    }
    while (true) {
      this.skipSpace();
      if (this.peek() != 0x22) return this.fail("expected a key");
      const key = this.string();
      if (key == null) return null;
      this.skipSpace();
      if (this.peek() != 0x3a) return this.fail("expected ':'");
      this.pos++;
      const item = this.value(depth + 1);
      if (item == null) return null;
      v.keys.push(key);
      v.items.push(item);
      this.skipSpace();
      const c = this.peek();
      if (c != 0x2c && c != 0x7d) return this.fail("expected ',' or '}'");
      this.pos++;
      if (c == 0x7d) return v;
    }
  }

  private array(depth: i32): JsonValue | null {
    this.pos++; // [
    const v = new JsonValue(JsonKind.Array);
    this.skipSpace();
    if (this.peek() == 0x5d) {
      this.pos++;
      return v;
    }
    while (true) {
      const item = this.value(depth + 1);
      if (item == null) return null;
      v.items.push(item);
      this.skipSpace();
      const c = this.peek();
      if (c != 0x2c && c != 0x5d) return this.fail("expected ',' or ']'");
      this.pos++;
      if (c == 0x5d) return v;
    }
  }

  // A string literal starting at the opening quote, unescaped. Pieces are
  // joined once at the end: appending piece by piece would copy the string
  // again for every escape.
  private string(): string | null {
    const input = this.input;
    this.pos++; // "
    let start = this.pos;
    const pieces = new Array<string>();
    while (true) {
      const c = this.peek();
      if (c < 0) {
        this.fail("unterminated string");
        return null;
      }
      if (c == 0x22) {
        const last = input.substring(start, this.pos);
        this.pos++;
        if (pieces.length == 0) return last;
        pieces.push(last);
        return pieces.join("");
      }
      if (c < 0x20) {
        this.fail("control character in a string");
        return null;
      }
      if (c != 0x5c) {
        this.pos++;
        continue;
      }
      pieces.push(input.substring(start, this.pos));
      this.pos++; // backslash
      const e = this.peek();
      this.pos++;
      if (e == 0x22) pieces.push('"');
      else if (e == 0x5c) pieces.push("\\");
      else if (e == 0x2f) pieces.push("/");
      else if (e == 0x62) pieces.push("\b");
      else if (e == 0x66) pieces.push("\f");
      else if (e == 0x6e) pieces.push("\n");
      else if (e == 0x72) pieces.push("\r");
      else if (e == 0x74) pieces.push("\t");
      else if (e == 0x75) {
        // \uXXXX is one UTF-16 code unit, which is what strings hold here;
        // the two halves of a surrogate pair join up by themselves.
        const unit = this.hex4();
        if (unit < 0) {
          this.fail("invalid \\u escape");
          return null;
        }
        pieces.push(String.fromCharCode(unit));
      } else {
        this.fail("invalid escape");
        return null;
      }
      start = this.pos;
    }
  }

  private hex4(): i32 {
    let unit = 0;
    for (let i = 0; i < 4; i++) {
      const c = this.peek();
      let digit = -1;
      if (c >= 0x30 && c <= 0x39) digit = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) digit = c - 0x61 + 10;
      else if (c >= 0x41 && c <= 0x46) digit = c - 0x41 + 10;
      if (digit < 0) return -1;
      unit = (unit << 4) | digit;
      this.pos++;
    }
    return unit;
  }

  // -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
  private number(): JsonValue | null {
    const start = this.pos;
    if (this.peek() == 0x2d) this.pos++;
    if (this.peek() == 0x30) this.pos++;
    else if (this.digits() == 0) return this.fail("invalid number");
    if (this.peek() == 0x2e) {
      this.pos++;
      if (this.digits() == 0) return this.fail("invalid number");
    }
    const e = this.peek();
    if (e == 0x65 || e == 0x45) {
      this.pos++;
      const sign = this.peek();
      if (sign == 0x2b || sign == 0x2d) this.pos++;
      if (this.digits() == 0) return this.fail("invalid number");
    }
    const v = new JsonValue(JsonKind.Number);
    v.text = this.input.substring(start, this.pos);
    return v;
  }

  private digits(): i32 {
    let n = 0;
    let c = this.peek();
    while (c >= 0x30 && c <= 0x39) {
      this.pos++;
      n++;
      c = this.peek();
    }
    return n;
  }
}

// `s` as a JSON string literal.
export function quote(s: string): string {
  const pieces = new Array<string>();
  pieces.push('"');
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c != 0x22 && c != 0x5c && c >= 0x20) continue;
    pieces.push(s.substring(start, i));
    if (c == 0x22) pieces.push('\\"');
    else if (c == 0x5c) pieces.push("\\\\");
    else pieces.push("\\u00" + (c < 0x10 ? "0" : "") + c.toString(16));
    start = i + 1;
  }
  pieces.push(s.substring(start));
  pieces.push('"');
  return pieces.join("");
}
