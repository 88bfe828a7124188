use crate::escape::escape_into;
use crate::{escape, Delimiters};

/// Builds an ER7 message segment by segment with the guide's delimiters
/// (`|^~\&`) and CR terminators. Text is escaped; raw values are trusted.
#[derive(Debug, Default)]
pub struct MessageWriter {
    d: Delimiters,
    out: String,
    /// The values set on the segment being written, one after another, and
    /// each one's field number and place in `values`: fields may be set in
    /// any order (and set again), so they are put in order when the segment
    /// ends. Both are reused from segment to segment, so writing a message
    /// allocates no string per field.
    values: String,
    slots: Vec<(usize, usize, usize)>,
}

impl MessageWriter {
    pub fn new() -> Self {
        MessageWriter {
            d: Delimiters::default(),
            out: String::with_capacity(512),
            values: String::with_capacity(256),
            slots: Vec::with_capacity(24),
        }
    }

    pub fn delimiters(&self) -> Delimiters {
        self.d
    }

    /// Starts a segment. Field numbers given to the returned writer are HL7's
    /// (MSH-3 is the third field even though MSH-1/2 are written for you).
    pub fn segment(&mut self, id: &str) -> SegmentWriter<'_> {
        // Nothing else is written to the message while the segment is open
        // (it borrows the writer), so its id can go first right away.
        self.out.push_str(id);
        self.values.clear();
        self.slots.clear();
        SegmentWriter {
            is_msh: id == "MSH",
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
    is_msh: bool,
}

impl SegmentWriter<'_> {
    /// Records that field `n` holds what was appended to `values` since `start`.
    fn set(&mut self, n: usize, start: usize) {
        let end = self.w.values.len();
        self.w.slots.push((n, start, end));
    }

    /// Sets field `n` to escaped text.
    pub fn text(&mut self, n: usize, text: &str) -> &mut Self {
        let start = self.w.values.len();
        escape_into(&mut self.w.values, text, &self.w.d, false);
        self.set(n, start);
        self
    }

    /// Sets field `n` to an already-encoded value (components, repetitions kept).
    pub fn raw(&mut self, n: usize, raw: &str) -> &mut Self {
        let start = self.w.values.len();
        self.w.values.push_str(raw);
        self.set(n, start);
        self
    }

    /// Sets field `n` to components, each escaped; trailing empty ones dropped.
    pub fn components(&mut self, n: usize, parts: &[&str]) -> &mut Self {
        let d = self.w.d;
        let last = parts
            .iter()
            .rposition(|p| !p.is_empty())
            .map_or(0, |i| i + 1);
        let start = self.w.values.len();
        for (i, p) in parts[..last].iter().enumerate() {
            if i > 0 {
                self.w.values.push(d.component as char);
            }
            escape_into(&mut self.w.values, p, &d, false);
        }
        self.set(n, start);
        self
    }
}

impl Drop for SegmentWriter<'_> {
    fn drop(&mut self) {
        let MessageWriter {
            d,
            out,
            values,
            slots,
        } = &mut *self.w;
        // In field order; the sort is stable, so of two values set for one
        // field the one set last comes last, and it is the one written.
        slots.sort_by_key(|&(n, _, _)| n);
        let value = |k: usize| {
            let (_, start, end) = slots[k];
            values.get(start..end).unwrap_or("")
        };
        let is_final = |k: usize| slots.get(k + 1).is_none_or(|next| next.0 != slots[k].0);
        // Trailing empty fields are not written.
        let last = (0..slots.len())
            .filter(|&k| is_final(k) && !value(k).is_empty())
            .map(|k| slots[k].0)
            .max()
            .unwrap_or(0);
        let first = if self.is_msh {
            out.push(d.field as char);
            out.push(d.component as char);
            out.push(d.repetition as char);
            if let Some(e) = d.escape {
                out.push(e as char);
            }
            if let Some(t) = d.subcomponent {
                out.push(t as char);
            }
            // MSH-1 and MSH-2 are the delimiters just written.
            3
        } else {
            1
        };
        let mut k = 0;
        for n in first..=last {
            out.push(d.field as char);
            let mut field = "";
            while let Some(&(m, _, _)) = slots.get(k) {
                if m > n {
                    break;
                }
                if m == n {
                    field = value(k);
                }
                k += 1;
            }
            out.push_str(field);
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
