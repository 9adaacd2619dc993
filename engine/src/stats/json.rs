//! A minimal JSON writer for the stats contract (flat objects, arrays, numbers,
//! strings): enough for our reports without a serialisation framework.

use std::fmt::Write;

/// Builds one JSON object.
#[derive(Debug, Default)]
pub(crate) struct JsonObject {
    out: String,
}

impl JsonObject {
    /// An empty object.
    pub(crate) fn new() -> Self {
        JsonObject::default()
    }

    fn key(&mut self, key: &str) {
        self.out.push(if self.out.is_empty() { '{' } else { ',' });
        write_string(&mut self.out, key);
        self.out.push(':');
    }

    /// Adds an unsigned integer.
    pub(crate) fn u64(mut self, key: &str, value: u64) -> Self {
        self.key(key);
        let _ = write!(self.out, "{value}");
        self
    }

    /// Adds a number (non-finite values become `null`).
    pub(crate) fn f64(mut self, key: &str, value: f64) -> Self {
        self.key(key);
        if value.is_finite() {
            let _ = write!(self.out, "{value}");
        } else {
            self.out.push_str("null");
        }
        self
    }

    /// Adds `true` or `false`.
    pub(crate) fn bool(mut self, key: &str, value: bool) -> Self {
        self.key(key);
        self.out.push_str(if value { "true" } else { "false" });
        self
    }

    /// Adds a string.
    pub(crate) fn str(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        write_string(&mut self.out, value);
        self
    }

    /// Adds a string, or `null`.
    pub(crate) fn opt_str(mut self, key: &str, value: Option<&str>) -> Self {
        self.key(key);
        match value {
            Some(v) => write_string(&mut self.out, v),
            None => self.out.push_str("null"),
        }
        self
    }

    /// Adds an array of strings.
    pub(crate) fn str_array(mut self, key: &str, values: &[&str]) -> Self {
        self.key(key);
        self.out.push('[');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            write_string(&mut self.out, v);
        }
        self.out.push(']');
        self
    }

    /// Adds an array of unsigned integers.
    pub(crate) fn u64_array(mut self, key: &str, values: &[u64]) -> Self {
        self.key(key);
        let items: Vec<String> = values.iter().map(u64::to_string).collect();
        let _ = write!(self.out, "[{}]", items.join(","));
        self
    }

    /// Adds a nested object.
    pub(crate) fn object(mut self, key: &str, value: JsonObject) -> Self {
        self.key(key);
        self.out.push_str(&value.finish());
        self
    }

    /// Adds an array of objects.
    pub(crate) fn array(mut self, key: &str, values: Vec<JsonObject>) -> Self {
        self.key(key);
        self.out.push('[');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.out.push_str(&v.finish());
        }
        self.out.push(']');
        self
    }

    /// The object's text.
    pub(crate) fn finish(mut self) -> String {
        if self.out.is_empty() {
            self.out.push('{');
        }
        self.out.push('}');
        self.out
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_objects_and_escapes() {
        let text = JsonObject::new()
            .u64("a", 1)
            .str("s", "x\"y\n")
            .object("o", JsonObject::new().f64("r", 1.5).f64("n", f64::NAN))
            .array("q", vec![JsonObject::new().u64("i", 0), JsonObject::new()])
            .u64_array("v", &[1, 2])
            .finish();
        assert_eq!(
            text,
            r#"{"a":1,"s":"x\"y\u000a","o":{"r":1.5,"n":null},"q":[{"i":0},{}],"v":[1,2]}"#
        );
    }
}
