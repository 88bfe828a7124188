use crate::{escape, Delimiters};

/// Builds an ER7 message segment by segment with the guide's delimiters
/// (`|^~\&`) and CR terminators. Text is escaped; raw values are trusted.
#[derive(Debug, Default)]
pub struct MessageWriter {
    d: Delimiters,
    out: String,
}

impl MessageWriter {
    pub fn new() -> Self {
        MessageWriter {
            d: Delimiters::default(),
            out: String::with_capacity(512),
        }
    }

    pub fn delimiters(&self) -> Delimiters {
        self.d
    }

    /// Starts a segment. Field numbers given to the returned writer are HL7's
    /// (MSH-3 is the third field even though MSH-1/2 are written for you).
    pub fn segment(&mut self, id: &str) -> SegmentWriter<'_> {
        SegmentWriter {
            id: id.to_string(),
            fields: Vec::new(),
            w: self,
        }
    }

    pub fn finish(self) -> String {
        self.out
    }

    /// Escapes text for one leaf value.
    pub fn escape(&self, text: &str) -> String {
        escape(text, &self.d)
    }
}

/// One segment being written; it is appended to the message when dropped.
#[derive(Debug)]
pub struct SegmentWriter<'w> {
    w: &'w mut MessageWriter,
    id: String,
    fields: Vec<String>,
}

impl SegmentWriter<'_> {
    fn slot(&mut self, n: usize) -> &mut String {
        if self.fields.len() < n {
            self.fields.resize(n, String::new());
        }
        &mut self.fields[n - 1]
    }

    /// Sets field `n` to escaped text.
    pub fn text(&mut self, n: usize, text: &str) -> &mut Self {
        let v = escape(text, &self.w.d);
        *self.slot(n) = v;
        self
    }

    /// Sets field `n` to an already-encoded value (components, repetitions kept).
    pub fn raw(&mut self, n: usize, raw: &str) -> &mut Self {
        *self.slot(n) = raw.to_string();
        self
    }

    /// Sets field `n` to components, each escaped; trailing empty ones dropped.
    pub fn components(&mut self, n: usize, parts: &[&str]) -> &mut Self {
        let d = self.w.d;
        let last = parts
            .iter()
            .rposition(|p| !p.is_empty())
            .map_or(0, |i| i + 1);
        let mut v = String::new();
        for (i, p) in parts[..last].iter().enumerate() {
            if i > 0 {
                v.push(d.component as char);
            }
            v.push_str(&escape(p, &d));
        }
        *self.slot(n) = v;
        self
    }
}

impl Drop for SegmentWriter<'_> {
    fn drop(&mut self) {
        let d = self.w.d;
        let out = &mut self.w.out;
        out.push_str(&self.id);
        let is_msh = self.id == "MSH";
        let last = self
            .fields
            .iter()
            .rposition(|f| !f.is_empty())
            .map_or(0, |i| i + 1);
        if is_msh {
            out.push(d.field as char);
            out.push_str(&d.encoding_characters());
            for f in self.fields.iter().take(last).skip(2) {
                out.push(d.field as char);
                out.push_str(f);
            }
        } else {
            for f in self.fields.iter().take(last) {
                out.push(d.field as char);
                out.push_str(f);
            }
        }
        out.push('\r');
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Message;

    #[test]
    fn writes_msh_and_escapes_text() {
        let mut w = MessageWriter::new();
        w.segment("MSH")
            .text(3, "IIS")
            .components(9, &["ACK", "V04", "ACK"])
            .text(10, "1");
        w.segment("ERR")
            .raw(2, "PID^1^5")
            .text(8, "Name | missing ^ & ~ \\");
        let s = w.finish();
        assert_eq!(
            s,
            "MSH|^~\\&|IIS||||||ACK^V04^ACK|1\rERR||PID^1^5||||||Name \\F\\ missing \\S\\ \\T\\ \\R\\ \\E\\\r"
        );
        let m = Message::parse(s.as_bytes()).unwrap();
        assert_eq!(m.first("ERR").unwrap().value(8), "Name | missing ^ & ~ \\");
    }
}
